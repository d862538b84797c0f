"""CollectGarbage against the real S3 server, in a bucket of its own.

References come over gRPC from a stand-in of the metadata service that
implements only ListReferencedBlobs from a known set of digests.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc import aio
from minio import Minio
from support import add_access_forwarder, add_tls_port

from framevault.api.blob_client import BlobClient
from framevault.api.digests import BlobDigest
from framevault.blob.keys import preview_index_key, preview_index_prefix, preview_source_key, preview_sources_prefix
from framevault.blob.storage import S3BlobStorage
from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.v1 import blob_pb2, blob_pb2_grpc, metadata_service_pb2, metadata_service_pb2_grpc

from .helpers import (
    MIB,
    SMALL_PART,
    channel_to,
    free_port,
    proto_digest,
    random_blob,
    rpc_error,
    start_blob_service,
    violated_fields,
    with_small_parts,
)
from .test_previews import image_bytes

GRACE_SECONDS = 3
# The documented longest grace period: a hundred years.
MAX_GRACE_PERIOD_SECONDS = 100 * 365 * 24 * 3600


class ReferenceStandIn(metadata_service_pb2_grpc.MetadataServiceServicer):
    """Streams ``referenced`` (plus ``added_on_second_call`` from the second call on) two digests a message."""

    def __init__(self) -> None:
        self.referenced: set[BlobDigest] = set()
        self.added_on_second_call: set[BlobDigest] = set()
        self.calls = 0

    async def ListReferencedBlobs(self, request: metadata_service_pb2.ListReferencedBlobsRequest,
                                  context: aio.ServicerContext
                                  ) -> AsyncIterator[metadata_service_pb2.ListReferencedBlobsResponse]:
        self.calls += 1
        digests = sorted(self.referenced | (self.added_on_second_call if self.calls > 1 else set()))
        for start in range(0, len(digests), 2):
            yield metadata_service_pb2.ListReferencedBlobsResponse(
                digests=[proto_digest(d) for d in digests[start:start + 2]], references_seen=start + 2)


@pytest.fixture(scope="module")
async def references(metadata_service: RunningService) -> AsyncIterator[tuple[ReferenceStandIn, int]]:
    stand_in = ReferenceStandIn()
    server = aio.server()
    metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server(stand_in, server)
    add_access_forwarder(server, metadata_service.port)
    port = add_tls_port(server)
    await server.start()
    yield stand_in, port
    await server.stop(0)


@pytest.fixture(scope="module")
def gc_settings(settings: Settings, references: tuple[ReferenceStandIn, int]) -> Settings:
    bucket = f"{settings.s3_bucket}-gc-{uuid.uuid4().hex[:6]}"
    Minio(settings.s3_endpoint, access_key=settings.s3_access_key, secret_key=settings.s3_secret_key.get_secret_value(),
          secure=settings.s3_secure, region=settings.s3_region).make_bucket(bucket)
    return with_small_parts(settings, s3_bucket=bucket, metadata_target=f"127.0.0.1:{references[1]}")


@pytest.fixture(scope="module")
async def gc_service(gc_settings: Settings) -> AsyncIterator[RunningService]:
    running = await start_blob_service(gc_settings)
    yield running
    await running.stop(grace=1)


@pytest.fixture(scope="module")
async def gc_stub(gc_service: RunningService) -> AsyncIterator[blob_pb2_grpc.BlobServiceStub]:
    async with channel_to(gc_service.port) as channel:
        yield blob_pb2_grpc.BlobServiceStub(channel)


async def collect(stub: blob_pb2_grpc.BlobServiceStub, *, dry_run: bool,
                  grace: int = GRACE_SECONDS) -> tuple[list[BlobDigest], blob_pb2.GarbageTotals]:
    messages = [m async for m in stub.CollectGarbage(blob_pb2.CollectGarbageRequest(
        dry_run=dry_run, grace_period_seconds=grace))]
    assert messages and messages[-1].HasField("totals")
    return [BlobDigest(d.hash, d.size_bytes) for m in messages for d in m.digests], messages[-1].totals


async def test_dry_run_then_real_collection(gc_stub: blob_pb2_grpc.BlobServiceStub, gc_settings: Settings,
                                            references: tuple[ReferenceStandIn, int]) -> None:
    stand_in = references[0]
    client = BlobClient(gc_stub)
    kept_data, kept = random_blob(1000)
    garbage_data, garbage = random_blob(2000)
    late_data, late = random_blob(3000)
    await client.upload_bytes(kept_data)
    await client.upload_bytes(garbage_data)
    stand_in.referenced = {kept}
    # An upload abandoned after one part: its invisible parts go once it is older than the grace period.
    abandoned_data, abandoned = random_blob(SMALL_PART + MIB)
    abandoned_name = f"uploads/{uuid.uuid4()}/blobs/{abandoned.hash}/{abandoned.size}"

    async def first_part() -> AsyncIterator[blob_pb2.WriteBlobRequest]:
        for offset in range(0, SMALL_PART + MIB, MIB):
            yield blob_pb2.WriteBlobRequest(resource_name=abandoned_name if offset == 0 else "",
                                            write_offset=offset, data=abandoned_data[offset:offset + MIB])

    assert (await gc_stub.WriteBlob(first_part())).committed_size == SMALL_PART
    await asyncio.sleep(GRACE_SECONDS + 0.5)
    await client.upload_bytes(late_data)  # unreferenced but younger than the grace period

    digests, totals = await collect(gc_stub, dry_run=True)
    assert digests == [garbage]
    assert (totals.scanned_blobs, totals.referenced_blobs, totals.collected_blobs, totals.collected_bytes,
            totals.dry_run) == (3, 1, 1, 2000, True)
    assert await client.missing([kept, garbage, late]) == set()

    # A blob that becomes referenced while the collection runs is kept.
    stand_in.calls, stand_in.added_on_second_call = 0, {garbage}
    digests, totals = await collect(gc_stub, dry_run=False)
    assert digests == [] and totals.collected_blobs == 0
    assert await client.missing([garbage]) == set()

    stand_in.calls, stand_in.added_on_second_call = 0, set()
    digests, totals = await collect(gc_stub, dry_run=False)
    assert digests == [garbage]
    assert (totals.scanned_blobs, totals.collected_blobs, totals.dry_run) == (3, 1, False)
    assert await client.missing([kept, garbage, late]) == {garbage}

    status = await gc_stub.QueryWriteStatus(blob_pb2.QueryWriteStatusRequest(resource_name=abandoned_name))
    assert status.committed_size == 0
    storage = S3BlobStorage(gc_settings)
    try:
        assert [u async for u in storage.list_multipart_uploads("")] == []
        assert [o async for o in storage.list_objects("uploads/")] == []
    finally:
        await storage.close()


@pytest.mark.parametrize("grace", [-1, MAX_GRACE_PERIOD_SECONDS + 1, 10**11, 2**63 - 1, -(2**63)])
async def test_bad_grace_period(gc_stub: blob_pb2_grpc.BlobServiceStub, grace: int) -> None:
    for dry_run in (True, False):
        error = await rpc_error(gc_stub.CollectGarbage(
            blob_pb2.CollectGarbageRequest(grace_period_seconds=grace, dry_run=dry_run)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(error) == ["grace_period_seconds"]


async def test_longest_grace_period_collects_nothing(gc_stub: blob_pb2_grpc.BlobServiceStub) -> None:
    replies = [r async for r in gc_stub.CollectGarbage(
        blob_pb2.CollectGarbageRequest(grace_period_seconds=MAX_GRACE_PERIOD_SECONDS, dry_run=True))]
    assert replies[-1].totals.dry_run and replies[-1].totals.collected_blobs == 0


async def test_unreachable_metadata_service_is_unavailable(gc_settings: Settings) -> None:
    unreachable = Settings(**{**gc_settings.__dict__, "metadata_target": f"127.0.0.1:{free_port()}",
                              "service_call_timeout_seconds": 2.0})
    running = await start_blob_service(unreachable)
    try:
        async with channel_to(running.port) as channel:
            stub = blob_pb2_grpc.BlobServiceStub(channel)
            error = await rpc_error(stub.CollectGarbage(blob_pb2.CollectGarbageRequest(dry_run=True)))
            assert error.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.stop(grace=0)


async def test_collection_takes_the_preview_records_of_the_blobs_it_collects(
        gc_stub: blob_pb2_grpc.BlobServiceStub, gc_settings: Settings, references: tuple[ReferenceStandIn, int]) -> None:
    stand_in = references[0]
    client = BlobClient(gc_stub)
    # The same pixels in two encodings: two sources of one preview.
    first = (await client.upload_bytes(image_bytes(64, 48, "PNG", compress_level=1))).digest
    second = (await client.upload_bytes(image_bytes(64, 48, "PNG", compress_level=9))).digest
    made = [await gc_stub.CreatePreview(blob_pb2.CreatePreviewRequest(digest=proto_digest(source), max_edge=32))
            for source in (first, second)]
    assert made[0].digest == made[1].digest
    preview = BlobDigest(made[0].digest.hash, made[0].digest.size_bytes)
    storage = S3BlobStorage(gc_settings)

    async def records() -> tuple[list[str], list[str]]:
        pairs = [o.key async for o in storage.list_objects(preview_sources_prefix(preview))]
        indexes = [o.key for source in (first, second) async for o in storage.list_objects(preview_index_prefix(source))]
        return pairs, indexes

    try:
        both_pairs = sorted([preview_source_key(preview, first), preview_source_key(preview, second)])
        both_indexes = [preview_index_key(first, 32, "jpeg"), preview_index_key(second, 32, "jpeg")]
        assert await records() == (both_pairs, both_indexes)
        await asyncio.sleep(GRACE_SECONDS + 0.5)
        # The first source goes; the preview (stored with a frame) and the second source stay.
        stand_in.referenced = {preview, second}
        stand_in.calls, stand_in.added_on_second_call = 0, set()
        digests, _ = await collect(gc_stub, dry_run=True)
        assert first in digests and await records() == (both_pairs, both_indexes)
        digests, _ = await collect(gc_stub, dry_run=False)
        assert first in digests and preview not in digests and second not in digests
        assert await records() == ([preview_source_key(preview, second)], [preview_index_key(second, 32, "jpeg")])

        # Then the preview goes: its records with it; the source keeps its index (a preview asked for again is
        # rendered again).
        stand_in.referenced = {second}
        stand_in.calls = 0
        digests, _ = await collect(gc_stub, dry_run=False)
        assert preview in digests and second not in digests
        assert await records() == ([], [preview_index_key(second, 32, "jpeg")])
        again = await gc_stub.CreatePreview(blob_pb2.CreatePreviewRequest(digest=proto_digest(second), max_edge=32))
        assert again.digest == made[0].digest
        assert await records() == ([preview_source_key(preview, second)], [preview_index_key(second, 32, "jpeg")])
        assert await client.missing([preview, second, first]) == {first}
    finally:
        await storage.close()
