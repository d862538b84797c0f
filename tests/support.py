"""Helpers for tests: channels and services in-process, rich error details of failed calls."""

from __future__ import annotations

from typing import Any

from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status

from framevault.common.config import Settings
from framevault.common.server import RunningService

# The one free-port helper, the stack's, for every test.
from framevault.stack.supervision import free_port as free_port

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


def channel_to(port: int) -> aio.Channel:
    """A channel to an in-process service, with the services' message limits."""
    return aio.insecure_channel(
        f"127.0.0.1:{port}",
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                 ("grpc.max_send_message_length", 64 * 1024 * 1024)],
    )


async def start_blob_service(settings: Settings, **build_options: Any) -> RunningService:
    from framevault.blob.app import build_service

    running = RunningService(build_service(settings, **build_options), settings)
    await running.start()
    return running
