"""Shared by the SDK and CLI tests: the SDK pointed at the session's services, real images."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from framevault.common.server import RunningService
from framevault.sdk import ClientSettings, aclose, configure, get_settings


async def wait_until_serving(port: int, timeout: float = 60.0) -> None:
    """Both services answer UNAVAILABLE until their backends are prepared."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            if loop.time() > deadline:
                raise TimeoutError(f"service on port {port} is not serving")
            await asyncio.sleep(0.2)


@pytest.fixture(scope="session")
async def sdk(metadata_service: RunningService, blob_service: RunningService) -> AsyncIterator[ClientSettings]:
    """The SDK configured for the session's services (for async and sync calls alike)."""
    await wait_until_serving(metadata_service.port)
    await wait_until_serving(blob_service.port)
    previous = get_settings()
    settings = configure(metadata_target=f"127.0.0.1:{metadata_service.port}",
                         blob_target=f"127.0.0.1:{blob_service.port}",
                         retry_initial_backoff_seconds=0.05)
    yield settings
    await aclose()
    await asyncio.to_thread(configure, metadata_target=previous.metadata_target, blob_target=previous.blob_target)


def make_image(path: Path, size: tuple[int, int] = (32, 24), color: tuple[int, int, int] = (200, 30, 30)) -> Path:
    """A real, small JPEG or PNG (format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path
