"""Fixtures shared by every test: the real local stack and both services.

The stack's fixtures come from the framevault-stack pytest plugin
(``framevault.stack.pytest_plugin``): ``stack_env`` starts the stack if it is
not running, and ``settings`` gives each test session its own database and
bucket, so sessions never see each other's data. Here, services run
in-process on free ports against them, with security on: the metadata service
issues the session's admin key at start, and the channels of tests/support.py
send it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Iterator

import pytest
from grpc import aio
from support import channel_to, require_security, start_blob_service, start_metadata_service, use_session_admin_key

from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.v1 import blob_pb2_grpc, metadata_service_pb2_grpc

# No test reads the user's client config file (``make run`` writes one with its TLS settings):
# every client started here, in-process or as a process, has only the settings its test gives.
os.environ["FRAMEVAULT_CONFIG"] = ""


@pytest.fixture(scope="session", autouse=True)
def every_service_checks_callers() -> Iterator[None]:
    """No service a test starts in-process runs with security off: starting one fails the test."""
    start = RunningService.start

    async def checked_start(self: RunningService) -> None:
        require_security(self.settings)
        await start(self)

    RunningService.start = checked_start  # type: ignore[method-assign]
    yield
    RunningService.start = start  # type: ignore[method-assign]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the session's settings may start services of its own and call them through
    tests/support.py, with the session's admin key: the session's services (which issue it) start
    first."""
    for item in items:
        names = getattr(item, "fixturenames", None)
        if names is not None and "settings" in names and "services" not in names:
            names.insert(0, "services")


@pytest.fixture(scope="session")
async def services(settings: Settings) -> AsyncIterator[tuple[RunningService, RunningService]]:
    """The session's blob and metadata services. The blob service asks the metadata service who a
    caller is, so both run before any test calls either."""
    blob = await start_blob_service(settings)
    metadata = await start_metadata_service(dataclasses.replace(
        settings, metadata_address=settings.metadata_target, blob_target=f"127.0.0.1:{blob.port}"))
    use_session_admin_key(settings.bootstrap_admin_key_file)
    yield blob, metadata
    await metadata.stop(grace=1)
    await blob.stop(grace=1)


@pytest.fixture(scope="session")
def blob_service(services: tuple[RunningService, RunningService]) -> RunningService:
    return services[0]


@pytest.fixture(scope="session")
def metadata_service(services: tuple[RunningService, RunningService]) -> RunningService:
    return services[1]


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
