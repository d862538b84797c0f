"""The gateway in-process over the session's real services, and a seeded dataset to browse.

The app is driven through httpx's ASGI transport; it calls the metadata and
blob services over gRPC with the session's settings (mutual TLS with the
local CA), forwarding the caller's token as the web app's requests do.
"""

from __future__ import annotations

import dataclasses
import io
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from grpc import aio
from PIL import Image
from support import admin_token

from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.gateway.app import build_app
from framevault.gateway.backend import Backends
from framevault.v1 import access_pb2, access_pb2_grpc, dataset_pb2, frame_pb2
from framevault.v1 import metadata_service_pb2 as ms

BOX = frame_pb2.Box2D(x=4, y=6, w=10, h=8)


def png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


@dataclass
class Seeded:
    """A dataset with a published root (4 frames in 2 contexts) and its child draft (one frame
    changed, one added, one removed)."""

    dataset_id: str
    name: str
    # An API key of a principal that may only view the dataset.
    viewer_token: str
    root_id: str
    draft_id: str
    frame_ids: list[str]


def gateway_settings(settings: Settings, metadata: RunningService, blob: RunningService, **overrides: object
                     ) -> Settings:
    return dataclasses.replace(settings, metadata_target=f"127.0.0.1:{metadata.port}",
                               blob_target=f"127.0.0.1:{blob.port}", gateway_static_dir="",
                               gateway_session_secret=f"gateway-tests-{secrets.token_hex(16)}", **overrides)


@pytest.fixture(scope="session")
async def gateway_backends(settings: Settings, metadata_service: RunningService,
                           blob_service: RunningService) -> AsyncIterator[Backends]:
    backends = Backends(gateway_settings(settings, metadata_service, blob_service))
    yield backends
    await backends.close()


@pytest.fixture(scope="session")
def gateway_app(settings: Settings, metadata_service: RunningService, blob_service: RunningService,
                gateway_backends: Backends) -> object:
    return build_app(gateway_settings(settings, metadata_service, blob_service), gateway_backends)


@pytest.fixture
async def web(gateway_app: object) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway without credentials (a browser that has not signed in)."""
    transport = httpx.ASGITransport(app=gateway_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        yield client


@pytest.fixture
async def admin_web(gateway_app: object) -> AsyncIterator[httpx.AsyncClient]:
    """A script's client of the gateway: the session's admin key as a bearer token."""
    transport = httpx.ASGITransport(app=gateway_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test",
                                 headers={"authorization": f"Bearer {admin_token()}"}) as client:
        yield client


async def _upload(metadata_stub: object, version_id: str, frames: list[frame_pb2.Frame]) -> None:
    call = metadata_stub.UploadFrames()  # type: ignore[attr-defined]
    await call.write(ms.UploadFramesRequest(options=ms.UploadOptions(version=dataset_pb2.VersionRef(id=version_id))))
    await call.write(ms.UploadFramesRequest(items=[ms.UploadItem(frame=f) for f in frames]))
    await call.done_writing()
    async for answer in call:
        if answer.HasField("results"):
            failed = [r for r in answer.results.results if r.outcome == ms.FrameResult.OUTCOME_FAILED]
            assert not failed, failed


def seeded_frame(frame_id: str, context: str, timestamp: int, colour: tuple[int, int, int], label: str,
                 *, mask: bytes = b"") -> frame_pb2.Frame:
    source = frame_pb2.Source(id="default", inline_content=png(colour), content_type="image/png", width=64, height=48)
    if mask:
        source.masks.add(id="semantic", inline_content=mask, content_type="image/png")
    return frame_pb2.Frame(id=frame_id, context_id=context, timestamp=timestamp, sources=[source],
                           rois=[frame_pb2.Roi(labels=[label], box=BOX, confidence=0.9)])


MASK_COLOUR = (0, 0, 255)


@pytest.fixture(scope="session")
async def seeded(metadata_stub: object, metadata_channel: aio.Channel) -> Seeded:
    stub = metadata_stub
    name = f"gateway-{uuid.uuid4().hex[:8]}"
    dataset = await stub.CreateDataset(ms.CreateDatasetRequest(  # type: ignore[attr-defined]
        dataset=dataset_pb2.Dataset(name=name, tags=["web"])))
    root = await stub.CreateVersion(ms.CreateVersionRequest(  # type: ignore[attr-defined]
        dataset=dataset_pb2.DatasetRef(id=dataset.id), version=dataset_pb2.Version(
            name="root", mask_labels=[dataset_pb2.MaskLabel(value=list(MASK_COLOUR), labels=["sky"])])))
    frames = [seeded_frame("a-0", "drive-a", 0, (200, 10, 10), "car", mask=png(MASK_COLOUR)),
              seeded_frame("a-1", "drive-a", 33, (10, 200, 10), "car"),
              seeded_frame("b-0", "drive-b", 0, (10, 10, 200), "person"),
              seeded_frame("b-1", "drive-b", 33, (90, 90, 90), "person")]
    await _upload(stub, root.id, frames)
    await stub.PublishVersion(ms.PublishVersionRequest(  # type: ignore[attr-defined]
        version=dataset_pb2.VersionRef(id=root.id)))
    draft = await stub.CreateVersion(ms.CreateVersionRequest(  # type: ignore[attr-defined]
        dataset=dataset_pb2.DatasetRef(id=dataset.id), parent=dataset_pb2.VersionRef(id=root.id),
        version=dataset_pb2.Version(name="draft")))
    await _upload(stub, draft.id, [seeded_frame("a-1", "drive-a", 33, (10, 200, 10), "truck"),
                                   seeded_frame("c-0", "drive-c", 0, (250, 250, 0), "bike")])
    await stub.DeleteFrames(ms.DeleteFramesRequest(  # type: ignore[attr-defined]
        version=dataset_pb2.VersionRef(id=draft.id), frame_ids=["b-1"]))
    access = access_pb2_grpc.AccessServiceStub(metadata_channel)
    principal = f"viewer-{uuid.uuid4().hex[:8]}"
    key = await access.CreateApiKey(access_pb2.CreateApiKeyRequest(api_key=access_pb2.ApiKey(principal=principal)))
    await access.GrantRole(access_pb2.GrantRoleRequest(principal=principal, role=access_pb2.ROLE_VIEWER,
                                                       dataset=dataset_pb2.DatasetRef(id=dataset.id)))
    return Seeded(dataset.id, name, key.token, root.id, draft.id, [f.id for f in frames])
