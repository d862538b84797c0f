"""The server interceptor that authenticates, authorizes and audits calls.

Installed inside the error-mapping interceptor (``ServiceSpec.interceptors``),
so its refusals are domain errors mapped to statuses once, like every other
error. Health and reflection stay open. For every other method:
1. the bearer token of the ``authorization`` call metadata is authenticated
   (UNAUTHENTICATED when missing or invalid);
2. the method's rule (``permissions.RULES``) is checked against the caller
   and the request (for a request stream: its first message);
   PERMISSION_DENIED names the permission lacking;
3. the handler runs with the caller available (``principals.current_caller``);
4. a write (``Permission.writes``) is logged once as an ``audit`` event with
   the caller, the RPC, the resources and the outcome, refused or not.

Each service plugs in its ``Authenticator`` and ``Authorizer``: the metadata
service checks its own key and role store, the blob service asks the
metadata service.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import structlog
from grpc import aio

from framevault.auth.credentials import bearer_token
from framevault.auth.permissions import Rule, is_open, rule_of
from framevault.auth.principals import Caller, set_current_caller
from framevault.common.errors import FramevaultError, PermissionDenied
from framevault.common.request_decoding import UndecodableRequest, accepts_undecodable, handler_accepts_undecodable

audit_log = structlog.get_logger("framevault.audit")

ResponseFilter = Callable[[Any], Awaitable[Any]]


@dataclass(frozen=True)
class Grant:
    """An authorized call: the caller (as the authorizer completed it, e.g.
    with its admin role), the resources it names, for the audit log, and an
    optional filter of the response (ListDatasets shows only what the caller
    may view)."""

    caller: Caller
    resources: Sequence[str] = ()
    response_filter: ResponseFilter | None = field(default=None)


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Caller: ...


class Authorizer(Protocol):
    async def authorize(self, caller: Caller, method: str, rule: Rule, request: Any) -> Grant: ...


def audit(method: str, caller: Caller | None, resources: Sequence[str], outcome: str) -> None:
    """One ``audit`` event of a write call."""
    who = caller.describe() if caller is not None else {"principal": "anonymous"}
    audit_log.info("audit", rpc=method, caller=who, resources=list(resources), outcome=outcome)


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, FramevaultError):
        return exc.code.name
    if isinstance(exc, aio.AbortError):
        return "ABORTED_BY_HANDLER"
    return "ERROR"


class AuthInterceptor(aio.ServerInterceptor):
    """A refused request stream is drained by the error mapping around it
    (``ErrorMappingInterceptor``), like any request stream that fails early.

    The guarded handler of a method is built once, on its first call, and
    serves every later call of it: it reads the credential from each call's
    own metadata, and what it learns of a caller lives in that call only, so
    the error mapping around it may hand it out without running this
    interceptor again (``ErrorMappingInterceptor``)."""

    def __init__(self, authenticator: Authenticator, authorizer: Authorizer):
        self._authenticator = authenticator
        self._authorizer = authorizer
        self._guarded: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        guarded = self._guarded.get(method)
        if guarded is not None:
            return guarded
        handler = await continuation(handler_call_details)
        if handler is None or is_open(method):
            return handler
        guarded = _GuardedMethod(self, method, rule_of(method)).handler(handler)
        # Only methods the server serves get here, so the map stays as small as the services.
        self._guarded[method] = guarded
        return guarded

    async def authenticate(self, authorization: str | None) -> Caller:
        caller = await self._authenticator.authenticate(bearer_token(authorization))
        set_current_caller(caller)
        return caller

    async def authorize(self, caller: Caller, method: str, rule: Rule | None, request: Any) -> Grant:
        """Raises the refusal, or returns the grant of the call."""
        if rule is None:
            # Every method of the services is in the table (a test checks); one
            # that is not is refused rather than left open.
            raise PermissionDenied("unlisted", f"{method} has no permission rule; refused")
        grant = await self._authorizer.authorize(caller, method, rule, request)
        set_current_caller(grant.caller)
        return grant


def requested_resources(refs: Sequence[Any]) -> list[str]:
    """The dataset and version references of a request as sent, for the audit
    of a refused call (a granted one lists the datasets they resolved to)."""
    described = []
    for ref in refs:
        kind = "version" if ref.DESCRIPTOR.name == "VersionRef" else "dataset"
        if kind == "version" and ref.HasField("dataset"):
            described.extend(requested_resources([ref.dataset]))
        which = ref.WhichOneof("ref")
        if which == "id":
            described.append(f"{kind}:{ref.id}")
        elif which == "name":
            described.append(f"{kind}:name={ref.name}")
    return described


def _authorization(context: aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


class _Admission:
    """One call's caller and resources, for its audit event."""

    __slots__ = ("caller", "resources")

    def __init__(self) -> None:
        self.caller: Caller | None = None
        self.resources: Sequence[str] = ()


