"""Fixtures shared by every test: the real local stack and both services.

The stack (mongod replica set + S3 server) is started by the project's own
script if it is not running. Each test session gets its own database and
bucket, so sessions never see each other's data; services run in-process on
free ports against them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from grpc import aio
from support import channel_to, remove_test_data, start_blob_service

from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.v1 import blob_pb2_grpc, metadata_service_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
STACK_SCRIPT = REPO / "deploy" / "local" / "stack.py"
sys.path.insert(0, str(STACK_SCRIPT.parent))


def _stack_env() -> dict[str, str]:
    subprocess.run([sys.executable, str(STACK_SCRIPT), "up"], check=True, cwd=REPO)
    out = subprocess.run([sys.executable, str(STACK_SCRIPT), "env"], check=True, cwd=REPO,
                         capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            env[key] = value.strip("'\"")
    return env


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    return _stack_env()


@pytest.fixture(scope="session")
def settings(stack_env: dict[str, str]) -> Iterator[Settings]:
    run_id = uuid.uuid4().hex[:10]
    environ = {**os.environ, **stack_env}
    base = Settings.from_env(environ)
    bucket = f"fvtest-{run_id}"
    from minio import Minio

    client = Minio(base.s3_endpoint, access_key=base.s3_access_key, secret_key=base.s3_secret_key.get_secret_value(),
                   secure=base.s3_secure, region=base.s3_region)
    client.make_bucket(bucket)
    session_settings = Settings.from_env(
        environ,
        mongodb_database=f"fvtest_{run_id}",
        s3_bucket=bucket,
        metadata_address="127.0.0.1:0",
        blob_address="127.0.0.1:0",
        metadata_metrics_address="127.0.0.1:0",
        blob_metrics_address="127.0.0.1:0",
        log_format="console",
        log_level=os.environ.get("FRAMEVAULT_TEST_LOG_LEVEL", "WARNING"),
    )
    yield session_settings
    remove_test_data(session_settings, database=session_settings.mongodb_database, bucket=bucket)


async def start_metadata_service(settings: Settings) -> RunningService:
    from framevault.metadata.app import build_service

    running = RunningService(build_service(settings), settings)
    await running.start()
    return running


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
