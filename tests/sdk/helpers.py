"""Shared by the SDK and CLI tests: the SDK pointed at the session's services, real images."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image
from support import channel_to, client_tls_settings

from framevault.common.server import RunningService
from framevault.sdk import ClientSettings, aclose, configure, get_settings


async def wait_until_serving(port: int, timeout: float = 60.0) -> None:
    """Both services answer UNAVAILABLE until their backends are prepared."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with channel_to(port) as channel:
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
                         retry_initial_backoff_seconds=0.05, **client_tls_settings())
    yield settings
    await aclose()
    await asyncio.to_thread(configure, metadata_target=previous.metadata_target, blob_target=previous.blob_target,
                            ca_file=previous.ca_file, client_cert_file=previous.client_cert_file,
                            client_key_file=previous.client_key_file)


def make_image(path: Path, size: tuple[int, int] = (32, 24), color: tuple[int, int, int] = (200, 30, 30)) -> Path:
    """A real, small JPEG or PNG (format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def write_coco_folder(root: Path) -> tuple[Path, Path]:
    """Three real images (JPEG and PNG), a text file, and a COCO file with boxes,
    polygons, RLE and keypoints (and an annotation of an unknown image)."""
    folder = root / "images"
    make_image(folder / "cats" / "cat1.jpg", (40, 30), (200, 10, 10))
    make_image(folder / "cats" / "cat2.png", (20, 10), (10, 200, 10))
    make_image(folder / "dog.jpg", (16, 16), (10, 10, 200))
    (folder / "notes.txt").write_text("not an image")
    coco = {
        "images": [
            {"id": 1, "file_name": "cat1.jpg", "width": 40, "height": 30},
            {"id": 2, "file_name": "cats/cat2.png", "width": 20, "height": 10},
            {"id": 3, "file_name": "dog.jpg"},
        ],
        "categories": [{"id": 7, "name": "cat"}, {"id": 8, "name": "dog"}],
        "annotations": [
            {"id": 100, "image_id": 1, "category_id": 7, "bbox": [1, 2, 10, 8], "area": 80, "iscrowd": 0,
             "segmentation": [[1, 2, 11, 2, 11, 10, 1, 10]]},
            {"id": 101, "image_id": 2, "category_id": 7, "bbox": [0, 0, 5, 5], "iscrowd": 1,
             "segmentation": {"counts": [0, 25, 175], "size": [10, 20]}},
            {"id": 102, "image_id": 3, "category_id": 8, "bbox": [2, 2, 8, 8], "num_keypoints": 2,
             "keypoints": [5, 5, 2, 6, 6, 1, 0, 0, 0]},
            {"id": 103, "image_id": 99, "category_id": 8, "bbox": [0, 0, 1, 1]},
        ],
    }
    coco_file = root / "instances.json"
    coco_file.write_text(json.dumps(coco))
    return folder, coco_file
