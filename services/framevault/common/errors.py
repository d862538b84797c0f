"""Domain errors, named after the gRPC status codes they become.

Domain code raises these; the transport maps them to a ``google.rpc.Status``
with AIP-193 details exactly once (see ``framevault.common.grpc_errors``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

ERROR_DOMAIN = "framevault.dev"

# What one error may carry, so that its status (message + details) always fits
# the 8 KiB trailer gRPC clients accept: the message is sent percent-encoded
# (up to 3 bytes per byte), the details base64-encoded (4 per 3).
MAX_MESSAGE_BYTES = 512
MAX_DETAIL_STRING_BYTES = 256
MAX_REPEATED_DETAIL_ITEMS = 100
MAX_DETAILS_BYTES = 3072
_CLIPPED = "…".encode()


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
        message = clip_text(message, MAX_MESSAGE_BYTES)
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})

    def details(self) -> list[object]:
        """The AIP-193 detail messages besides ErrorInfo."""
        return []

    def to_status(self) -> status_pb2.Status:
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata)
        details: list[Message] = [info, *self.details()]  # type: ignore[list-item]
        for detail in details:
            _bound_strings(detail)
        while sum(detail.ByteSize() for detail in details) > MAX_DETAILS_BYTES and _drop_last_item(details):
            pass
        packed = []
        for detail in details:
            any_msg = any_pb2.Any()
            any_msg.Pack(detail)
            packed.append(any_msg)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)


def clip_text(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8 (on a character boundary),
    marked with an ellipsis when cut."""
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    return encoded[: max_bytes - len(_CLIPPED)].decode(errors="ignore") + _CLIPPED.decode()


def _is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return entry is not None and entry.GetOptions().map_entry


def _drop_last_item(details: list[Message]) -> bool:
    """Removes the last item of the longest repeated field among ``details``
    (e.g. the last field violation); False when there is none left to drop."""
    longest: tuple[int, Any] | None = None
    for detail in details:
        for field, value in detail.ListFields():
            if field.is_repeated and field.type == FieldDescriptor.TYPE_MESSAGE and not _is_map(field) \
                    and len(value) > 1:
                if longest is None or len(value) > longest[0]:
                    longest = (len(value), value)
    if longest is None:
        return False
    del longest[1][-1]
    return True


def _bound_strings(message: Message) -> None:
    """Clips every string of an error detail and keeps at most
    MAX_REPEATED_DETAIL_ITEMS of each repeated field, in place.

    Errors echo what the caller sent (names, keys, field paths), and the whole
    status travels in one trailer, which gRPC clients refuse beyond 8 KiB
    (reporting RESOURCE_EXHAUSTED instead of our answer). So what an error
    can carry is bounded here, once, whatever raised it."""
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                kept = [clip_text(item, MAX_DETAIL_STRING_BYTES) for item in value[:MAX_REPEATED_DETAIL_ITEMS]]
                del value[:]
                value.extend(kept)
            else:
                setattr(message, field.name, clip_text(value, MAX_DETAIL_STRING_BYTES))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if _is_map(field):  # string to string (ErrorInfo.metadata)
                entries = dict(list(value.items())[:MAX_REPEATED_DETAIL_ITEMS])
                value.clear()
                for key, item in entries.items():
                    value[clip_text(key, MAX_DETAIL_STRING_BYTES)] = clip_text(item, MAX_DETAIL_STRING_BYTES)
            elif field.is_repeated:
                del value[MAX_REPEATED_DETAIL_ITEMS:]
                for item in value:
                    _bound_strings(item)
            else:
                _bound_strings(value)


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


class Unauthenticated(FramevaultError):
    """The call carries no valid credential. The message says what is wrong
    with it in general terms only: never the token, never a secret."""

    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(FramevaultError):
    """A valid caller lacks the permission the call needs; ErrorInfo names it
    (metadata ``permission``)."""

    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"

    def __init__(self, permission: str, message: str | None = None):
        self.permission = permission
        super().__init__(message or f"permission {permission!r} denied", metadata={"permission": permission})


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
