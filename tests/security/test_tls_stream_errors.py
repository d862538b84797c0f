"""A plaintext SDK on a TLS port is told so on its streams too: uploads,
iteration, diffs and blob reads and writes fail at once with the message the
unary calls give ("... requires TLS, but this client connects in plaintext"),
instead of being retried and ending with gRPC's "Socket closed". A TLS SDK on
a plaintext port is told that the service serves plaintext, on every path."""

# ruff: noqa: F811 - the fixtures of tls_services are imported by name, and tests take them as parameters

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio

from framevault.api.digests import digest_of
from framevault.sdk import FramevaultError, runtime
from framevault.sdk.blobs import BlobTransfer
from framevault.sdk.client import FramevaultClient
from framevault.sdk.dataset import DatasetVersion
from framevault.sdk.dataview import ViewIterator
from framevault.sdk.upload import upload_frames
from framevault.v1 import dataset_pb2, frame_pb2, view_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .tls_services import TlsServices, tls_pki, tls_services  # noqa: F401 - fixtures

SOME_VERSION = "0123456789abcdef01234567"


# Every broken stream would be retried: only a final error ends a call at once.
RETRIES = {"stream_reconnect_attempts": 3, "unary_attempts": 3, "retry_initial_backoff_seconds": 0.01,
           "retry_max_backoff_seconds": 0.01}


@pytest.fixture
async def plaintext_client(tls_services: TlsServices, monkeypatch: pytest.MonkeyPatch
                           ) -> AsyncIterator[FramevaultClient]:
    """A client (also the runtime's, for the high-level streams) connecting in plaintext to the TLS services."""
    settings = tls_services.client_settings(certificate=False, ca_file="", plaintext=True, token="", **RETRIES)
    monkeypatch.setattr(runtime, "_settings", settings)
    monkeypatch.setattr(runtime, "_clients", {})
    client = runtime.current_client()
    yield client
    await runtime.aclose()


@pytest.fixture
async def plaintext_port() -> AsyncIterator[int]:
    """A stand-in gRPC server without TLS (it serves no RPC: the transport fails first)."""
    server = aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield port
    await server.stop(0)


async def _upload(client: FramevaultClient, tmp_path: Path) -> None:
    await upload_frames(client, dataset_pb2.VersionRef(id=SOME_VERSION), [frame_pb2.Frame(
        id="f", sources=[frame_pb2.Source(uri="https://images.invalid/f.jpg")])], upload_retries=0,
        auto_upload=False)


async def _iterate(client: FramevaultClient, tmp_path: Path) -> None:
    view = view_pb2.View(selections=[view_pb2.ViewSelection(version=dataset_pb2.VersionRef(id=SOME_VERSION))])
    await anext(ViewIterator(view, 0, 1, ""))


async def _diff(client: FramevaultClient, tmp_path: Path) -> None:
    version = DatasetVersion(dataset_pb2.Version(id=SOME_VERSION))
    async for _ in version.aiter_diff(version):
        pass


async def _read_blob(client: FramevaultClient, tmp_path: Path) -> None:
    await BlobTransfer(client).read_bytes(digest_of(b"some bytes"))


async def _write_blob(client: FramevaultClient, tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"some bytes")
    await BlobTransfer(client).write_file(str(path), digest_of(b"some bytes"))


STREAMS: dict[str, tuple[str, Callable[[FramevaultClient, Path], Awaitable[Any]]]] = {
    "upload": ("metadata", _upload), "iterate": ("metadata", _iterate), "diff": ("metadata", _diff),
    "read blob": ("blob", _read_blob), "write blob": ("blob", _write_blob),
}


@pytest.mark.parametrize("path", list(STREAMS))
async def test_a_plaintext_stream_on_a_tls_port_says_tls_is_required(
        tls_services: TlsServices, plaintext_client: FramevaultClient, tmp_path: Path, path: str) -> None:
    service, call = STREAMS[path]
    with pytest.raises(FramevaultError) as refused:
        await call(plaintext_client, tmp_path)
    target = tls_services.metadata_target if service == "metadata" else tls_services.blob_target
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert refused.value.message.startswith(f"the {service} service at {target} requires TLS, but this client "
                                            "connects in plaintext"), refused.value.message
    assert "FRAMEVAULT_CA_FILE" in refused.value.message


async def _list_datasets(client: FramevaultClient, tmp_path: Path) -> None:
    await client.unary(client.metadata.ListDatasets, ms.ListDatasetsRequest(), idempotent=True)


@pytest.mark.parametrize("path", ["unary", "iterate", "upload"])
async def test_a_tls_client_on_a_plaintext_port_says_the_service_serves_plaintext(
        tls_services: TlsServices, plaintext_port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        path: str) -> None:
    target = f"127.0.0.1:{plaintext_port}"
    settings = tls_services.client_settings(metadata_target=target, blob_target=target, **RETRIES)
    monkeypatch.setattr(runtime, "_settings", settings)
    monkeypatch.setattr(runtime, "_clients", {})
    call = {"unary": _list_datasets, "iterate": _iterate, "upload": _upload}[path]
    try:
        with pytest.raises(FramevaultError) as refused:
            await call(runtime.current_client(), tmp_path)
    finally:
        await runtime.aclose()
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert refused.value.message.startswith(f"the metadata service at {target} serves plaintext, but this client "
                                            "connects with TLS"), refused.value.message
    assert "FRAMEVAULT_PLAINTEXT" in refused.value.message
