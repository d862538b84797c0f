"""Who may read a preview made on demand, over the blob service's gRPC API.

No frame references a preview CreatePreview makes; it is readable by whoever may read its
source, and by nobody else.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

import grpc
import pytest
from grpc import aio
from PIL import Image
from support import channel_to

from framevault.api.digests import BlobDigest, digest_of, digest_to_proto
from framevault.common.server import RunningService
from framevault.v1 import access_pb2, access_pb2_grpc, blob_pb2, blob_pb2_grpc, dataset_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .conftest import _upload, png, seeded_frame


async def _api_key(metadata_channel: aio.Channel, dataset_id: str | None) -> str:
    """A new principal's API key, a viewer of ``dataset_id`` (of nothing when None)."""
    access = access_pb2_grpc.AccessServiceStub(metadata_channel)
    principal = f"preview-reader-{uuid.uuid4().hex[:8]}"
    key = await access.CreateApiKey(access_pb2.CreateApiKeyRequest(api_key=access_pb2.ApiKey(principal=principal)))
    if dataset_id is not None:
        await access.GrantRole(access_pb2.GrantRoleRequest(principal=principal, role=access_pb2.ROLE_VIEWER,
                                                           dataset=dataset_pb2.DatasetRef(id=dataset_id)))
    return str(key.token)


@dataclass
class Readable:
    dataset_id: str
    # A source image only a frame of the dataset references.
    source: BlobDigest


@pytest.fixture
async def readable(metadata_stub: object) -> Readable:
    dataset = await metadata_stub.CreateDataset(ms.CreateDatasetRequest(  # type: ignore[attr-defined]
        dataset=dataset_pb2.Dataset(name=f"previews-{uuid.uuid4().hex[:8]}")))
    version = await metadata_stub.CreateVersion(ms.CreateVersionRequest(  # type: ignore[attr-defined]
        dataset=dataset_pb2.DatasetRef(id=dataset.id), version=dataset_pb2.Version(name="root")))
    colour = (uuid.uuid4().bytes[0], uuid.uuid4().bytes[0], uuid.uuid4().bytes[0])
    await _upload(metadata_stub, version.id, [seeded_frame("preview-0", "drive-p", 0, colour, "cone")])
    return Readable(dataset.id, digest_of(png(colour)))


async def test_a_viewer_reads_the_preview_it_made_of_a_source_it_may_read(
        blob_service: RunningService, metadata_channel: aio.Channel, readable: Readable) -> None:
    source = readable.source
    viewer = await _api_key(metadata_channel, readable.dataset_id)
    async with channel_to(blob_service.port, token=viewer) as channel:
        blob = blob_pb2_grpc.BlobServiceStub(channel)
        preview = await blob.CreatePreview(blob_pb2.CreatePreviewRequest(
            digest=digest_to_proto(source), max_edge=32, format=blob_pb2.PREVIEW_FORMAT_PNG))
        read = await blob.ReadBlob(blob_pb2.ReadBlobRequest(digest=preview.digest)).read()
        url = await blob.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(digest=preview.digest,
                                                                       content_type="image/png"))
    with Image.open(io.BytesIO(read.data)) as thumbnail:
        assert thumbnail.format == "PNG" and max(thumbnail.size) == 32
    assert url.url

    # Another viewer of the dataset, who did not make it, reads it too.
    other_viewer = await _api_key(metadata_channel, readable.dataset_id)
    async with channel_to(blob_service.port, token=other_viewer) as channel:
        answer = await blob_pb2_grpc.BlobServiceStub(channel).BatchReadBlobs(
            blob_pb2.BatchReadBlobsRequest(digests=[preview.digest]))
    assert answer.responses[0].data == read.data


async def test_a_caller_who_may_not_read_the_source_is_refused_its_preview(
        blob_stub: blob_pb2_grpc.BlobServiceStub, blob_service: RunningService, metadata_channel: aio.Channel,
        readable: Readable) -> None:
    source = readable.source
    preview = await blob_stub.CreatePreview(blob_pb2.CreatePreviewRequest(
        digest=digest_to_proto(source), max_edge=24, format=blob_pb2.PREVIEW_FORMAT_JPEG))
    outsider = await _api_key(metadata_channel, None)
    async with channel_to(blob_service.port, token=outsider) as channel:
        blob = blob_pb2_grpc.BlobServiceStub(channel)
        calls = {
            "GetDownloadUrl": blob.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(digest=preview.digest)),
            "BatchReadBlobs": blob.BatchReadBlobs(blob_pb2.BatchReadBlobsRequest(digests=[preview.digest])),
            "CreatePreview": blob.CreatePreview(blob_pb2.CreatePreviewRequest(
                digest=digest_to_proto(source), max_edge=24, format=blob_pb2.PREVIEW_FORMAT_JPEG)),
        }
        for name, call in calls.items():
            with pytest.raises(aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, name
