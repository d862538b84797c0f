"""The blob service with its S3 server unreachable: retryable errors and health, never INTERNAL."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from framevault.api.digests import digest_of
from framevault.common.config import Settings
from framevault.v1 import blob_pb2, blob_pb2_grpc

from .helpers import channel_to, free_port, proto_digest, rpc_error, start_blob_service


async def test_unreachable_s3_is_unavailable_and_not_serving(settings: Settings) -> None:
    nowhere = Settings(**{**settings.__dict__, "s3_endpoint": f"127.0.0.1:{free_port()}"})
    running = await start_blob_service(nowhere)
    try:
        async with channel_to(running.port) as channel:
            stub = blob_pb2_grpc.BlobServiceStub(channel)
            error = await rpc_error(stub.FindMissingBlobs(blob_pb2.FindMissingBlobsRequest(
                digests=[proto_digest(digest_of(b"anything"))])))
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            health = health_pb2_grpc.HealthStub(channel)
            async with asyncio.timeout(30):
                while True:
                    status = (await health.Check(health_pb2.HealthCheckRequest(service=""))).status
                    if status == health_pb2.HealthCheckResponse.NOT_SERVING:
                        break
                    await asyncio.sleep(0.2)
    finally:
        await running.stop(grace=0)
