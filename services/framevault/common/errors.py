"""Domain errors, named after the gRPC status codes they become.

Domain code raises these; the transport maps them to a ``google.rpc.Status``
with AIP-193 details exactly once (see ``framevault.common.grpc_errors``).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

ERROR_DOMAIN = "framevault.dev"


@dataclass
class FieldViolation:
    field: str
    description: str


@dataclass
class PreconditionViolation:
    type: str
    subject: str
    description: str


class FramevaultError(Exception):
    """Base of every error a caller may see. Subclasses fix the status code."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    default_reason = "UNKNOWN"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})

    def details(self) -> list[object]:
        """The AIP-193 detail messages besides ErrorInfo."""
        return []

    def to_status(self) -> status_pb2.Status:
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata)
        packed = []
        for detail in [info, *self.details()]:
            any_msg = any_pb2.Any()
            any_msg.Pack(detail)  # type: ignore[arg-type]
            packed.append(any_msg)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)


class InvalidArgument(FramevaultError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation] | FieldViolation, message: str | None = None, **kw):
        self.violations = violations if isinstance(violations, list) else [violations]
        if message is None:
            message = "; ".join(f"{v.field}: {v.description}" for v in self.violations[:5])
            if len(self.violations) > 5:
                message += f"; and {len(self.violations) - 5} more"
        super().__init__(message, **kw)

    @classmethod
    def field(cls, field_path: str, description: str) -> InvalidArgument:
        return cls(FieldViolation(field_path, description))

    def details(self) -> list[object]:
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in self.violations
                ]
            )
        ]


def _bad_request(field_path: str, description: str) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field=field_path, description=description)]
    )


class _ResourceError(FramevaultError):
    """An error about one named resource: carries ResourceInfo (AIP-193)."""

    verb = ""
    reason_suffix = ""

    def __init__(self, resource_type: str, resource_name: str, *, field: str = "", message: str | None = None):
        self.resource_type = resource_type
        self.resource_name = resource_name
        self.field = field
        super().__init__(
            message or f"{resource_type} {resource_name!r} {self.verb}",
            reason=f"{resource_type.upper()}_{self.reason_suffix}",
        )

    def details(self) -> list[object]:
        out: list[object] = [
            error_details_pb2.ResourceInfo(
                resource_type=self.resource_type, resource_name=self.resource_name, description=self.message
            )
        ]
        if self.field:
            out.append(_bad_request(self.field, self.message))
        return out


class NotFound(_ResourceError):
    code = grpc.StatusCode.NOT_FOUND
    verb = "not found"
    reason_suffix = "NOT_FOUND"


class AlreadyExists(_ResourceError):
    code = grpc.StatusCode.ALREADY_EXISTS
    verb = "already exists"
    reason_suffix = "EXISTS"


class DuplicateKey(FramevaultError):
    """A write met a unique index: a document with that key exists. Storage
    raises it; domain code that expects the race says which resource it is
    (``AlreadyExists``) or reads the winner."""

    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class TooLargeToStore(FramevaultError):
    """The backend refused a document as too large (or unencodable); domain
    code names the request field it came from."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "TOO_LARGE_TO_STORE"


class FailedPrecondition(FramevaultError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"

    def __init__(self, message: str, violations: list[PreconditionViolation] | None = None, **kw):
        self.violations = violations or []
        super().__init__(message, **kw)

    def details(self) -> list[object]:
        if not self.violations:
            return []
        return [
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(type=v.type, subject=v.subject, description=v.description)
                    for v in self.violations
                ]
            )
        ]


class _Retryable(FramevaultError):
    retry_after_ms: int = 100

    def __init__(self, message: str, *, retry_after_ms: int | None = None, **kw):
        if retry_after_ms is not None:
            self.retry_after_ms = retry_after_ms
        super().__init__(message, **kw)

    def details(self) -> list[object]:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(self.retry_after_ms)
        return [error_details_pb2.RetryInfo(retry_delay=delay)]


class Aborted(_Retryable):
    code = grpc.StatusCode.ABORTED
    default_reason = "ABORTED"


class WriteConflict(Aborted):
    """Another transaction wrote a document this one wrote; retrying the
    write alone, or in smaller parts, may succeed."""


class Unavailable(_Retryable):
    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


class DeadlineExceeded(_Retryable):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    default_reason = "DEADLINE_EXCEEDED"


class OutOfRange(FramevaultError):
    code = grpc.StatusCode.OUT_OF_RANGE
    default_reason = "OUT_OF_RANGE"

    def __init__(self, field_path: str, description: str, **kw):
        self.field = field_path
        super().__init__(f"{field_path}: {description}", **kw)

    def details(self) -> list[object]:
        return [_bad_request(self.field, self.message)]


class ResourceExhausted(FramevaultError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"


class Unimplemented(FramevaultError):
    code = grpc.StatusCode.UNIMPLEMENTED
    default_reason = "UNIMPLEMENTED"


class Internal(FramevaultError):
    code = grpc.StatusCode.INTERNAL
    default_reason = "INTERNAL"


def ok_status() -> status_pb2.Status:
    return status_pb2.Status(code=code_pb2.OK)


class FieldErrors:
    """Collects field violations while validating a request, raised at once.

    Validating everything before raising lets a caller fix all mistakes in one
    round trip.
    """

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, field_path: str, description: str) -> None:
        self.violations.append(FieldViolation(field_path, description))

    def __bool__(self) -> bool:
        return bool(self.violations)

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidArgument(self.violations)
