"""Servers close old connections (``grpc_max_connection_age_ms``), so a caller balancing over a DNS
name resolves it again and reaches replicas added since; calls in flight are not cut."""

import asyncio
from dataclasses import replace

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support import channel_to, start_blob_service

SERVING = health_pb2.HealthCheckResponse.SERVING


async def _until_serving(watch) -> None:
    while (await watch.read()).status != SERVING:
        pass


async def test_server_retires_a_connection_past_its_age_and_keeps_its_streams(settings):
    aged = replace(settings, blob_address="127.0.0.1:0", grpc_max_connection_age_ms=500)
    service = await start_blob_service(aged)
    try:
        async with channel_to(service.port) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
            # The service may still be checking its store when it answers first (NOT_SERVING): the
            # watch sends each change, so the stream is live on this connection once it says SERVING.
            await asyncio.wait_for(_until_serving(watch), timeout=30)
            assert channel.get_state() == grpc.ChannelConnectivity.READY
            # The server's GOAWAY moves the channel off READY: its next call opens a new connection.
            await asyncio.wait_for(channel.wait_for_state_change(grpc.ChannelConnectivity.READY), timeout=30)
            assert channel.get_state() != grpc.ChannelConnectivity.READY
            assert (await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)).status == SERVING
            # The stream opened on the retired connection is still live: no grace limit ends it.
            assert not watch.done()
            watch.cancel()
    finally:
        await service.stop(grace=1)
