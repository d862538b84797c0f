"""Every service a test session starts checks its callers: the session's own services refuse a
caller without a token, and no service starts in a test with security off."""

from __future__ import annotations

import dataclasses

import grpc
import pytest
from grpc import aio
from support import channel_to, start_blob_service, start_metadata_service

from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.v1 import blob_pb2, blob_pb2_grpc, metadata_service_pb2_grpc
from framevault.v1 import metadata_service_pb2 as ms


async def test_the_session_services_refuse_a_caller_without_a_token(metadata_service: RunningService,
                                                                    blob_service: RunningService) -> None:
    async with channel_to(metadata_service.port, anonymous=True) as channel:
        with pytest.raises(aio.AioRpcError) as refused:
            await metadata_service_pb2_grpc.MetadataServiceStub(channel).ListDatasets(ms.ListDatasetsRequest())
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with channel_to(blob_service.port, anonymous=True) as channel:
        with pytest.raises(aio.AioRpcError) as refused:
            await blob_pb2_grpc.BlobServiceStub(channel).GetCapabilities(blob_pb2.GetCapabilitiesRequest())
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_session_services_answer_the_session_admin_key(metadata_service: RunningService,
                                                                 blob_service: RunningService) -> None:
    async with channel_to(metadata_service.port) as channel:
        await metadata_service_pb2_grpc.MetadataServiceStub(channel).ListDatasets(ms.ListDatasetsRequest())
    async with channel_to(blob_service.port) as channel:
        await blob_pb2_grpc.BlobServiceStub(channel).GetCapabilities(blob_pb2.GetCapabilitiesRequest())


async def test_no_service_starts_in_a_test_with_security_off(settings: Settings) -> None:
    from framevault.blob.app import build_service

    assert settings.security_mode == "on"
    local_dev = dataclasses.replace(settings, security_mode="local-dev")
    for start in (start_metadata_service, start_blob_service):
        with pytest.raises(AssertionError, match="security_mode='local-dev'"):
            await start(local_dev)
    # Also one a test builds itself.
    with pytest.raises(AssertionError, match="security_mode='local-dev'"):
        await RunningService(build_service(local_dev), local_dev).start()
