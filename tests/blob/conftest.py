"""Fixtures of the blob tests: clients, direct S3 inspection, a service with small parts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from framevault.api.blob_client import BlobClient
from framevault.blob.storage import S3BlobStorage
from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.v1 import blob_pb2_grpc

from .helpers import channel_to, start_blob_service, with_small_parts


@pytest.fixture
def blob_client(blob_stub: blob_pb2_grpc.BlobServiceStub) -> BlobClient:
    return BlobClient(blob_stub)


@pytest.fixture(scope="session")
async def s3(settings: Settings) -> AsyncIterator[S3BlobStorage]:
    """Direct access to the session bucket, to check what is (not) stored."""
    storage = S3BlobStorage(settings)
    yield storage
    await storage.close()


@pytest.fixture(scope="session")
def small_parts_settings(settings: Settings) -> Settings:
    return with_small_parts(settings)


@pytest.fixture(scope="session")
async def small_parts_service(small_parts_settings: Settings) -> AsyncIterator[RunningService]:
    running = await start_blob_service(small_parts_settings)
    yield running
    await running.stop(grace=1)


@pytest.fixture(scope="session")
async def small_parts_stub(small_parts_service: RunningService) -> AsyncIterator[blob_pb2_grpc.BlobServiceStub]:
    async with channel_to(small_parts_service.port) as channel:
        yield blob_pb2_grpc.BlobServiceStub(channel)
