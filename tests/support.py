"""Helpers for tests: channels and services in-process, rich error details of failed calls, revision
documents for seeding a database directly.

Every service a test session starts runs with ``security_mode=on``, and every client these helpers
make sends the session's admin key (the bootstrap admin key of the session's metadata service)
unless asked for another token or none (``anonymous=True``).
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from pathlib import Path
from typing import Any

import bson
import framevault_codec
import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status

from framevault.api.transport import with_token
from framevault.common.config import Secret, Settings, env_name
from framevault.common.server import RunningService
from framevault.stack.local import Stack
from framevault.stack.pki import LocalPki

# The one free-port helper, the stack's, for every test.
from framevault.stack.supervision import free_port as free_port
from framevault.v1 import access_pb2, access_pb2_grpc, frame_pb2

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


# The session's admin key, read once its metadata service has issued it.
_session_admin: dict[str, str] = {}


def use_session_admin_key(path: str) -> None:
    """Remembers the admin key the session's metadata service wrote to ``path`` (its
    ``bootstrap_admin_key_file``): the token every client of these helpers sends by default."""
    _session_admin["token"] = Path(path).read_text().strip()


def own_admin_key_file(settings: Settings) -> Settings:
    """``settings`` with a bootstrap admin key file of their own: a metadata service on a database other
    than the session's issues that database's admin key there (``admin_token_of``), not over the session's."""
    return dataclasses.replace(settings, bootstrap_admin_key_file=f"{settings.bootstrap_admin_key_file}."
                                                                  f"{uuid.uuid4().hex[:8]}")


def admin_token_of(settings: Settings) -> str:
    """The admin key a metadata service started with ``settings`` issued (its bootstrap admin key file)."""
    return Path(settings.bootstrap_admin_key_file).read_text().strip()


def admin_token() -> str:
    """The session's admin API key."""
    try:
        return _session_admin["token"]
    except KeyError:
        raise RuntimeError("the session's services have not started yet: "
                           "request the metadata_service or blob_service fixture first") from None


def _token(token: str | None, anonymous: bool) -> str | None:
    if anonymous:
        return None
    return admin_token() if token is None else token


def client_credentials() -> grpc.ChannelCredentials:
    """What test clients present to the session's services: the local CA as trust anchor and its
    client certificate (the services require one: mutual TLS). The token goes with the channel's
    calls as the SDK sends it (``channel_to``)."""
    pki = local_pki()
    return grpc.ssl_channel_credentials(root_certificates=pki.ca_file.read_bytes(),
                                        private_key=pki.client.key_file.read_bytes(),
                                        certificate_chain=pki.client.cert_file.read_bytes())


# The settings that make a service process as secure as the session's in-process services (a blob
# service authenticates callers through the session's metadata service: metadata_target).
SECURITY_SETTINGS = ("security_mode", "allow_plaintext", "tls_cert_file", "tls_key_file", "tls_client_ca_file",
                     "tls_ca_file", "tls_client_cert_file", "tls_client_key_file", "view_cursor_secret",
                     "api_key_pepper", "service_token_secret", "metadata_target")


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


class AccessForwarder(access_pb2_grpc.AccessServiceServicer):
    """The AccessService calls a blob service makes (who a caller is, which blobs it may read),
    answered by the session's metadata service: a stand-in of the metadata service serves it, so a
    blob service pointed at the stand-in authenticates callers as it does against the real one."""

    def __init__(self, metadata_port: int) -> None:
        self._channel = channel_to(metadata_port, anonymous=True)
        self._stub = access_pb2_grpc.AccessServiceStub(self._channel)

    @staticmethod
    def _authorization(context: aio.ServicerContext) -> list[tuple[str, str | bytes]]:
        # The blob service's own service token, which the real metadata service checks.
        return [(key, value) for key, value in context.invocation_metadata() or () if key == "authorization"]

    async def AuthenticateCaller(self, request: access_pb2.AuthenticateCallerRequest,  # noqa: N802 - gRPC's name
                                 context: aio.ServicerContext) -> access_pb2.Caller:
        response: access_pb2.Caller = await self._stub.AuthenticateCaller(
            request, metadata=self._authorization(context))
        return response

    async def CheckBlobAccess(self, request: access_pb2.CheckBlobAccessRequest,  # noqa: N802 - gRPC's name
                              context: aio.ServicerContext) -> access_pb2.CheckBlobAccessResponse:
        response: access_pb2.CheckBlobAccessResponse = await self._stub.CheckBlobAccess(
            request, metadata=self._authorization(context))
        return response


