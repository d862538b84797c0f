"""``BlobGateway`` over gRPC: how the metadata service reaches the blob service.

Calls carry a deadline (``service_call_timeout_seconds``) and, with security
on, the metadata service's own service token, never the token of the caller
it serves (docs/SECURITY.md). The channel retries ``UNAVAILABLE`` by itself
(see ``framevault.common.channels``). What is still transient after that
(unreachable, deadline exceeded, overloaded) becomes ``Unavailable``, so the
upload stream's per-frame retry covers it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import TypeVar, cast

import grpc
from grpc import aio

from framevault.api.blob_client import BlobClient, find_missing
from framevault.api.digests import BlobDigest, digest_of, digest_to_proto
from framevault.auth.permissions import BLOB_SERVICE as BLOB_SERVICE_IDENTITY
from framevault.auth.permissions import METADATA_SERVICE
from framevault.auth.service_identity import service_token
from framevault.auth.startup import ON as SECURITY_ON
from framevault.common.channels import service_channel
from framevault.common.config import Settings
from framevault.common.errors import FramevaultError, Internal, Unavailable
from framevault.v1 import blob_pb2, blob_pb2_grpc

T = TypeVar("T")

BLOB_SERVICE = blob_pb2.DESCRIPTOR.services_by_name["BlobService"].full_name

_TRANSIENT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                              grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED})
# Bytes of the BatchUpdateBlobs request besides the data itself (digest, framing).
_BATCH_OVERHEAD_BYTES = 1024


class GrpcBlobGateway:
    """Implements ``framevault.metadata.blobs.BlobGateway`` against a BlobService at ``target``."""

    def __init__(self, target: str, settings: Settings):
        self._settings = settings
        self._timeout = settings.service_call_timeout_seconds
        identity = service_token(settings, METADATA_SERVICE, BLOB_SERVICE_IDENTITY) \
            if settings.security_mode == SECURITY_ON else None
        self._channel = service_channel(target, settings, [BLOB_SERVICE], token=identity)
        self._stub = cast("blob_pb2_grpc.BlobServiceAsyncStub", blob_pb2_grpc.BlobServiceStub(self._channel))
        self._capabilities: blob_pb2.GetCapabilitiesResponse | None = None
        self._capabilities_lock = asyncio.Lock()

    async def capabilities(self) -> blob_pb2.GetCapabilitiesResponse:
        """The blob service's limits, asked once per gateway."""
        async with self._capabilities_lock:
            if self._capabilities is not None:
                return self._capabilities
            asked: blob_pb2.GetCapabilitiesResponse = await self._call(
                self._stub.GetCapabilities(blob_pb2.GetCapabilitiesRequest(), timeout=self._timeout))
            self._capabilities = asked
            return asked

    async def find_missing(self, digests: Sequence[BlobDigest]) -> set[BlobDigest]:
        wanted = [d for d in digests if not d.is_empty]
        if not wanted:
            return set()
        batch_size = (await self.capabilities()).max_batch_blobs

        async def call(request: blob_pb2.FindMissingBlobsRequest,
                       timeout: float | None) -> blob_pb2.FindMissingBlobsResponse:
            return await self._call(self._stub.FindMissingBlobs(request, timeout=timeout))

        return await find_missing(call, wanted, batch_size, self._timeout)

    async def store(self, data: bytes) -> BlobDigest:
        digest = digest_of(data)
        if digest.is_empty:
            return digest
        capabilities = await self.capabilities()
        if len(data) + _BATCH_OVERHEAD_BYTES <= capabilities.max_batch_total_size_bytes:
            await self._store_batched(digest, data)
        else:
            await self._store_streamed(digest, data, capabilities.preferred_chunk_size_bytes or 1024 * 1024)
        return digest

    async def _store_batched(self, digest: BlobDigest, data: bytes) -> None:
        request = blob_pb2.BatchUpdateBlobsRequest(
            requests=[blob_pb2.BatchUpdateBlobsRequest.Request(digest=digest_to_proto(digest), data=data)])
        response = await self._call(self._stub.BatchUpdateBlobs(request, timeout=self._timeout))
        status = response.responses[0].status
        if status.code != grpc.StatusCode.OK.value[0]:
            code = _code_named(status.code)
            if code in _TRANSIENT_CODES:
                raise Unavailable(f"blob service could not store {digest}: {status.message}")
            raise Internal(f"blob service refused {digest}: {status.message}")

    async def _store_streamed(self, digest: BlobDigest, data: bytes, chunk_size: int) -> None:
        # A fresh upload name per attempt: inline bytes are small enough that resuming is not worth it.
        name = BlobClient.upload_name(digest)

        async def chunks() -> AsyncIterator[blob_pb2.WriteBlobRequest]:
            view = memoryview(data)
            for offset in range(0, len(data), chunk_size):
                piece = view[offset:offset + chunk_size]
                yield blob_pb2.WriteBlobRequest(
                    resource_name=name if offset == 0 else "", write_offset=offset, data=bytes(piece),
                    finish_write=offset + len(piece) >= len(data))

        response = await self._call(self._stub.WriteBlob(chunks(), timeout=self._timeout))
        if response.committed_size != digest.size:
            raise Unavailable(f"blob service committed {response.committed_size} of {digest.size} bytes")

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except aio.AioRpcError as exc:
            raise _domain_error(exc) from exc

    async def close(self) -> None:
        await self._channel.close()


def _code_named(value: int) -> grpc.StatusCode | None:
    return next((c for c in grpc.StatusCode if c.value[0] == value), None)


def _domain_error(exc: aio.AioRpcError) -> FramevaultError:
    if exc.code() in _TRANSIENT_CODES:
        return Unavailable(f"blob service unavailable ({exc.code().name}): {exc.details()}")
    return Internal(f"blob service call failed ({exc.code().name}): {exc.details()}")
