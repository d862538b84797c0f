"""The low-level asynchronous client: channels, stubs and the call discipline.

Everything above this module (datasets, frames, views, blobs) goes through
:class:`FramevaultClient`, so the transport rules live in one place:

- channels with keepalive and explicit message size limits, TLS (mutual TLS
  with a client certificate) or plaintext as the settings say, and the
  caller's token as ``authorization: Bearer`` call metadata on every call;
- a deadline on every unary call;
- UNAVAILABLE retried with jittered exponential backoff (honouring the
  server's ``RetryInfo``) only for calls the caller marks idempotent, because
  UNAVAILABLE may also mean "the request ran, the answer was lost";
- every failure raised as :class:`~framevault.sdk.errors.FramevaultError`
  with the server's rich details; a transport that does not match the
  server's (plaintext on a TLS port, no client certificate for mutual TLS)
  is named as such at once instead of retried as a vague UNAVAILABLE.

Streams are opened on the stubs directly by the modules that drive them
(upload, iteration, diffs, blob reads and writes); they convert a failed
call with :meth:`FramevaultClient.call_error`, as :meth:`FramevaultClient.unary`
does, so a mismatched transport is named the same way on every path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

import grpc
from grpc import aio

from framevault.api.blob_client import write_blob_encoded
from framevault.api.retry import RetryPolicy
from framevault.api.transport import (
    Options,
    TlsProbe,
    check_token_transport,
    client_channel_options,
    probe_tls,
    with_token,
)
from framevault.sdk.errors import FramevaultError
from framevault.sdk.settings import ClientSettings, SettingsError, env_name
from framevault.v1 import blob_pb2, blob_pb2_grpc, metadata_service_pb2, metadata_service_pb2_grpc

UnaryMethod = Callable[..., Awaitable[Any]]
# How long the check of a server's transport after an UNAVAILABLE call may take.
TRANSPORT_PROBE_TIMEOUT_SECONDS = 3.0


def channel_options(settings: ClientSettings) -> Options:
    """gRPC channel options: message limits and keepalive matching the servers' ping policy; retries
    are done here, per call, where idempotency is known."""
    return client_channel_options(max_message_bytes=settings.max_message_bytes,
                                  keepalive_time_ms=settings.keepalive_time_ms,
                                  keepalive_timeout_ms=settings.keepalive_timeout_ms,
                                  stream_window_bytes=settings.stream_window_bytes)


def channel_credentials(settings: ClientSettings, target: str) -> grpc.ChannelCredentials | None:
    """TLS credentials (trust anchors, client certificate) of a channel to ``target``; ``None`` = plaintext.

    Raises:
        SettingsError: a file cannot be read, or only one of client_cert_file / client_key_file is set.
    """
    for present, missing in (("client_cert_file", "client_key_file"), ("client_key_file", "client_cert_file")):
        if getattr(settings, present) and not getattr(settings, missing):
            raise SettingsError(f"{missing} ({env_name(missing)}) is required with {present} ({env_name(present)})")
    if not settings.uses_tls:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=settings.read_pem("ca_file"),
        private_key=settings.read_pem("client_key_file"),
        certificate_chain=settings.read_pem("client_cert_file"),
    )


def open_channel(settings: ClientSettings, target_field: str) -> aio.Channel:
    """A channel to the target named by the setting ``target_field``, balanced over its addresses, sending
    the token (if any) with every call.

    Raises:
        SettingsError: as ``channel_credentials``, or a token would travel in plaintext to another host.
    """
    target = settings.channel_target(target_field)
    credentials = channel_credentials(settings, getattr(settings, target_field))
    token = settings.bearer_token() or None
    if token is not None:
        try:
            check_token_transport(credentials is not None, getattr(settings, target_field))
        except ValueError as exc:
            raise SettingsError(f"token ({env_name('token')}): {exc}; set ca_file ({env_name('ca_file')}) "
                                f"to use TLS") from None
    options: list[tuple[str, Any]] = [*channel_options(settings), *target.channel_options()]
    channel = aio.insecure_channel(target.uri, options=options) if credentials is None else \
        aio.secure_channel(target.uri, credentials, options=options)
    return with_token(channel, credentials is not None, getattr(settings, target_field), token)


def transport_mismatch(settings: ClientSettings, service: str, target: str, probe: TlsProbe) -> str | None:
    """What is wrong with the client's transport for a server that answered ``probe``; ``None`` = nothing known."""
    if settings.uses_tls and probe is TlsProbe.PLAINTEXT:
        return (f"the {service} service at {target} serves plaintext, but this client connects with TLS: "
                f"set plaintext ({env_name('plaintext')}) to reach it without TLS, or serve it with TLS")
    if not settings.uses_tls and probe in (TlsProbe.TLS, TlsProbe.TLS_CLIENT_CERTIFICATE_REQUIRED):
        return (f"the {service} service at {target} requires TLS, but this client connects in plaintext: "
                f"set ca_file ({env_name('ca_file')}) to the CA that signed the service's certificate"
                + (f", and unset plaintext ({env_name('plaintext')})" if settings.plaintext else ""))
    if (settings.uses_tls and not settings.client_cert_file
            and probe is TlsProbe.TLS_CLIENT_CERTIFICATE_REQUIRED):
        return (f"the {service} service at {target} requires a client certificate (mutual TLS): set "
                f"client_cert_file and client_key_file ({env_name('client_cert_file')}, "
                f"{env_name('client_key_file')})")
    return None


