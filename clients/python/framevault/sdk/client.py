"""The low-level asynchronous client: channels, stubs and the call discipline.

Everything above this module (datasets, frames, views, blobs) goes through
:class:`FramevaultClient`, so the transport rules live in one place:

- channels with keepalive and explicit message size limits;
- a deadline on every unary call;
- UNAVAILABLE retried with jittered exponential backoff (honouring the
  server's ``RetryInfo``) only for calls the caller marks idempotent, because
  UNAVAILABLE may also mean "the request ran, the answer was lost";
- every failure raised as :class:`~framevault.sdk.errors.FramevaultError`
  with the server's rich details.

Streams are opened on the stubs directly by the modules that drive them
(upload, iteration); they convert errors with :func:`as_framevault_error`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

import grpc
from grpc import aio

from framevault.api.retry import RetryPolicy
from framevault.sdk.errors import FramevaultError
from framevault.sdk.settings import ClientSettings
from framevault.v1 import blob_pb2, blob_pb2_grpc, metadata_service_pb2_grpc

UnaryMethod = Callable[..., Awaitable[Any]]


def channel_options(settings: ClientSettings) -> list[tuple[str, int]]:
    """gRPC channel options: message limits and keepalive matching the servers' ping policy."""
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", settings.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", settings.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # Retries are done here, per call, where idempotency is known.
        ("grpc.enable_retries", 0),
    ]


def as_framevault_error(error: BaseException) -> BaseException:
    """The FramevaultError for a failed gRPC call; any other exception unchanged."""
    if isinstance(error, FramevaultError):
        return error
    if isinstance(error, grpc.RpcError):
        return FramevaultError.from_rpc_error(error)
    return error


def retry_policy(settings: ClientSettings, max_attempts: int, retryable: Iterable[grpc.StatusCode]) -> RetryPolicy:
    """The SDK's backoff (from ``settings``) with one call site's attempts and retryable codes."""
    return RetryPolicy(
        max_attempts=max(1, max_attempts),
        initial_backoff_seconds=settings.retry_initial_backoff_seconds,
        max_backoff_seconds=settings.retry_max_backoff_seconds,
        retryable_codes=frozenset(retryable),
    )


class FramevaultClient:
    """Channels and stubs of both services, bound to the event loop that created them.

    Use it as an async context manager, or call :meth:`close`. The high-level
    API (``DatasetVersion``, ``DataView``) obtains one per event loop through
    :func:`framevault.sdk.runtime.current_client`; create your own only for
    raw access to the stubs.
    """

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self.settings = settings or ClientSettings.from_env()
        options = channel_options(self.settings)
        self._metadata_channel = aio.insecure_channel(self.settings.metadata_target, options=options)
        self._blob_channel = aio.insecure_channel(self.settings.blob_target, options=options)
        self.metadata = metadata_service_pb2_grpc.MetadataServiceStub(self._metadata_channel)
        self.blob = blob_pb2_grpc.BlobServiceStub(self._blob_channel)
        self._capabilities: blob_pb2.GetCapabilitiesResponse | None = None

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
                error = FramevaultError.from_rpc_error(rpc_error)
                if not policy.retries(error.code, attempt):
                    raise error from None
                await asyncio.sleep(policy.delay(attempt, error.retry_delay))
        raise AssertionError("unreachable")

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
