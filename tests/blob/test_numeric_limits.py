"""Every numeric request field of the blob service at the ends of its protobuf range.

Each answer is the documented one (a field named in INVALID_ARGUMENT, NOT_FOUND, OUT_OF_RANGE), never
INTERNAL or UNKNOWN from an overflow further down (datetime, S3 ranges, presign lifetimes).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from framevault.api.blob_client import BlobClient
from framevault.v1 import blob_pb2, blob_pb2_grpc

from .helpers import random_blob, rpc_error, violated_fields

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)

Call = Callable[[blob_pb2_grpc.BlobServiceStub, blob_pb2.Digest], Any]


def _write(offset: int) -> Call:
    def call(stub: blob_pb2_grpc.BlobServiceStub, digest: blob_pb2.Digest) -> Any:
        async def messages() -> Any:
            yield blob_pb2.WriteBlobRequest(
                resource_name=f"uploads/{uuid.uuid4()}/blobs/{'a' * 64}/100", write_offset=offset, data=b"x")

        return stub.WriteBlob(messages())

    return call


def _sized(size: int) -> Callable[[blob_pb2.Digest], blob_pb2.Digest]:
    return lambda digest: blob_pb2.Digest(hash=digest.hash, size_bytes=size)


CASES: dict[str, tuple[Call, grpc.StatusCode, list[str]]] = {
    "read offset int64 max": (lambda s, d: s.ReadBlob(blob_pb2.ReadBlobRequest(digest=d, offset=INT64_MAX)),
                              grpc.StatusCode.OUT_OF_RANGE, ["offset"]),
    "read offset int64 min": (lambda s, d: s.ReadBlob(blob_pb2.ReadBlobRequest(digest=d, offset=INT64_MIN)),
                              grpc.StatusCode.INVALID_ARGUMENT, ["offset"]),
    "read limit int64 min": (lambda s, d: s.ReadBlob(blob_pb2.ReadBlobRequest(digest=d, limit=INT64_MIN)),
                             grpc.StatusCode.INVALID_ARGUMENT, ["limit"]),
    "read size int64 max": (lambda s, d: s.ReadBlob(blob_pb2.ReadBlobRequest(
        digest=_sized(INT64_MAX)(d), offset=INT64_MAX - 1, limit=INT64_MAX)), grpc.StatusCode.NOT_FOUND, ["digest"]),
    "read size int64 min": (lambda s, d: s.ReadBlob(blob_pb2.ReadBlobRequest(digest=_sized(INT64_MIN)(d))),
                            grpc.StatusCode.INVALID_ARGUMENT, ["digest.size_bytes"]),
    "batch read sizes int64 max": (lambda s, d: s.BatchReadBlobs(blob_pb2.BatchReadBlobsRequest(
        digests=[_sized(INT64_MAX)(d)] * 3)), grpc.StatusCode.INVALID_ARGUMENT, ["digests"]),
    "find missing size int64 min": (lambda s, d: s.FindMissingBlobs(blob_pb2.FindMissingBlobsRequest(
        digests=[_sized(INT64_MIN)(d)])), grpc.StatusCode.INVALID_ARGUMENT, ["digests[0].size_bytes"]),
    "delete size int64 min": (lambda s, d: s.DeleteBlobs(blob_pb2.DeleteBlobsRequest(
        digests=[_sized(INT64_MIN)(d)])), grpc.StatusCode.INVALID_ARGUMENT, ["digests[0].size_bytes"]),
    "url size int64 max": (lambda s, d: s.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(digest=_sized(INT64_MAX)(d))),
                           grpc.StatusCode.NOT_FOUND, ["digest"]),
    "url expiry int32 max": (lambda s, d: s.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(
        digest=d, expires_in_seconds=INT32_MAX)), grpc.StatusCode.INVALID_ARGUMENT, ["expires_in_seconds"]),
    "url expiry int32 min": (lambda s, d: s.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(
        digest=d, expires_in_seconds=INT32_MIN)), grpc.StatusCode.INVALID_ARGUMENT, ["expires_in_seconds"]),
    "preview edge int32 max": (lambda s, d: s.CreatePreview(blob_pb2.CreatePreviewRequest(digest=d, max_edge=INT32_MAX)),
                               grpc.StatusCode.INVALID_ARGUMENT, ["max_edge"]),
    "preview edge int32 min": (lambda s, d: s.CreatePreview(blob_pb2.CreatePreviewRequest(digest=d, max_edge=INT32_MIN)),
                               grpc.StatusCode.INVALID_ARGUMENT, ["max_edge"]),
    "preview format int32 max": (lambda s, d: s.CreatePreview(blob_pb2.CreatePreviewRequest(
        digest=d, max_edge=16, format=INT32_MAX)), grpc.StatusCode.INVALID_ARGUMENT, ["format"]),
    "preview size int64 max": (lambda s, d: s.CreatePreview(blob_pb2.CreatePreviewRequest(
        digest=_sized(INT64_MAX)(d), max_edge=16)), grpc.StatusCode.INVALID_ARGUMENT, ["digest"]),
    "write offset int64 max": (_write(INT64_MAX), grpc.StatusCode.INVALID_ARGUMENT, ["write_offset"]),
    "write offset int64 min": (_write(INT64_MIN), grpc.StatusCode.INVALID_ARGUMENT, ["write_offset"]),
    "write size past int64": (lambda s, d: s.QueryWriteStatus(blob_pb2.QueryWriteStatusRequest(
        resource_name=f"uploads/{uuid.uuid4()}/blobs/{'a' * 64}/{2**64}")),
        grpc.StatusCode.INVALID_ARGUMENT, ["resource_name"]),
    "write size int64 max": (lambda s, d: s.QueryWriteStatus(blob_pb2.QueryWriteStatusRequest(
        resource_name=f"uploads/{uuid.uuid4()}/blobs/{'a' * 64}/{INT64_MAX}")),
        grpc.StatusCode.INVALID_ARGUMENT, ["resource_name"]),
    "gc grace int64 max": (lambda s, d: s.CollectGarbage(blob_pb2.CollectGarbageRequest(
        grace_period_seconds=INT64_MAX, dry_run=True)), grpc.StatusCode.INVALID_ARGUMENT, ["grace_period_seconds"]),
    "gc grace int64 min": (lambda s, d: s.CollectGarbage(blob_pb2.CollectGarbageRequest(
        grace_period_seconds=INT64_MIN, dry_run=True)), grpc.StatusCode.INVALID_ARGUMENT, ["grace_period_seconds"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_numeric_fields_at_the_ends_of_their_range(blob_stub: blob_pb2_grpc.BlobServiceStub,
                                                         blob_client: BlobClient, case: str) -> None:
    data, digest = random_blob(1000)
    await blob_client.upload_bytes(data)
    call, code, fields = CASES[case]
    error = await rpc_error(call(blob_stub, blob_pb2.Digest(hash=digest.hash, size_bytes=digest.size)))
    assert (error.code(), violated_fields(error)) == (code, fields), error.details()
