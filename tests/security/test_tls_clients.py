"""The CLI over TLS and mutual TLS (options, environment, config file), and the bearer token the SDK sends."""

# ruff: noqa: F811 - the fixtures of tls_services are imported by name, and tests take them as parameters

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc import aio
from support import admin_token

from framevault.common.config import Settings
from framevault.sdk import FramevaultError
from framevault.sdk.client import FramevaultClient, open_channel
from framevault.sdk.settings import ClientSettings
from framevault.stack.pki import LocalPki
from framevault.v1 import access_pb2, access_pb2_grpc, blob_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .tls_services import (  # noqa: F401 - fixtures
    TlsServices,
    mutual_tls_services,
    start_prepared,
    stranger_pki,
    tls_pki,
    tls_service_settings,
)

CLI = Path(sys.executable).with_name("framevault")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``framevault`` in its own process; none of this process's FRAMEVAULT_ variables leak in."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("FRAMEVAULT_")}
    return await asyncio.to_thread(subprocess.run, [str(CLI), *args], capture_output=True, text=True, timeout=300,
                                   env={**clean, **env})


async def test_cli_over_mutual_tls_from_the_environment(mutual_tls_services: TlsServices) -> None:
    name = unique("cli-mtls")
    created = await run_cli("dataset", "create", name, env=mutual_tls_services.client_env())
    assert created.returncode == 0, created.stderr
    listed = await run_cli("dataset", "list", "--prefix", name, env=mutual_tls_services.client_env())
    assert listed.returncode == 0 and name in listed.stdout, listed.stderr


async def test_cli_finds_the_config_file_and_its_relative_paths(mutual_tls_services: TlsServices,
                                                                tmp_path: Path) -> None:
    pki = mutual_tls_services.pki
    certs = tmp_path / "certs"
    certs.mkdir()
    for source in (pki.ca_file, pki.client.cert_file, pki.client.key_file):
        shutil.copy(source, certs / source.name)
    (certs / "admin.key").write_text(admin_token() + "\n")
    config = tmp_path / "client.toml"
    config.write_text(
        f'metadata_target = "{mutual_tls_services.metadata_target}"\n'
        f'blob_target = "{mutual_tls_services.blob_target}"\n'
        f'ca_file = "certs/{pki.ca_file.name}"\n'
        f'client_cert_file = "certs/{pki.client.cert_file.name}"\n'
        f'client_key_file = "certs/{pki.client.key_file.name}"\n'
        'token_file = "certs/admin.key"\n')
    name = unique("cli-config")
    created = await run_cli("dataset", "create", name, env={"FRAMEVAULT_CONFIG": str(config)})
    assert created.returncode == 0, created.stderr

    # The default location, with no variable at all.
    home = tmp_path / "home"
    (home / ".config" / "framevault").mkdir(parents=True)
    shutil.copy(config, home / ".config" / "framevault" / "client.toml")
    shutil.copytree(certs, home / ".config" / "framevault" / "certs")
    listed = await run_cli("dataset", "list", "--prefix", name, env={"HOME": str(home)})
    assert listed.returncode == 0 and name in listed.stdout, listed.stderr


async def test_cli_options_win_over_the_environment(mutual_tls_services: TlsServices,
                                                    stranger_pki: LocalPki) -> None:
    wrong = {**mutual_tls_services.client_env(), "FRAMEVAULT_CA_FILE": str(stranger_pki.ca_file),
             "FRAMEVAULT_CLIENT_CERT_FILE": str(stranger_pki.client.cert_file),
             "FRAMEVAULT_CLIENT_KEY_FILE": str(stranger_pki.client.key_file)}
    refused = await run_cli("dataset", "list", env=wrong)
    assert refused.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in refused.stderr, refused.stderr
    pki = mutual_tls_services.pki
    accepted = await run_cli("--ca-file", str(pki.ca_file), "--client-cert", str(pki.client.cert_file),
                             "--client-key", str(pki.client.key_file), "dataset", "list", env=wrong)
    assert accepted.returncode == 0, accepted.stderr


