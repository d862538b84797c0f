"""Fixtures of the blob tests: clients, direct S3 inspection, a service with small parts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from framevault.api.blob_client import BlobClient
from framevault.blob.storage import S3BlobStorage
from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.stack.versitygw import VersityS3
from framevault.v1 import blob_pb2_grpc

from .helpers import channel_to, free_port, start_blob_service, with_small_parts


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
    # Direct uploads in parts of SMALL_PART, the staged path (one checked PUT has tests of its own).
    return with_small_parts(settings, blob_direct_single_put_max_bytes=0)


@pytest.fixture(scope="session")
async def small_parts_service(small_parts_settings: Settings) -> AsyncIterator[RunningService]:
    running = await start_blob_service(small_parts_settings)
    yield running
    await running.stop(grace=1)


@pytest.fixture(scope="session")
async def small_parts_stub(small_parts_service: RunningService) -> AsyncIterator[blob_pb2_grpc.BlobServiceStub]:
    async with channel_to(small_parts_service.port) as channel:
        yield blob_pb2_grpc.BlobServiceStub(channel)


@pytest.fixture(scope="session")
def versitygw_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The session settings pointed at a versitygw server of its own (same credentials and bucket)."""
    server = VersityS3(tmp_path_factory.mktemp("versitygw"), free_port(), access_key=settings.s3_access_key,
                       secret_key=settings.s3_secret_key.get_secret_value(), bucket=settings.s3_bucket).start()
    yield Settings(**{**settings.__dict__, "s3_endpoint": server.endpoint, "s3_secure": False})
    server.stop()
