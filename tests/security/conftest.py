"""A metadata service with security on, and what its tests call it with.

The service runs in-process against the session's real database with the
session's settings (security on, its secrets, the admin key the session's
metadata service issued) and JWTs of a test issuer whose JWKS document a local
HTTP server serves. Every other credential is made here: API keys through the
AccessService, JWTs signed with a key generated for the session. Its channel
carries no token: each call sends the credential of the caller it tests.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc import aio
from support import admin_token as session_admin_token
from support import channel_to, start_metadata_service

from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.v1 import access_pb2, access_pb2_grpc, dataset_pb2, frame_pb2, metadata_service_pb2_grpc
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import AUDIENCE, ISSUER, JwtIssuer, bearer, issue_key, jwks_document, unique


@pytest.fixture(scope="session")
def issuer() -> Iterator[JwtIssuer]:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    document = jwks_document(private_key.public_key())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield JwtIssuer(private_key, stranger_key, f"http://127.0.0.1:{server.server_address[1]}/jwks.json")
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def admin_key_file(settings: Settings) -> Path:
    """Where the session's metadata service wrote the admin key it issued."""
    return Path(settings.bootstrap_admin_key_file)


@pytest.fixture(scope="session")
def secure_settings(settings: Settings, blob_service: RunningService, issuer: JwtIssuer) -> Settings:
    return dataclasses.replace(
        settings,
        blob_target=f"127.0.0.1:{blob_service.port}",
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_jwks_url=issuer.jwks_url,
        jwt_algorithms="RS256",
        jwt_leeway_seconds=5,
    )


@pytest.fixture(scope="session")
async def secure_metadata(secure_settings: Settings) -> AsyncIterator[RunningService]:
    running = await start_metadata_service(secure_settings)
    yield running
    await running.stop(grace=1)


@pytest.fixture(scope="session")
async def secure_channel(secure_metadata: RunningService) -> AsyncIterator[aio.Channel]:
    async with channel_to(secure_metadata.port, anonymous=True) as channel:
        yield channel


@pytest.fixture(scope="session")
def metadata(secure_channel: aio.Channel) -> metadata_service_pb2_grpc.MetadataServiceStub:
    return metadata_service_pb2_grpc.MetadataServiceStub(secure_channel)


@pytest.fixture(scope="session")
def access(secure_channel: aio.Channel) -> access_pb2_grpc.AccessServiceStub:
    return access_pb2_grpc.AccessServiceStub(secure_channel)


@pytest.fixture(scope="session")
def admin_token(secure_metadata: RunningService, admin_key_file: Path) -> str:
    """The bootstrap admin key the session's metadata service wrote at start."""
    assert admin_key_file.stat().st_mode & 0o777 == 0o600
    return session_admin_token()


@pytest.fixture(scope="session")
def admin(admin_token: str) -> tuple[tuple[str, str], ...]:
    return bearer(admin_token)


@dataclass
class World:
    """Two datasets and one caller per kind of the test matrix.

    ``target`` (D) has a published version with frames and a draft; its
    viewer, editor and owner are API keys of their own principals. ``other``
    (E) has an owner of its own, who has no role on D."""

    target: dataset_pb2.Dataset
    published: dataset_pb2.Version
    draft: dataset_pb2.Version
    other: dataset_pb2.Dataset
    callers: dict[str, tuple[tuple[str, str], ...]]
    principals: dict[str, str]
    frame_id: str = "f1"


CALLER_KINDS = ("anonymous", "invalid token", "viewer", "editor", "owner", "admin", "owner of another dataset")


async def _dataset_with_snapshot(metadata: Any, admin: Any) -> tuple[dataset_pb2.Dataset, dataset_pb2.Version,
                                                                       dataset_pb2.Version]:
    dataset = await metadata.CreateDataset(ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(
        name=unique("secured"))), metadata=admin)
    current = await metadata.GetVersion(ms.GetVersionRequest(version=dataset_pb2.VersionRef(
        dataset=dataset_pb2.DatasetRef(id=dataset.id), name="Current")), metadata=admin)
    call = metadata.UploadFrames(metadata=admin)
    await call.write(ms.UploadFramesRequest(options=ms.UploadOptions(version=dataset_pb2.VersionRef(id=current.id))))
    await call.write(ms.UploadFramesRequest(items=[ms.UploadItem(frame=frame_pb2.Frame(
        id=frame_id, sources=[frame_pb2.Source(uri=f"https://images.invalid/{frame_id}.jpg")]))
        for frame_id in ("f1", "f2")]))
    await call.done_writing()
    results = [response async for response in call]
    assert results[-1].summary.created == 2
    snapshot = await metadata.SnapshotVersion(ms.SnapshotVersionRequest(
        version=dataset_pb2.VersionRef(id=current.id), snapshot_name="v1"), metadata=admin)
    return dataset, snapshot.snapshot, snapshot.draft


@pytest.fixture(scope="session")
async def world(metadata: Any, access: Any, admin: Any) -> World:
    target, published, draft = await _dataset_with_snapshot(metadata, admin)
    other, _, _ = await _dataset_with_snapshot(metadata, admin)
    callers: dict[str, tuple[tuple[str, str], ...]] = {
        "anonymous": (),
        "invalid token": bearer("fv_0123456789abcdef_" + "A" * 43),
        "admin": admin,
    }
    principals = {"admin": "admin"}
    for kind, dataset, role in (("viewer", target, access_pb2.ROLE_VIEWER), ("editor", target, access_pb2.ROLE_EDITOR),
                                ("owner", target, access_pb2.ROLE_OWNER),
                                ("owner of another dataset", other, access_pb2.ROLE_OWNER)):
        principal = unique(kind.replace(" ", "-"))
        await access.GrantRole(access_pb2.GrantRoleRequest(principal=principal, role=role,
                                                           dataset=dataset_pb2.DatasetRef(id=dataset.id)),
                               metadata=admin)
        issued = await issue_key(access, admin, principal)
        callers[kind] = bearer(issued.token)
        principals[kind] = principal
    return World(target, published, draft, other, callers, principals)