class _GuardedMethod:
    """Wraps the handler of one method: admit, run, audit each call."""

    def __init__(self, interceptor: AuthInterceptor, method: str, rule: Rule | None):
        self._interceptor = interceptor
        self._method = method
        self._rule = rule
        self._audited = rule is not None and rule.permission.writes

    def handler(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        kwargs = {"request_deserializer": handler.request_deserializer,
                  "response_serializer": handler.response_serializer}
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self.unary(handler.unary_unary), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(self.response_stream(handler.unary_stream), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self.request_stream(handler.stream_unary, streaming_response=False), **kwargs)
        return grpc.stream_stream_rpc_method_handler(
            self.request_stream(handler.stream_stream, streaming_response=True), **kwargs)

    async def _admit(self, admission: _Admission, request: Any, context: aio.ServicerContext) -> Grant:
        try:
            admission.caller = await self._interceptor.authenticate(_authorization(context))
            grant = await self._interceptor.authorize(admission.caller, self._method, self._rule, request)
        except BaseException as exc:
            if self._rule is not None and request is not None:
                admission.resources = requested_resources(self._rule.refs(request))
            self._audit(admission, _outcome(exc))
            raise
        admission.caller, admission.resources = grant.caller, grant.resources
        return grant

    def _audit(self, admission: _Admission, outcome: str) -> None:
        if self._audited:
            audit(self._method, admission.caller, admission.resources, outcome)

    def unary(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapped(request: Any, context: aio.ServicerContext) -> Any:
            admission = _Admission()
            grant = await self._admit(admission, request, context)
            try:
                response = await behavior(request, context)
                if grant.response_filter is not None:
                    response = await grant.response_filter(response)
            except BaseException as exc:
                self._audit(admission, _outcome(exc))
                raise
            self._audit(admission, "OK")
            return response

        return wrapped

    def response_stream(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.isasyncgenfunction(behavior):
            return self.unary(behavior)

        async def wrapped(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
            admission = _Admission()
            await self._admit(admission, request, context)
            async for response in self._audited_stream(admission, behavior(request, context)):
                yield response

        return wrapped

    def request_stream(self, behavior: Callable[..., Any], *, streaming_response: bool) -> Callable[..., Any]:
        """The rule reads the stream's first message, which is then handed on
        to the handler with the rest."""

        async def admitted(admission: _Admission, requests: AsyncIterator[Any], context: aio.ServicerContext
                           ) -> AsyncIterator[Any]:
            first = await anext(aiter(requests), None)
            await self._admit(admission, None if isinstance(first, UndecodableRequest) else first, context)
            return _prepended(first, requests)

        if streaming_response and inspect.isasyncgenfunction(behavior):
            async def wrapped_stream(requests: AsyncIterator[Any], context: aio.ServicerContext
                                     ) -> AsyncIterator[Any]:
                admission = _Admission()
                rest = await admitted(admission, requests, context)
                async for response in self._audited_stream(admission, behavior(rest, context)):
                    yield response

            wrapped: Callable[..., Any] = wrapped_stream
        else:
            async def wrapped_unary(requests: AsyncIterator[Any], context: aio.ServicerContext) -> Any:
                admission = _Admission()
                rest = await admitted(admission, requests, context)
                try:
                    response = await behavior(rest, context)
                except BaseException as exc:
                    self._audit(admission, _outcome(exc))
                    raise
                self._audit(admission, "OK")
                return response

            wrapped = wrapped_unary
        if handler_accepts_undecodable(behavior):
            accepts_undecodable(wrapped)
        return wrapped

    async def _audited_stream(self, admission: _Admission, responses: AsyncIterator[Any]) -> AsyncIterator[Any]:
        try:
            async for response in responses:
                yield response
        except BaseException as exc:
            self._audit(admission, _outcome(exc))
            raise
        self._audit(admission, "OK")


async def _prepended(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    if first is None:
        return
    yield first
    async for item in rest:
        yield item
