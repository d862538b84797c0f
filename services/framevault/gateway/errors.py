"""The one mapping from a failed call to an HTTP answer.

Every failure the gateway answers is a ``google.rpc.Status``: the one a
service returned (its rich details included), or the one a gateway check
raised as a ``framevault.common.errors`` domain error. ``http_error`` turns
it into the HTTP status and the JSON body the web app reads (API.md,
"Conventions").
"""

from __future__ import annotations

import re
from typing import Any

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status

from framevault.common.errors import FramevaultError

# gRPC code → HTTP status; any other code is 500.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
# Query errors of the metadata service read "at position N: ..." (views/query.py) in the violation
# of a field ending in ``query``.
_QUERY_POSITION = re.compile(r"^at position (\d+): ")
# The service's view-field paths and the query parameter the web app sent them as.
_QUERY_FIELD = re.compile(r"(^|\.)query$")
# Request fields filled from a query parameter of another name (browse.py): the metadata key of a
# frames listing is sent as ``sort``, a diff's page token is the DiffVersions resume cursor.
_PARAMETER_OF_FIELD = {"view.metadata_order.key": "sort", "resume_cursor": "page_token"}


class HttpError(Exception):
    """A failure to answer: HTTP status and JSON body."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body["error"]["message"])
        self.status = status
        self.body = body
        self.headers = headers or {}


def status_of(exc: aio.AioRpcError | FramevaultError) -> status_pb2.Status:
    """The google.rpc.Status of a failed service call or of a gateway-side domain error."""
    if isinstance(exc, FramevaultError):
        return exc.to_status()
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    if status is None:
        return status_pb2.Status(code=exc.code().value[0], message=exc.details() or exc.code().name)
    return status


def http_error(status: status_pb2.Status) -> HttpError:
    code = _CODES_BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)
    error: dict[str, Any] = {"code": code.name, "message": status.message}
    fields: list[dict[str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            for violation in bad_request.field_violations:
                field, description = violation.field, violation.description
                if _QUERY_FIELD.search(field):
                    field = "query"
                    position = _QUERY_POSITION.match(description)
                    if position is not None:
                        error.setdefault("position", int(position.group(1)))
                        description = description[position.end():]
                field = _PARAMETER_OF_FIELD.get(field, field)
                fields.append({"field": field, "description": description})
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            error["reason"] = info.reason
        elif detail.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
            resource = error_details_pb2.ResourceInfo()
            detail.Unpack(resource)
            error["resource"] = {"type": resource.resource_type, "name": resource.resource_name}
    if fields:
        error["fields"] = fields
    headers = {"WWW-Authenticate": 'Bearer realm="framevault"'} if code == grpc.StatusCode.UNAUTHENTICATED else {}
    return HttpError(HTTP_STATUS.get(code, 500), {"error": error}, headers)


def not_found_route() -> HttpError:
    return http_error(status_pb2.Status(code=code_pb2.NOT_FOUND, message="no such API path"))
