"""Errors the SDK raises, with the rich details the services send.

Every failed call becomes a :class:`FramevaultError` (or the subclass named
after its status code) carrying what the server put into the
``grpc-status-details-bin`` trailer (AIP-193): the machine-readable reason,
the offending fields of a bad request, the resource that was missing or
already existed, the failed preconditions and the back-off the server asked
for. Callers catch one type and still get all of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request, e.g. ``frames[3].rois[0].confidence``."""

    field: str
    description: str


@dataclass(frozen=True)
class ResourceInfo:
    """The resource a NOT_FOUND or ALREADY_EXISTS error is about."""

    resource_type: str
    resource_name: str
    description: str = ""


@dataclass(frozen=True)
class PreconditionViolation:
    """One failed precondition, e.g. type ``MISSING_BLOB`` with the digest as subject."""

    type: str
    subject: str
    description: str


class FramevaultError(Exception):
    """A failed framevault call, with everything the server said about it.

    Attributes:
        code: the gRPC status code.
        message: the human-readable message.
        reason: ``ErrorInfo.reason`` (machine-readable, e.g. ``DATASET_NOT_FOUND``).
        domain: ``ErrorInfo.domain``.
        error_metadata: ``ErrorInfo.metadata``.
        field_violations: the invalid fields of a bad request.
        resource_info: the missing or existing resource, if any.
        precondition_violations: the failed preconditions, if any.
        retry_delay: seconds the server asked the caller to wait, if any.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        domain: str = "",
        error_metadata: dict[str, str] | None = None,
        field_violations: Iterable[FieldViolation] = (),
        resource_info: ResourceInfo | None = None,
        precondition_violations: Iterable[PreconditionViolation] = (),
        retry_delay: float | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.error_metadata = dict(error_metadata or {})
        self.field_violations = list(field_violations)
        self.resource_info = resource_info
        self.precondition_violations = list(precondition_violations)
        self.retry_delay = retry_delay
        super().__init__(self.describe())

    @property
    def code_name(self) -> str:
        """The status code's name, e.g. ``INVALID_ARGUMENT``."""
        return self.code.name

    def describe(self) -> str:
        """One line: ``CODE: message``."""
        return f"{self.code_name}: {self.message}" if self.message else self.code_name

    def detail_lines(self) -> list[str]:
        """Human-readable lines for every detail (field violations first)."""
        lines = [f"{v.field}: {v.description}" for v in self.field_violations]
        lines += [f"{v.type} {v.subject}: {v.description}".rstrip(": ") for v in self.precondition_violations]
        if self.resource_info is not None:
            lines.append(f"{self.resource_info.resource_type} {self.resource_info.resource_name!r}")
        return lines

    @classmethod
    def from_status(cls, status: status_pb2.Status) -> FramevaultError:
        """Builds the error (of the subclass matching the code) from a ``google.rpc.Status``."""
        code = _status_code(status.code)
        return _error_class(code)(code, status.message, **_parse_details(status.details))

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> FramevaultError:
        """Builds the error from a failed call, parsing ``grpc-status-details-bin``."""
        code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
        message = error.details() if callable(getattr(error, "details", None)) else str(error)
        trailing = error.trailing_metadata() if callable(getattr(error, "trailing_metadata", None)) else None
        details: dict[str, Any] = {}
        for key, value in trailing or ():
            if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
                try:
                    status = status_pb2.Status.FromString(value)
                except Exception:  # noqa: BLE001 - a garbled trailer must not hide the real error
                    break
                details = _parse_details(status.details)
                message = status.message or message
                break
        return _error_class(code)(code, message or "", **details)

    @classmethod
    def client_side(
        cls, code: grpc.StatusCode, message: str, *, field: str = "", description: str = ""
    ) -> FramevaultError:
        """An error the SDK detected before (or instead of) a call, shaped like a server error."""
        violations = [FieldViolation(field, description or message)] if field else []
        return _error_class(code)(code, message, reason="CLIENT_" + code.name, field_violations=violations)


class InvalidArgumentError(FramevaultError):
    """The request was invalid; see ``field_violations``."""


class NotFoundError(FramevaultError):
    """A named resource does not exist; see ``resource_info``."""


class AlreadyExistsError(FramevaultError):
    """The resource to create exists; see ``resource_info``."""


class FailedPreconditionError(FramevaultError):
    """The system is not in a state the call needs (e.g. writing to a published version)."""


class AbortedError(FramevaultError):
    """A concurrency conflict (e.g. etag mismatch); retry the read-modify-write."""


class UnavailableError(FramevaultError):
    """The service could not be reached or is shedding load; safe to retry later."""


class DeadlineExceededError(FramevaultError):
    """The call did not finish within its deadline."""


_CLASSES: dict[grpc.StatusCode, type[FramevaultError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}

_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def _status_code(number: int) -> grpc.StatusCode:
    return _CODES_BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def _error_class(code: grpc.StatusCode) -> type[FramevaultError]:
    return _CLASSES.get(code, FramevaultError)


def _parse_details(packed: Iterable[any_pb2.Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"field_violations": [], "precondition_violations": []}
    for detail in packed:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            out.update(reason=info.reason, domain=info.domain, error_metadata=dict(info.metadata))
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out["field_violations"] += [FieldViolation(v.field, v.description) for v in bad.field_violations]
        elif detail.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
            res = error_details_pb2.ResourceInfo()
            detail.Unpack(res)
            out["resource_info"] = ResourceInfo(res.resource_type, res.resource_name, res.description)
        elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            pre = error_details_pb2.PreconditionFailure()
            detail.Unpack(pre)
            out["precondition_violations"] += [
                PreconditionViolation(v.type, v.subject, v.description) for v in pre.violations
            ]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            out["retry_delay"] = retry.retry_delay.ToTimedelta().total_seconds()
    return out

