"""The one place where exceptions become gRPC statuses, and calls are logged.

Handlers raise domain errors (``framevault.common.errors``); this interceptor
turns them into a status with AIP-193 details in the
``grpc-status-details-bin`` trailer. Anything else is a bug on our side:
INTERNAL, with the traceback logged and not sent.

Request bytes that do not decode reach handlers as ``UndecodableRequest``
(``request_decoding``): here they become INVALID_ARGUMENT, for a unary request
before the handler runs, in a request stream where the handler reads it,
unless the handler answers such items itself (``accepts_undecodable``).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog
from grpc import aio

from framevault.common.errors import FramevaultError, Internal, Unimplemented
from framevault.common.metrics import observe_rpc
from framevault.common.request_decoding import UndecodableRequest, handler_accepts_undecodable, tolerant

log = structlog.get_logger("framevault.rpc")

# Returns an error to answer instead of running the handler (e.g. while the
# service is not prepared), or None to run it.
CallGate = Callable[[str], FramevaultError | None]

# Maps backend exceptions (driver errors ...) to domain errors; returns None
# for exceptions it does not know.
ErrorTranslator = Callable[[BaseException], FramevaultError | None]


def _no_translation(_: BaseException) -> FramevaultError | None:
    return None


# Reads what the client still sends on a request stream the service answers
# early (framevault.common.streams.drain_briefly).
StreamDrain = Callable[[AsyncIterable[Any]], Awaitable[None]]


class ErrorMappingInterceptor(aio.ServerInterceptor):
    """The outermost interceptor of a service.

    The wrapped handler of a method is built on its first call and handed
    out for every later call without running the interceptors inside this
    one again: a call costs one interceptor step and no handler building.
    So the interceptors inside must make handlers that depend on the method
    only, never on one call's details (the auth interceptor reads each call's
    credential from its context)."""

    def __init__(self, translate: ErrorTranslator = _no_translation, gate: CallGate | None = None,
                 drain: StreamDrain | None = None):
        self._translate = translate
        self._gate = gate
        # A call on a request stream that ends with an error (refused by the
        # auth interceptor, or failed by its handler) first reads what the
        # client still sends: a grpcio client still writing would report
        # INTERNAL instead of the status (grpc/grpc#36066).
        self._drain = drain
        # Method -> its wrapped handler; only methods the server serves get in.
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = await continuation(handler_call_details)
            if handler is None:
                return handler
            wrapped = self._wrapped[method] = self._wrap(method, handler)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        deserializer = tolerant(handler.request_deserializer) if handler.request_deserializer else None
        serializer = _sent_as_encoded(handler.response_serializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                request_deserializer=deserializer,
                response_serializer=serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=deserializer,
                response_serializer=serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(method, handler.stream_unary, request_stream=True),
                request_deserializer=deserializer,
                response_serializer=serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(method, handler.stream_stream, request_stream=True),
            request_deserializer=deserializer,
            response_serializer=serializer,
        )

    def _wrap_unary(self, method: str, behavior: Callable[..., Any], *, request_stream: bool = False
                    ) -> Callable[..., Any]:
        decoded = _request_decoder(behavior, request_stream)

        async def wrapped(request: Any, context: aio.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                self._check_gate(method)
                response = await behavior(decoded(request), context)
            except Exception as exc:  # noqa: BLE001 - the mapping point
                if request_stream:
                    await self._drained(request)
                await self._abort(method, exc, context, started)
                raise  # unreachable: abort raises
            _log_done(method, context, started)
            return response

        return wrapped

    def _wrap_stream(self, method: str, behavior: Callable[..., Any], *, request_stream: bool = False
                     ) -> Callable[..., Any]:
        if not inspect.isasyncgenfunction(behavior):
            # Streaming handlers that write with context.write() (health Watch)
            # are plain coroutines.
            return self._wrap_unary(method, behavior, request_stream=request_stream)
        decoded = _request_decoder(behavior, request_stream)

        async def wrapped(request: Any, context: aio.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                self._check_gate(method)
                async for response in behavior(decoded(request), context):
                    yield response
            except Exception as exc:  # noqa: BLE001 - the mapping point
                if request_stream:
                    await self._drained(request)
                await self._abort(method, exc, context, started)
                raise
            _log_done(method, context, started)

        return wrapped

    async def _drained(self, requests: AsyncIterable[Any]) -> None:
        if self._drain is not None:
            await self._drain(requests)

    def _check_gate(self, method: str) -> None:
        if self._gate is not None and (refusal := self._gate(method)) is not None:
            raise refusal

    async def _abort(self, method: str, exc: Exception, context: aio.ServicerContext, started: float) -> None:
        if isinstance(exc, aio.AbortError):
            raise exc
        if isinstance(exc, FramevaultError):
            error: FramevaultError | None = exc
        elif isinstance(exc, NotImplementedError):
            # The generated servicer base raises this for RPCs not built yet.
            error = Unimplemented(f"{method} is not implemented yet")
        else:
            error = self._translate(exc)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
        if error is None:
            log.error("rpc_failed", method=method, code="INTERNAL", elapsed_ms=elapsed_ms, exc_info=exc)
            error = Internal("internal error; see server logs")
        else:
            log.info("rpc_error", method=method, code=error.code.name, reason=error.reason, message=error.message,
                     elapsed_ms=elapsed_ms)
        observe_rpc(method, error.code.name, elapsed_ms / 1000)
        status = error.to_status()
        await context.abort(
            error.code,
            error.message,
            trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),),
        )


def _sent_as_encoded(serialize: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """The response serializer of a method whose handler may also hand over a response already
    encoded (``bytes``, e.g. IterateFrames' messages built by the frame codec): sent as it is."""
    if serialize is None:
        return None

    def serialized(response: Any) -> bytes:
        return response if type(response) is bytes else serialize(response)

    return serialized


def _request_decoder(behavior: Callable[..., Any], request_stream: bool) -> Callable[[Any], Any]:
    """What the handler gets for the request (or request stream) received:
    undecodable messages raise INVALID_ARGUMENT where the handler takes them,
    unless it answers them itself."""
    if not request_stream:
        return _decoded_request
    if handler_accepts_undecodable(behavior):
        return _unchanged
    return _decoded_requests


def _unchanged(requests: Any) -> Any:
    return requests


def _decoded_request(request: Any) -> Any:
    if isinstance(request, UndecodableRequest):
        raise request.error()
    return request


async def _decoded_requests(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _decoded_request(request)


def _log_done(method: str, context: aio.ServicerContext, started: float) -> None:
    elapsed = time.perf_counter() - started
    observe_rpc(method, "OK", elapsed)
    log.debug("rpc_ok", method=method, elapsed_ms=round(elapsed * 1000, 2))