async def test_cli_names_what_its_transport_lacks(mutual_tls_services: TlsServices) -> None:
    plaintext = await run_cli("--plaintext", "dataset", "list", env=mutual_tls_services.client_env())
    assert plaintext.returncode == 1
    assert plaintext.stderr.startswith(f"error: UNAVAILABLE: the metadata service at "
                                       f"{mutual_tls_services.metadata_target} requires TLS"), plaintext.stderr
    no_certificate = await run_cli("dataset", "list", env=mutual_tls_services.client_env(certificate=False))
    assert no_certificate.returncode == 1
    assert "requires a client certificate (mutual TLS)" in no_certificate.stderr, no_certificate.stderr
    half = await run_cli("--client-cert", str(mutual_tls_services.pki.client.cert_file), "dataset", "list",
                         env={**mutual_tls_services.client_env(certificate=False)})
    assert half.returncode == 2 and "client_key_file (FRAMEVAULT_CLIENT_KEY_FILE) is required" in half.stderr


class AuthorizationRecorder(aio.ServerInterceptor):
    """Records the ``authorization`` header of every call (the server implements no method: each is UNIMPLEMENTED)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    async def intercept_service(self, continuation, details):  # type: ignore[no-untyped-def]
        headers = dict(details.invocation_metadata or ())
        self.seen.append((details.method, headers.get("authorization")))
        return await continuation(details)


@pytest.fixture()
async def recorder(tls_pki: LocalPki) -> AsyncIterator[tuple[AuthorizationRecorder, int, int]]:
    """A TLS server and a plaintext one that record the authorization header they receive."""
    recording = AuthorizationRecorder()
    tls_server, plain_server = aio.server(interceptors=[recording]), aio.server(interceptors=[recording])
    tls_port = tls_server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(
        [(tls_pki.server.key_file.read_bytes(), tls_pki.server.cert_file.read_bytes())]))
    plain_port = plain_server.add_insecure_port("127.0.0.1:0")
    await tls_server.start()
    await plain_server.start()
    yield recording, tls_port, plain_port
    await tls_server.stop(0)
    await plain_server.stop(0)


@pytest.mark.parametrize("transport", ["tls", "loopback plaintext"])
async def test_the_sdk_sends_its_token_on_every_call_to_both_services(
        recorder: tuple[AuthorizationRecorder, int, int], tls_pki: LocalPki, transport: str) -> None:
    recording, tls_port, plain_port = recorder
    port = tls_port if transport == "tls" else plain_port
    settings = ClientSettings(metadata_target=f"127.0.0.1:{port}", blob_target=f"localhost:{port}",
                              ca_file=str(tls_pki.ca_file) if transport == "tls" else "",
                              plaintext=transport != "tls", token="fv_key_sent", unary_attempts=1)
    async with FramevaultClient(settings) as client:
        for method, request in ((client.metadata.ListDatasets, ms.ListDatasetsRequest()),
                                (client.blob.GetCapabilities, blob_pb2.GetCapabilitiesRequest())):
            with pytest.raises(FramevaultError) as unimplemented:
                await client.unary(method, request, idempotent=True)
            assert unimplemented.value.code == grpc.StatusCode.UNIMPLEMENTED
        upload = client.metadata.UploadFrames()
        await upload.done_writing()
        with pytest.raises(grpc.RpcError):
            await upload.read()
    assert recording.seen == [
        ("/framevault.v1.MetadataService/ListDatasets", "Bearer fv_key_sent"),
        ("/framevault.v1.BlobService/GetCapabilities", "Bearer fv_key_sent"),
        ("/framevault.v1.MetadataService/UploadFrames", "Bearer fv_key_sent"),
    ]


async def test_a_token_over_mutual_tls_authenticates_with_the_metadata_service(
        mutual_tls_services: TlsServices, settings: Settings) -> None:
    with_token = mutual_tls_services.client_settings(token="", token_file=settings.bootstrap_admin_key_file)
    channel = open_channel(with_token, "metadata_target")
    try:
        caller = await access_pb2_grpc.AccessServiceStub(channel).GetCaller(access_pb2.GetCallerRequest(), timeout=30)
        assert caller.admin
    finally:
        await channel.close()
    anonymous = open_channel(mutual_tls_services.client_settings(token=""), "metadata_target")
    try:
        with pytest.raises(aio.AioRpcError) as refused:
            await access_pb2_grpc.AccessServiceStub(anonymous).GetCaller(access_pb2.GetCallerRequest(), timeout=30)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await anonymous.close()
