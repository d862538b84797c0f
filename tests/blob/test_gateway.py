"""GrpcBlobGateway: the metadata service's client of the blob service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from grpc import aio
from support import add_tls_port

from framevault.api.digests import EMPTY_SHA256, BlobDigest, digest_of
from framevault.blob.keys import cas_key
from framevault.blob.storage import S3BlobStorage
from framevault.common.config import Settings
from framevault.common.errors import Internal, Unavailable
from framevault.common.server import RunningService
from framevault.metadata.blob_gateway import GrpcBlobGateway
from framevault.v1 import blob_pb2, blob_pb2_grpc

from .helpers import MIB, free_port, random_blob, start_blob_service


@pytest.fixture
async def gateway(blob_service: RunningService, settings: Settings) -> AsyncIterator[GrpcBlobGateway]:
    client = GrpcBlobGateway(f"127.0.0.1:{blob_service.port}", settings)
    yield client
    await client.close()


async def test_store_small_bytes_and_find_them(gateway: GrpcBlobGateway, s3: S3BlobStorage) -> None:
    data, digest = random_blob(5000)
    _, absent = random_blob(10)
    assert await gateway.find_missing([digest, absent]) == {digest, absent}
    assert await gateway.store(data) == digest
    assert await gateway.store(data) == digest  # idempotent
    assert await s3.get(cas_key(digest)) == data
    assert await gateway.find_missing([digest, absent, digest]) == {absent}


async def test_empty_bytes_need_no_call(settings: Settings) -> None:
    nowhere = GrpcBlobGateway(f"127.0.0.1:{free_port()}", settings)
    try:
        assert await nowhere.store(b"") == BlobDigest(EMPTY_SHA256, 0)
        assert await nowhere.find_missing([BlobDigest(EMPTY_SHA256, 0)]) == set()
    finally:
        await nowhere.close()


async def test_bytes_over_the_batch_limit_are_streamed(gateway: GrpcBlobGateway, settings: Settings,
                                                       s3: S3BlobStorage) -> None:
    data, digest = random_blob(settings.blob_max_batch_total_size_bytes + MIB)
    assert await gateway.store(data) == digest
    assert await s3.get(cas_key(digest)) == data


async def test_find_missing_in_batches_of_the_advertised_maximum(settings: Settings) -> None:
    small_batches = Settings(**{**settings.__dict__, "blob_max_batch_blobs": 3})
    running = await start_blob_service(small_batches)
    gateway = GrpcBlobGateway(f"127.0.0.1:{running.port}", small_batches)
    try:
        blobs = [random_blob(100 + i) for i in range(8)]
        for data, _ in blobs[:3]:
            await gateway.store(data)
        digests = [d for _, d in blobs]
        assert await gateway.find_missing(digests) == set(digests[3:])
        assert (await gateway.capabilities()).max_batch_blobs == 3
    finally:
        await gateway.close()
        await running.stop(grace=0)


async def test_unreachable_blob_service_is_unavailable(settings: Settings) -> None:
    quick = Settings(**{**settings.__dict__, "service_call_timeout_seconds": 2.0})
    gateway = GrpcBlobGateway(f"127.0.0.1:{free_port()}", quick)
    try:
        with pytest.raises(Unavailable):
            await gateway.find_missing([digest_of(b"x")])
        with pytest.raises(Unavailable):
            await gateway.store(b"x")
    finally:
        await gateway.close()


class FlakyBlobService(blob_pb2_grpc.BlobServiceServicer):
    """Answers FindMissingBlobs with ``failures`` first, then with nothing missing."""

    def __init__(self, failures: list[grpc.StatusCode]):
        self.failures = failures
        self.calls = 0

    async def GetCapabilities(self, request: blob_pb2.GetCapabilitiesRequest,
                              context: aio.ServicerContext) -> blob_pb2.GetCapabilitiesResponse:
        return blob_pb2.GetCapabilitiesResponse(max_batch_blobs=10, max_batch_total_size_bytes=MIB)

    async def FindMissingBlobs(self, request: blob_pb2.FindMissingBlobsRequest,
                               context: aio.ServicerContext) -> blob_pb2.FindMissingBlobsResponse:
        self.calls += 1
        if self.failures:
            await context.abort(self.failures.pop(0), "injected failure")
        return blob_pb2.FindMissingBlobsResponse()


@pytest.mark.parametrize(("failures", "calls", "outcome"), [
    ([grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE], 3, None),
    ([grpc.StatusCode.INVALID_ARGUMENT], 1, Internal),
    ([grpc.StatusCode.DEADLINE_EXCEEDED], 1, Unavailable),
])
async def test_only_unavailable_is_retried(settings: Settings, failures: list[grpc.StatusCode], calls: int,
                                           outcome: type[Exception] | None) -> None:
    flaky = FlakyBlobService(list(failures))
    server = aio.server()
    blob_pb2_grpc.add_BlobServiceServicer_to_server(flaky, server)
    port = add_tls_port(server)
    await server.start()
    gateway = GrpcBlobGateway(f"127.0.0.1:{port}", settings)
    try:
        if outcome is None:
            assert await gateway.find_missing([digest_of(b"y")]) == set()
        else:
            with pytest.raises(outcome):
                await gateway.find_missing([digest_of(b"y")])
        assert flaky.calls == calls
    finally:
        await gateway.close()
        await server.stop(0)
