"""Helpers for tests: channels and services in-process, rich error details of failed calls."""

from __future__ import annotations

import functools
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status

from framevault.common.config import Secret, Settings, env_name
from framevault.common.server import RunningService
from framevault.stack.local import Stack
from framevault.stack.pki import LocalPki

# The one free-port helper, the stack's, for every test.
from framevault.stack.supervision import free_port as free_port

# The services' message limits, on every test channel.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                   ("grpc.max_send_message_length", 64 * 1024 * 1024)]

_DETAIL_KINDS = (
    error_details_pb2.BadRequest,
    error_details_pb2.ResourceInfo,
    error_details_pb2.ErrorInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.RetryInfo,
)


def error_details(exc: aio.AioRpcError) -> list[object]:
    """Unpacks the google.rpc.Status details of a failed call."""
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    if status is None:
        return []
    return status_details(status)


def status_details(status: status_pb2.Status) -> list[object]:
    """Unpacks the details of a google.rpc.Status (e.g. one of a per-item result)."""
    out: list[object] = []
    for detail in status.details:
        for kind in _DETAIL_KINDS:
            if detail.Is(kind.DESCRIPTOR):
                msg = kind()
                detail.Unpack(msg)
                out.append(msg)
    return out


def violated_fields(exc: aio.AioRpcError) -> list[str]:
    """The BadRequest field paths of a failed call."""
    return [v.field for d in error_details(exc) if isinstance(d, error_details_pb2.BadRequest)
            for v in d.field_violations]


def resource_info(exc: aio.AioRpcError) -> error_details_pb2.ResourceInfo | None:
    """The ResourceInfo detail of a failed call, if any."""
    for d in error_details(exc):
        if isinstance(d, error_details_pb2.ResourceInfo):
            return d
    return None


@functools.cache
def local_pki() -> LocalPki:
    """The local CA the session's services serve TLS with (the stack plugin's ``stack_pki``)."""
    return Stack().pki()


def client_credentials() -> grpc.ChannelCredentials:
    """What test clients present to the session's services: the local CA as trust anchor and its
    client certificate (the services require one: mutual TLS)."""
    pki = local_pki()
    return grpc.ssl_channel_credentials(root_certificates=pki.ca_file.read_bytes(),
                                        private_key=pki.client.key_file.read_bytes(),
                                        certificate_chain=pki.client.cert_file.read_bytes())


# The settings that make a service process as secure as the session's in-process services.
SECURITY_SETTINGS = ("security_mode", "allow_plaintext", "tls_cert_file", "tls_key_file", "tls_client_ca_file",
                     "tls_ca_file", "tls_client_cert_file", "tls_client_key_file", "view_cursor_secret",
                     "api_key_pepper", "service_token_secret")


def security_env(settings: Settings) -> dict[str, str]:
    """``settings``' security (TLS files, plaintext, mode, secrets) as a service process's environment."""

    def text(value: object) -> str:
        if isinstance(value, Secret):
            return value.get_secret_value()
        return str(value).lower() if isinstance(value, bool) else str(value)

    return {env_name(name): text(getattr(settings, name)) for name in SECURITY_SETTINGS}


def add_tls_port(server: aio.Server) -> int:
    """Has a stand-in server of a test serve TLS with the session's server certificate, requiring
    client certificates of the local CA (mutual TLS) as the services do; returns its port."""
    pki = local_pki()
    credentials = grpc.ssl_server_credentials(
        [(pki.server.key_file.read_bytes(), pki.server.cert_file.read_bytes())],
        root_certificates=pki.ca_file.read_bytes(), require_client_auth=True)
    return server.add_secure_port("127.0.0.1:0", credentials)


def client_tls_settings() -> dict[str, str]:
    """The SDK's and CLI's TLS settings (``ClientSettings`` fields) for the session's services."""
    pki = local_pki()
    return {"ca_file": str(pki.ca_file), "client_cert_file": str(pki.client.cert_file),
            "client_key_file": str(pki.client.key_file)}


def client_tls_env() -> dict[str, str]:
    """``client_tls_settings`` as the environment of a client process (``FRAMEVAULT_CA_FILE`` ...)."""
    return local_pki().client_env()


def channel_to(port: int, *, options: list[tuple[str, Any]] | None = None) -> aio.Channel:
    """A channel to a service of the session (mutual TLS with the local CA), with the services'
    message limits unless ``options`` replace them."""
    return aio.secure_channel(f"127.0.0.1:{port}", client_credentials(), options=CHANNEL_OPTIONS if options is None else options)


def sync_channel_to(port: int) -> grpc.Channel:
    """``channel_to`` for blocking calls."""
    return grpc.secure_channel(f"127.0.0.1:{port}", client_credentials(), options=CHANNEL_OPTIONS)


async def start_metadata_service(settings: Settings) -> RunningService:
    from framevault.metadata.app import build_service

    running = RunningService(build_service(settings), settings)
    await running.start()
    return running


async def start_blob_service(settings: Settings, **build_options: Any) -> RunningService:
    from framevault.blob.app import build_service

    running = RunningService(build_service(settings, **build_options), settings)
    await running.start()
    return running
