"""Fixtures shared by every test: the real local stack and both services.

The stack's fixtures come from the framevault-stack pytest plugin
(``framevault.stack.pytest_plugin``): ``stack_env`` starts the stack if it is
not running, and ``settings`` gives each test session its own database and
bucket, so sessions never see each other's data. Here, services run
in-process on free ports against them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from grpc import aio
from support import channel_to, start_blob_service, start_metadata_service

from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.v1 import blob_pb2_grpc, metadata_service_pb2_grpc

# No test reads the user's client config file (``make run`` writes one with its TLS settings):
# every client started here, in-process or as a process, has only the settings its test gives.
os.environ["FRAMEVAULT_CONFIG"] = ""


@pytest.fixture(scope="session")
async def blob_service(settings: Settings) -> AsyncIterator[RunningService]:
    running = await start_blob_service(settings)
    yield running
    await running.stop(grace=1)


@pytest.fixture(scope="session")
async def metadata_service(settings: Settings, blob_service: RunningService) -> AsyncIterator[RunningService]:
    metadata_settings = Settings(**{**settings.__dict__, "blob_target": f"127.0.0.1:{blob_service.port}"})
    running = await start_metadata_service(metadata_settings)
    yield running
    await running.stop(grace=1)


@pytest.fixture(scope="session")
async def metadata_channel(metadata_service: RunningService) -> AsyncIterator[aio.Channel]:
    async with channel_to(metadata_service.port) as channel:
        yield channel


@pytest.fixture(scope="session")
async def blob_channel(blob_service: RunningService) -> AsyncIterator[aio.Channel]:
    async with channel_to(blob_service.port) as channel:
        yield channel


@pytest.fixture(scope="session")
def metadata_stub(metadata_channel: aio.Channel) -> metadata_service_pb2_grpc.MetadataServiceStub:
    return metadata_service_pb2_grpc.MetadataServiceStub(metadata_channel)


@pytest.fixture(scope="session")
def blob_stub(blob_channel: aio.Channel) -> blob_pb2_grpc.BlobServiceStub:
    return blob_pb2_grpc.BlobServiceStub(blob_channel)
