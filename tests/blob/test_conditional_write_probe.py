"""The blob service refuses an object store that ignores PUT conditions, and serves on one that honours them."""

from __future__ import annotations

import grpc
import pytest

from framevault.api.digests import digest_of
from framevault.blob.storage import (
    CONDITIONAL_WRITE_PROBE_PREFIX,
    ConditionalWritesUnsupported,
    S3BlobStorage,
    verify_conditional_writes,
)
from framevault.common.config import Settings
from framevault.v1 import blob_pb2, blob_pb2_grpc

from .helpers import channel_to, proto_digest, rpc_error, start_blob_service


class IgnoresConditions(S3BlobStorage):
    """The real bucket behind a store that writes every conditional PUT, as a store without the feature does."""

    async def put_conditional(self, key: str, data: bytes, *, expected_etag: str | None,
                              content_type: str = "application/octet-stream") -> str:
        await self.put(key, data, content_type=content_type)
        info = await self.stat(key)
        assert info is not None
        return info.etag


@pytest.mark.parametrize("server_settings", ["settings", "versitygw_settings"])
async def test_the_real_servers_pass_the_probe_and_keep_no_probe_object(server_settings: str,
                                                                        request: pytest.FixtureRequest) -> None:
    storage = S3BlobStorage(request.getfixturevalue(server_settings))
    try:
        await verify_conditional_writes(storage)
        await verify_conditional_writes(storage)  # a second start probes again, with a fresh key
        assert [o.key async for o in storage.list_objects(CONDITIONAL_WRITE_PROBE_PREFIX)] == []
    finally:
        await storage.close()


async def test_a_store_ignoring_conditions_is_refused_by_name(settings: Settings) -> None:
    storage = IgnoresConditions(settings)
    try:
        with pytest.raises(ConditionalWritesUnsupported, match="If-None-Match: \\* and If-Match"):
            await verify_conditional_writes(storage)
    finally:
        await storage.close()


async def test_the_service_does_not_serve_on_a_store_ignoring_conditions(settings: Settings) -> None:
    running = await start_blob_service(settings, storage=IgnoresConditions(settings))
    try:
        assert not running.prepared.is_set()
        async with channel_to(running.port) as channel:
            stub = blob_pb2_grpc.BlobServiceStub(channel)
            error = await rpc_error(stub.FindMissingBlobs(blob_pb2.FindMissingBlobsRequest(
                digests=[proto_digest(digest_of(b"anything"))])))
            assert error.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.stop(grace=0)


async def test_the_service_serves_on_a_store_honouring_conditions(settings: Settings) -> None:
    running = await start_blob_service(settings)
    try:
        assert running.prepared.is_set()
    finally:
        await running.stop(grace=0)
