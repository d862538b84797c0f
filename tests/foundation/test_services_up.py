"""Both services run on the real stack: health, reflection, storage adapters."""

import pymongo
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from framevault.metadata.db import INDEXES, SCHEMA_VERSION, Database

SERVING = health_pb2.HealthCheckResponse.SERVING


async def _wait_serving(channel, service: str) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    async for reply in stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=60):
        if reply.status == SERVING:
            return
    pytest.fail(f"{service or 'server'} never became SERVING")


@pytest.mark.parametrize("service", ["", "framevault.v1.MetadataService"])
async def test_metadata_service_becomes_serving(metadata_channel, service):
    await _wait_serving(metadata_channel, service)


@pytest.mark.parametrize("service", ["", "framevault.v1.BlobService"])
async def test_blob_service_becomes_serving(blob_channel, service):
    await _wait_serving(blob_channel, service)


async def _reflected_services(channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for reply in stub.ServerReflectionInfo(requests()):
        return {s.name for s in reply.list_services_response.service}
    return set()


async def test_reflection_lists_each_service(metadata_channel, blob_channel):
    assert "framevault.v1.MetadataService" in await _reflected_services(metadata_channel)
    assert "framevault.v1.BlobService" in await _reflected_services(blob_channel)
    assert "grpc.health.v1.Health" in await _reflected_services(metadata_channel)


async def test_database_preparation_is_idempotent_against_real_mongod(settings):
    db = Database(settings)
    try:
        await db.prepare()
        await db.prepare()
        for collection, models in INDEXES.items():
            names = set((await db.db[collection].index_information()).keys())
            assert {m.document["name"] for m in models} <= names
        schema = await db.schema.find_one({"_id": "schema"})
        assert schema["version"] == SCHEMA_VERSION
        hello = await db.client.admin.command("hello")
        assert hello.get("setName"), "tests need mongod running as a replica set"
    finally:
        await db.close()


async def test_writes_use_majority_write_concern(settings):
    db = Database(settings)
    try:
        assert db.frames.write_concern.document.get("w") == "majority"
        result = await db.db["probe"].insert_one({"k": 1})
        assert result.acknowledged
        with pytest.raises(pymongo.errors.DuplicateKeyError):
            await db.db["probe"].insert_one({"_id": result.inserted_id})
    finally:
        await db.close()


async def test_liveness_name_serves_while_the_process_runs(metadata_channel, blob_channel):
    for channel in (metadata_channel, blob_channel):
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="liveness"))
        assert reply.status == SERVING


async def test_rpcs_are_counted_on_the_metrics_endpoint(metadata_service, metadata_channel):
    import urllib.request

    from grpc import aio

    from framevault.v1 import metadata_service_pb2, metadata_service_pb2_grpc

    stub = metadata_service_pb2_grpc.MetadataServiceStub(metadata_channel)
    with pytest.raises(aio.AioRpcError):
        await stub.GetDataset(metadata_service_pb2.GetDatasetRequest())
    assert metadata_service.metrics is not None
    url = f"http://127.0.0.1:{metadata_service.metrics.port}/metrics"
    page = urllib.request.urlopen(url, timeout=5).read().decode()
    assert ('framevault_rpcs_handled_total{grpc_code="INVALID_ARGUMENT",grpc_method="GetDataset",'
            'grpc_service="framevault.v1.MetadataService"}') in page


async def test_a_second_service_on_a_taken_address_fails_to_start(settings, blob_service):
    """gRPC would share the port between processes by default; a second
    service on the same address must refuse to start instead."""
    from dataclasses import replace

    from support import start_blob_service

    taken = replace(settings, blob_address=f"127.0.0.1:{blob_service.port}")
    with pytest.raises(RuntimeError):
        await start_blob_service(taken)
