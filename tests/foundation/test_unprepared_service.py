"""A service whose backend is not prepared answers UNAVAILABLE, never INTERNAL."""

import dataclasses

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support import channel_to

from framevault.common.server import RunningService
from framevault.metadata.app import build_service
from framevault.v1 import dataset_pb2, metadata_service_pb2, metadata_service_pb2_grpc


async def test_calls_wait_for_preparation_with_unavailable(settings):
    unreachable = dataclasses.replace(
        settings, mongodb_uri="mongodb://127.0.0.1:9/?directConnection=true", mongodb_timeout_ms=300
    )
    running = RunningService(build_service(unreachable), unreachable)
    await running.start()
    try:
        async with channel_to(running.port) as channel:
            stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
            with pytest.raises(aio.AioRpcError) as caught:
                await stub.CreateDataset(
                    metadata_service_pb2.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name="never"))
                )
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        await running.stop(grace=0)