def add_access_forwarder(server: aio.Server, metadata_port: int) -> None:
    """Has a stand-in metadata server answer the blob service's AccessService calls (``AccessForwarder``)."""
    # Only the two calls a blob service makes; the others answer UNIMPLEMENTED.
    access_pb2_grpc.add_AccessServiceServicer_to_server(AccessForwarder(metadata_port), server)  # type: ignore[abstract]


def client_tls_settings(*, token: str | None = None, anonymous: bool = False) -> dict[str, str]:
    """The SDK's and CLI's settings (``ClientSettings`` fields) for the session's services: TLS
    with the local CA and ``token`` (default: the session's admin key; none when ``anonymous``)."""
    pki = local_pki()
    values = {"ca_file": str(pki.ca_file), "client_cert_file": str(pki.client.cert_file),
              "client_key_file": str(pki.client.key_file)}
    bearer = _token(token, anonymous)
    return values if bearer is None else {**values, "token": bearer}


def client_tls_env(*, token: str | None = None, anonymous: bool = False) -> dict[str, str]:
    """``client_tls_settings`` as the environment of a client process (``FRAMEVAULT_CA_FILE`` ...,
    ``FRAMEVAULT_TOKEN``)."""
    env = local_pki().client_env()
    bearer = _token(token, anonymous)
    return env if bearer is None else {**env, "FRAMEVAULT_TOKEN": bearer}


def channel_to(port: int, *, options: list[tuple[str, Any]] | None = None, token: str | None = None,
               anonymous: bool = False) -> aio.Channel:
    """A channel to a service of the session (mutual TLS with the local CA: ``client_credentials``),
    sending ``token`` with every call (default: the session's admin key; none when ``anonymous``),
    with the services' message limits unless ``options`` replace them."""
    target = f"127.0.0.1:{port}"
    channel = aio.secure_channel(target, client_credentials(), options=CHANNEL_OPTIONS if options is None else options)
    return with_token(channel, True, target, _token(token, anonymous))


def sync_channel_to(port: int, *, options: list[tuple[str, Any]] | None = None, token: str | None = None,
                    anonymous: bool = False) -> grpc.Channel:
    """``channel_to`` for blocking calls."""
    target = f"127.0.0.1:{port}"
    channel = grpc.secure_channel(target, client_credentials(), options=CHANNEL_OPTIONS if options is None else options)
    return with_token(channel, True, target, _token(token, anonymous))


def require_security(settings: Settings) -> None:
    """Every service a test starts checks callers (tests/conftest.py has every in-process service
    start through this check)."""
    if settings.security_mode != "on":
        raise AssertionError(f"a test service runs with security_mode={settings.security_mode!r}; tests run "
                             "every service with security on")


async def start_metadata_service(settings: Settings) -> RunningService:
    from framevault.metadata.app import build_service

    running = RunningService(build_service(settings), settings)
    await running.start()
    return running


async def start_blob_service(settings: Settings, **build_options: Any) -> RunningService:
    """A blob service; with the session's settings it authenticates callers through the session's
    metadata service (``metadata_target``)."""
    from framevault.blob.app import build_service

    running = RunningService(build_service(settings, **build_options), settings)
    await running.start()
    return running


def frame_to_document(frame: frame_pb2.Frame, *, dataset_id: str, version_id: str, saved_ms: int) -> dict[str, Any]:
    """The revision document of ``frame`` as it is (neither validated nor normalised), written by
    ``version_id``, in the layout the service stores: encoded by the service's own frame codec."""
    return bson.decode(framevault_codec.encode_document(frame.SerializeToString(), dataset_id, version_id, saved_ms))