def retry_policy(settings: ClientSettings, max_attempts: int, retryable: Iterable[grpc.StatusCode]) -> RetryPolicy:
    """The SDK's backoff (from ``settings``) with one call site's attempts and retryable codes."""
    return RetryPolicy(
        max_attempts=max(1, max_attempts),
        initial_backoff_seconds=settings.retry_initial_backoff_seconds,
        max_backoff_seconds=settings.retry_max_backoff_seconds,
        retryable_codes=frozenset(retryable),
    )


def _method_path(module: Any, service: str, method: str) -> str:
    """The gRPC path (``/package.Service/Method``) of a method of the proto ``module``."""
    full_name: str = module.DESCRIPTOR.services_by_name[service].methods_by_name[method].full_name
    package_service, _, name = full_name.rpartition(".")
    return f"/{package_service}/{name}"


class FramevaultClient:
    """Channels and stubs of both services, bound to the event loop that created them.

    Use it as an async context manager, or call :meth:`close`. The high-level
    API (``DatasetVersion``, ``DataView``) obtains one per event loop through
    :func:`framevault.sdk.runtime.current_client`; create your own only for
    raw access to the stubs.
    """

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self.settings = settings or ClientSettings.from_env()
        self._metadata_channel = open_channel(self.settings, "metadata_target")
        self._blob_channel = open_channel(self.settings, "blob_target")
        self.metadata = metadata_service_pb2_grpc.MetadataServiceStub(self._metadata_channel)
        self.blob = blob_pb2_grpc.BlobServiceStub(self._blob_channel)
        # UploadFrames writing requests the caller has already encoded (bytes pass through as they are):
        # the uploader encodes each frame once and sends those bytes again after a reconnect.
        self.upload_frames_encoded = self._metadata_channel.stream_stream(
            _method_path(metadata_service_pb2, "MetadataService", "UploadFrames"),
            request_serializer=bytes,
            response_deserializer=metadata_service_pb2.UploadFramesResponse.FromString,
        )
        # WriteBlob sending requests BlobClient encodes by hand (no chunk copied into a message).
        self.write_blob_encoded = write_blob_encoded(self._blob_channel)
        self._capabilities: blob_pb2.GetCapabilitiesResponse | None = None
        # Which service (name, target) each stub method calls, to name it when its transport fails.
        self._method_services: dict[int, tuple[str, str]] = {
            id(method): service
            for stub, service in ((self.metadata, ("metadata", self.settings.metadata_target)),
                                  (self.blob, ("blob", self.settings.blob_target)))
            for method in vars(stub).values()
        }
        self._probed: dict[str, TlsProbe] = {}

    async def unary(
        self,
        method: Callable[..., Any],
        request: Any,
        *,
        idempotent: bool,
        timeout: float | None = None,
    ) -> Any:
        """Calls a unary stub method with a deadline; retries UNAVAILABLE if ``idempotent``.

        Raises:
            FramevaultError: the call failed (after the allowed retries).
        """
        policy = retry_policy(self.settings, self.settings.unary_attempts if idempotent else 1,
                              [grpc.StatusCode.UNAVAILABLE])
        deadline = timeout if timeout is not None else self.settings.call_timeout_seconds
        for attempt in range(1, policy.max_attempts + 1):
            try:
                return await cast(UnaryMethod, method)(request, timeout=deadline)
            except grpc.RpcError as rpc_error:
                error = await self.call_error(rpc_error, method)
                if not policy.retries(error.code, attempt):
                    raise error from None
                await asyncio.sleep(policy.delay(attempt, error.retry_delay))
        raise AssertionError("unreachable")

    async def call_error(self, rpc_error: grpc.RpcError, method: Callable[..., Any]) -> FramevaultError:
        """The FramevaultError of a failed call (unary or stream) of the stub method ``method``.

        Raises:
            FramevaultError: final, naming what to set, when the call was
                UNAVAILABLE because the client's transport does not match the
                server's (plaintext on a TLS port, no client certificate on a
                mutual-TLS port): retrying cannot help.
        """
        error = FramevaultError.from_rpc_error(rpc_error)
        if error.code == grpc.StatusCode.UNAVAILABLE:
            await self._raise_transport_mismatch(method)
        return error

    async def _raise_transport_mismatch(self, method: Callable[..., Any]) -> None:
        """Raises a clear, final error if the client's transport cannot work with the server ``method`` calls.

        gRPC reports a plaintext client on a TLS port, or a client without a
        certificate on a mutual-TLS port, as "Socket closed" (a TLS client on
        a plaintext port as a failed handshake): retrying cannot help and the
        message does not say what to change, so the server is asked once.
        """
        service = self._method_services.get(id(method))
        if service is None:
            return
        name, target = service
        if target not in self._probed:
            probe = await probe_tls(target, TRANSPORT_PROBE_TIMEOUT_SECONDS)
            if probe is TlsProbe.NO_TLS:
                return  # down, or plaintext as expected: the usual retries decide
            self._probed[target] = probe
        mismatch = transport_mismatch(self.settings, name, target, self._probed[target])
        if mismatch is not None:
            raise FramevaultError.client_side(grpc.StatusCode.UNAVAILABLE, mismatch)

    async def capabilities(self) -> blob_pb2.GetCapabilitiesResponse:
        """The blob service's limits, asked once per client."""
        if self._capabilities is None:
            self._capabilities = await self.unary(
                self.blob.GetCapabilities, blob_pb2.GetCapabilitiesRequest(), idempotent=True
            )
        return self._capabilities

    async def close(self) -> None:
        """Closes both channels; pending calls are cancelled."""
        await self._metadata_channel.close()
        await self._blob_channel.close()

    async def __aenter__(self) -> FramevaultClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
