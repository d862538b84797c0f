"""Calls any RPC of the two services generically and judges the answer.

The RPC list comes from the service descriptors, so a new RPC is fuzzed (and
must get seeds, see ``test_seeds_cover_every_rpc``) without changes here.
Requests go through ``channel.unary_unary`` / ``stream_stream`` ..., either
as messages or as raw bytes with an identity serializer.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor as d
from google.protobuf import message_factory, text_format
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from support import status_details

from framevault.v1 import blob_pb2, metadata_service_pb2

# A call that has not answered by then is reported as hanging: a guard that
# keeps a run finite, not a performance assertion.
HANG_GUARD_SECONDS = 30.0
# Server-streaming calls are read this far, then cancelled (views may be
# infinite).
MAX_RESPONSES = 40

FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
# Per-frame upload errors name fields relative to the stream (`frames[i]...`).
FIELD_ALIASES = {"UploadFrames": {"frames"}}


@dataclass(frozen=True)
class Rpc:
    service: str
    name: str
    request: type[Message]
    response: type[Message]
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def kind(self) -> str:
        return ("stream" if self.client_streaming else "unary") + "_" + (
            "stream" if self.server_streaming else "unary")


def rpcs_of(service: d.ServiceDescriptor) -> list[Rpc]:
    return [Rpc(service.full_name, m.name, message_factory.GetMessageClass(m.input_type),
                message_factory.GetMessageClass(m.output_type), m.client_streaming, m.server_streaming)
            for m in service.methods]


METADATA_RPCS = rpcs_of(metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"])
BLOB_RPCS = rpcs_of(blob_pb2.DESCRIPTOR.services_by_name["BlobService"])
ALL_RPCS = {r.name: r for r in METADATA_RPCS + BLOB_RPCS}


@dataclass
class Outcome:
    code: grpc.StatusCode
    message: str = ""
    # The failed call (aio or synchronous), for its status details.
    error: Any = None
    responses: list[Message] = field(default_factory=list)


def _identity(data: bytes) -> bytes:
    return data


async def call(channel: aio.Channel, rpc: Rpc, requests: Sequence[Message | bytes],
               sync_channel: grpc.Channel | None = None) -> Outcome:
    """Sends ``requests`` (one for unary requests) and collects the answer.

    Client streams go through the synchronous client in a thread: when the
    server ends a stream early (a rejected first message), the aio client
    fails the next write with an INTERNAL of its own that replaces the
    server's status; the synchronous client reports the server's status.
    """
    raw = bool(requests) and isinstance(requests[0], bytes)
    serializer = _identity if raw else rpc.request.SerializeToString
    if rpc.client_streaming:
        assert sync_channel is not None, "client streams need the synchronous channel"
        return await asyncio.to_thread(_call_sync, sync_channel, rpc, requests, serializer)
    factory = getattr(channel, rpc.kind)
    method = factory(rpc.path, request_serializer=serializer, response_deserializer=rpc.response.FromString)
    responses: list[Message] = []
    try:
        invocation = method(requests[0], timeout=HANG_GUARD_SECONDS)
        if rpc.server_streaming:
            async for response in invocation:
                responses.append(response)
                if len(responses) >= MAX_RESPONSES:
                    invocation.cancel()
                    break
        else:
            responses.append(await invocation)
    except aio.AioRpcError as exc:
        return Outcome(exc.code(), exc.details() or "", exc, responses)
    except asyncio.CancelledError:
        if len(responses) < MAX_RESPONSES:
            raise
    return Outcome(grpc.StatusCode.OK, responses=responses)


def _call_sync(channel: grpc.Channel, rpc: Rpc, requests: Sequence[Message | bytes], serializer: Any) -> Outcome:
    factory = getattr(channel, rpc.kind)
    method = factory(rpc.path, request_serializer=serializer, response_deserializer=rpc.response.FromString)
    responses: list[Message] = []
    try:
        if rpc.server_streaming:
            invocation = method(iter(requests), timeout=HANG_GUARD_SECONDS)
            for response in invocation:
                responses.append(response)
                if len(responses) >= MAX_RESPONSES:
                    invocation.cancel()
                    break
        else:
            responses.append(method(iter(requests), timeout=HANG_GUARD_SECONDS))
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.CANCELLED and len(responses) >= MAX_RESPONSES:  # type: ignore[attr-defined]
            return Outcome(grpc.StatusCode.OK, responses=responses)
        return Outcome(exc.code(), exc.details() or "", exc, responses)  # type: ignore[attr-defined]
    return Outcome(grpc.StatusCode.OK, responses=responses)


# --- the oracle --------------------------------------------------------------

class FuzzFailure(AssertionError):
    """Base of the failures; one subclass per kind, so Hypothesis keeps and
    shrinks distinct failures of one test separately."""


_KINDS: dict[str, type[FuzzFailure]] = {}


def failure(kind: str, message: str) -> FuzzFailure:
    cls = _KINDS.setdefault(kind, type(kind, (FuzzFailure,), {}))
    return cls(message)


@dataclass
class Problem:
    kind: str
    text: str


def _bad_request_fields(details: list[object]) -> list[str]:
    return [v.field for detail in details if isinstance(detail, error_details_pb2.BadRequest)
            for v in detail.field_violations]


_ROOT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _names_request_field(rpc: Rpc, path: str) -> bool:
    root = _ROOT.match(path)
    if root is None:
        return False
    known = set(rpc.request.DESCRIPTOR.fields_by_name) | FIELD_ALIASES.get(rpc.name, set())
    return root.group(0) in known


def judge(rpc: Rpc, outcome: Outcome, *, decodable: bool = True) -> list[Problem]:
    """Everything wrong with one answer (empty: acceptable)."""
    problems: list[Problem] = []
    code = outcome.code
    if code in FORBIDDEN:
        problems.append(Problem(f"{code.name.title()}Status", f"{rpc.name} answered {code.name}: {outcome.message}"))
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        problems.append(Problem("NoAnswer", f"{rpc.name} did not answer within {HANG_GUARD_SECONDS:.0f} s"))
    elif code == grpc.StatusCode.INVALID_ARGUMENT:
        assert outcome.error is not None
        status = rpc_status.from_call(outcome.error)  # type: ignore[arg-type]
        fields = _bad_request_fields(status_details(status)) if status is not None else []
        named = [f for f in fields if f and (not decodable or _names_request_field(rpc, f))]
        if not named:
            problems.append(Problem("UnnamedInvalidArgument",
                                    f"{rpc.name} INVALID_ARGUMENT without a BadRequest violation naming a request "
                                    f"field (violations {fields!r}): {outcome.message}"))
    if outcome.error is not None and (size := trailer_size(outcome.error)) > CLIENT_METADATA_LIMIT:
        problems.append(Problem("OversizedErrorTrailer",
                                f"{rpc.name} {code.name}: status trailer of {size} bytes; gRPC clients drop "
                                f"trailers over {CLIENT_METADATA_LIMIT} (at random up to twice that) and "
                                f"report RESOURCE_EXHAUSTED instead: {outcome.message[:300]}"))
    for response in outcome.responses:
        for where, status in embedded_statuses(response):
            problems += judge_embedded(rpc, where, status)
    return problems


# Default soft limit of received metadata in gRPC clients (grpc.max_metadata_size).
CLIENT_METADATA_LIMIT = 8 * 1024
_HPACK_ENTRY_OVERHEAD = 32


def trailer_size(error: Any) -> int:
    """Wire size of an error's trailers as gRPC's metadata limit counts it:
    each entry's name and value plus 32 bytes, binary values in base64, the
    status message percent-encoded."""
    size = 0
    for key, value in error.trailing_metadata() or ():
        raw = value if isinstance(value, bytes) else value.encode()
        length = len(base64.b64encode(raw)) if key.endswith("-bin") else len(raw)
        size += len(key) + length + _HPACK_ENTRY_OVERHEAD
    message = (error.details() or "").encode()
    encoded = sum(1 if 0x20 <= b < 0x7F and b != 0x25 else 3 for b in message)
    return size + len("grpc-message") + encoded + len("grpc-status") + 2 + 2 * _HPACK_ENTRY_OVERHEAD


def judge_embedded(rpc: Rpc, where: str, status: status_pb2.Status) -> list[Problem]:
    if status.code in (code_pb2.INTERNAL, code_pb2.UNKNOWN):
        return [Problem(f"Embedded{code_pb2.Code.Name(status.code).title()}",
                        f"{rpc.name} response {where} carries {code_pb2.Code.Name(status.code)}: {status.message}")]
    if status.code == code_pb2.INVALID_ARGUMENT:
        fields = [f for f in _bad_request_fields(status_details(status)) if f]
        if not fields:
            return [Problem("EmbeddedUnnamedInvalidArgument",
                            f"{rpc.name} response {where} INVALID_ARGUMENT without a field: {status.message}")]
    return []


def embedded_statuses(msg: Message, where: str = "") -> list[tuple[str, status_pb2.Status]]:
    """Every google.rpc.Status inside a response (per-item outcomes)."""
    if isinstance(msg, status_pb2.Status):
        return [(where or "status", msg)]
    found = []
    for field_desc, value in msg.ListFields():
        if field_desc.type != d.FieldDescriptor.TYPE_MESSAGE or field_desc.message_type.GetOptions().map_entry:
            continue
        if field_desc.is_repeated:
            for i, item in enumerate(value):
                found += embedded_statuses(item, f"{where}.{field_desc.name}[{i}]")
        else:
            found += embedded_statuses(value, f"{where}.{field_desc.name}")
    return found


async def health_problems(channels: dict[str, aio.Channel]) -> list[Problem]:
    problems = []
    for name, channel in channels.items():
        try:
            answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""),
                                                                     timeout=30)
            status = answer.status
        except aio.AioRpcError as exc:
            problems.append(Problem("Unhealthy", f"{name} health check failed: {exc.code().name} {exc.details()}"))
            continue
        if status != health_pb2.HealthCheckResponse.SERVING:
            problems.append(Problem("Unhealthy", f"{name} health is {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}"))
    return problems


def describe(requests: Sequence[Message | bytes], limit: int = 1500) -> str:
    parts = []
    for request in requests:
        if isinstance(request, bytes):
            text = request[:200].hex()
        else:
            try:
                text = text_format.MessageToString(request, as_one_line=True)
            except DecodeError:
                text = f"<{type(request).__name__} of {request.ByteSize()} bytes, nested too deep to print>"
        parts.append(text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)")
    return " | ".join(parts)


def decodes(rpc: Rpc, data: bytes) -> bool:
    try:
        rpc.request.FromString(data)
    except DecodeError:
        return False
    return True
