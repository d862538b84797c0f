"""Both services with TLS, for the transport security tests.

The certificates come from the local stack's PKI code (``framevault.stack.pki``),
issued into a directory of the test session: one CA, the server certificate
both services present, a client certificate per service for the call one
makes to the other, and one for test clients. A second, unrelated PKI plays
the wrong CA. Services run in-process against the session's database and
bucket, with ``allow_plaintext`` off: TLS or nothing; and with the session's
security settings: clients send the session's admin key, and the blob service
asks this metadata service who they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from grpc import aio
from support import admin_token, free_port

from framevault.api.transport import with_token
from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.sdk.settings import ClientSettings
from framevault.stack.pki import LocalPki, ensure_local_pki

# How long a service may take to prepare its backends (indexes, S3 probe) before the tests give up.
PREPARE_TIMEOUT_SECONDS = 60.0


def tls_service_settings(settings: Settings, pki: LocalPki, service: str, *, mutual: bool) -> Settings:
    """``settings`` serving TLS with the PKI's server certificate (``mutual``: client certificates required),
    calling the other service with the CA as trust anchor and ``service``'s client certificate."""
    identity = pki.service_clients[service]
    return dataclasses.replace(
        settings,
        tls_cert_file=str(pki.server.cert_file),
        tls_key_file=str(pki.server.key_file),
        tls_client_ca_file=str(pki.ca_file) if mutual else "",
        tls_ca_file=str(pki.ca_file),
        tls_client_cert_file=str(identity.cert_file),
        tls_client_key_file=str(identity.key_file),
        allow_plaintext=False,
    )


async def start_prepared(running: RunningService) -> RunningService:
    await running.start()
    await asyncio.wait_for(running.prepared.wait(), PREPARE_TIMEOUT_SECONDS)
    return running


@dataclass
class TlsServices:
    """A blob and a metadata service over TLS, the metadata service calling the blob service over TLS too."""

    pki: LocalPki
    blob: RunningService
    metadata: RunningService

    @property
    def metadata_target(self) -> str:
        return f"127.0.0.1:{self.metadata.port}"

    @property
    def blob_target(self) -> str:
        return f"127.0.0.1:{self.blob.port}"

    def client_settings(self, *, certificate: bool = True, **changes: object) -> ClientSettings:
        """SDK settings for these services: the PKI's CA, its client certificate unless ``certificate`` is off."""
        values: dict[str, object] = {
            "metadata_target": self.metadata_target, "blob_target": self.blob_target,
            "ca_file": str(self.pki.ca_file), "unary_attempts": 1, "token": admin_token(),
        }
        if certificate:
            values |= {"client_cert_file": str(self.pki.client.cert_file),
                       "client_key_file": str(self.pki.client.key_file)}
        return ClientSettings(**(values | changes))  # type: ignore[arg-type]

    def client_env(self, *, certificate: bool = True) -> dict[str, str]:
        """The environment of a client process (CLI, generated clients) for these services."""
        env = {"FRAMEVAULT_METADATA_TARGET": self.metadata_target, "FRAMEVAULT_BLOB_TARGET": self.blob_target,
               "FRAMEVAULT_CA_FILE": str(self.pki.ca_file), "FRAMEVAULT_CONFIG": "",
               "FRAMEVAULT_TOKEN": admin_token()}
        if certificate:
            env |= {"FRAMEVAULT_CLIENT_CERT_FILE": str(self.pki.client.cert_file),
                    "FRAMEVAULT_CLIENT_KEY_FILE": str(self.pki.client.key_file)}
        return env

    def raw_channel(self, target: str, *, certificate: bool = True) -> aio.Channel:
        """A plain gRPC channel over TLS, trusting the PKI's CA, presenting its client certificate if asked,
        sending the session's admin key."""
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.pki.ca_file.read_bytes(),
            private_key=self.pki.client.key_file.read_bytes() if certificate else None,
            certificate_chain=self.pki.client.cert_file.read_bytes() if certificate else None,
        )
        return with_token(aio.secure_channel(target, credentials), True, target, admin_token())


@pytest.fixture(scope="session")
def tls_pki(tmp_path_factory: pytest.TempPathFactory) -> LocalPki:
    return ensure_local_pki(tmp_path_factory.mktemp("tls") / "pki")


@pytest.fixture(scope="session")
def stranger_pki(tmp_path_factory: pytest.TempPathFactory) -> LocalPki:
    """A CA that signed none of the services' certificates."""
    return ensure_local_pki(tmp_path_factory.mktemp("tls") / "stranger")


@contextlib.asynccontextmanager
async def running_tls_services(settings: Settings, pki: LocalPki, *, mutual: bool) -> AsyncIterator[TlsServices]:
    from framevault.blob.app import build_service as build_blob
    from framevault.metadata.app import build_service as build_metadata

    # The blob service asks this metadata service (same PKI) who a caller is.
    metadata_address = f"127.0.0.1:{free_port()}"
    blob_settings = dataclasses.replace(tls_service_settings(settings, pki, "blob", mutual=mutual),
                                        metadata_target=metadata_address)
    blob = await start_prepared(RunningService(build_blob(blob_settings), blob_settings))
    try:
        metadata_settings = dataclasses.replace(tls_service_settings(settings, pki, "metadata", mutual=mutual),
                                                metadata_address=metadata_address,
                                                blob_target=f"127.0.0.1:{blob.port}")
        metadata = await start_prepared(RunningService(build_metadata(metadata_settings), metadata_settings))
        try:
            yield TlsServices(pki, blob, metadata)
        finally:
            await metadata.stop(grace=1)
    finally:
        await blob.stop(grace=1)


@pytest.fixture(scope="session")
async def mutual_tls_services(settings: Settings, tls_pki: LocalPki,
                              metadata_service: RunningService) -> AsyncIterator[TlsServices]:
    """Both services requiring client certificates signed by the PKI's CA."""
    async with running_tls_services(settings, tls_pki, mutual=True) as services:
        yield services


@pytest.fixture(scope="session")
async def tls_services(settings: Settings, tls_pki: LocalPki,
                       metadata_service: RunningService) -> AsyncIterator[TlsServices]:
    """Both services over TLS without client certificates."""
    async with running_tls_services(settings, tls_pki, mutual=False) as services:
        yield services
