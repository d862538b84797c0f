"""Helpers for tests: reading rich error details of failed calls."""

from __future__ import annotations

from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status

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
