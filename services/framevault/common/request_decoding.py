"""Request messages whose bytes do not decode.

gRPC decodes every request message before a handler sees it. Bytes that do
not decode (malformed, invalid UTF-8 in a string, or nested deeper than the
protobuf runtime's 100-level limit) would otherwise fail the call inside the
gRPC library: UNKNOWN with a Python class name on unary calls, the whole
stream INTERNAL on client streams. ``tolerant`` wraps a request deserializer
so such bytes become an ``UndecodableRequest`` instead; the error interceptor
answers it with INVALID_ARGUMENT naming the top-level field that does not
decode, and stream handlers that answer per item (``accepts_undecodable``)
take it apart with ``split_repeated``, so only the undecodable items fail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from framevault.common.errors import InvalidArgument

# Message levels the protobuf runtimes decode (upb, C++, Java: 100).
MAX_DECODE_LEVELS = 100
# The field named when the request's own framing is broken.
REQUEST_FIELD = "request"

_LENGTH_DELIMITED, _VARINT, _FIXED64, _FIXED32 = 2, 0, 1, 5
_PACKED_FIXED_SIZES = {
    FieldDescriptor.TYPE_DOUBLE: 8, FieldDescriptor.TYPE_FIXED64: 8, FieldDescriptor.TYPE_SFIXED64: 8,
    FieldDescriptor.TYPE_FLOAT: 4, FieldDescriptor.TYPE_FIXED32: 4, FieldDescriptor.TYPE_SFIXED32: 4,
}
_PACKED_VARINT_TYPES = frozenset({
    FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_BOOL, FieldDescriptor.TYPE_ENUM,
})

MessageT = TypeVar("MessageT", bound=Message)


@dataclass(frozen=True)
class UndecodableRequest:
    """Stands in for a request message whose bytes do not decode."""

    message_type: type[Message]
    data: bytes

    def error(self, field: str | None = None) -> InvalidArgument:
        """INVALID_ARGUMENT on ``field`` (default: the top-level field that
        does not decode), saying why."""
        located, problem = locate_problem(self.message_type.DESCRIPTOR, self.data)
        return InvalidArgument.field(field or located,
                                     f"does not decode as {self.message_type.DESCRIPTOR.full_name}: {problem}")


def tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserializer`` answering undecodable bytes with an UndecodableRequest."""
    message_type = getattr(deserializer, "__self__", None)
    if not (isinstance(message_type, type) and issubclass(message_type, Message)):
        return deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # noqa: BLE001 - whatever the runtime raises, the bytes do not decode
            return UndecodableRequest(message_type, data)

    return deserialize


def accepts_undecodable(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a client-streaming handler that receives UndecodableRequest items
    (and answers them itself) instead of failing the stream on the first."""
    handler.accepts_undecodable = True  # type: ignore[attr-defined]
    return handler


def handler_accepts_undecodable(handler: Callable[..., Any]) -> bool:
    return bool(getattr(handler, "accepts_undecodable", False))


def split_repeated(request: MessageT | UndecodableRequest, field_name: str
                   ) -> tuple[MessageT, Sequence[Any], int]:
    """``request`` without its repeated message field ``field_name``, that
    field's elements (messages or UndecodableRequest), and the request's
    encoded size.

    Of an UndecodableRequest, each element is decoded on its own (an
    UndecodableRequest when it does not decode); when even the rest of the
    request does not decode, the request is an empty message whose one
    element is the whole undecodable request.
    """
    if isinstance(request, Message):
        return request, getattr(request, field_name), request.ByteSize()
    message_type = request.message_type
    field: Any = message_type.DESCRIPTOR.fields_by_name[field_name]
    decode_element = tolerant(message_factory.GetMessageClass(field.message_type).FromString)
    rest = bytearray()
    elements: list[Any] = []
    try:
        for number, wire_type, start, end, payload in _fields(request.data):
            if number == field.number and wire_type == _LENGTH_DELIMITED:
                elements.append(decode_element(request.data[payload:end]))
            else:
                rest += request.data[start:end]
    except _Malformed:
        return message_type(), [request], len(request.data)  # type: ignore[return-value]
    message = tolerant(message_type.FromString)(bytes(rest))
    if isinstance(message, UndecodableRequest):
        return message_type(), [request], len(request.data)  # type: ignore[return-value]
    return message, elements, len(request.data)


# --- locating the problem -----------------------------------------------------


class _Malformed(ValueError):
    """The wire framing is broken at ``position``."""


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise _Malformed("truncated or overlong varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _fields(data: bytes) -> Any:
    """(number, wire type, start, end, payload start) of each field of one
    message level; raises _Malformed where the framing breaks."""
    position = 0
    while position < len(data):
        start = position
        tag, position = _varint(data, position)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise _Malformed("field number 0")
        payload = position
        if wire_type == _VARINT:
            _, position = _varint(data, position)
        elif wire_type == _FIXED64:
            position += 8
        elif wire_type == _FIXED32:
            position += 4
        elif wire_type == _LENGTH_DELIMITED:
            length, payload = _varint(data, position)
            position = payload + length
        else:
            # Groups (3, 4) are not part of proto3; 6 and 7 do not exist.
            raise _Malformed(f"wire type {wire_type}")
        if position > len(data):
            raise _Malformed("field runs past the end of the message")
        yield number, wire_type, start, position, payload


def locate_problem(descriptor: Any, data: bytes) -> tuple[str, str]:
    """The top-level field of a message of type ``descriptor`` whose bytes do
    not decode (``name`` or ``name[i]``), and why. REQUEST_FIELD when the
    message's own framing is broken or nothing more precise is found."""
    counts: dict[int, int] = {}
    try:
        for number, wire_type, _, end, payload in _fields(data):
            field = descriptor.fields_by_number.get(number)
            index = counts.get(number, 0)
            counts[number] = index + 1
            if field is None:
                continue
            problem = _value_problem(field, wire_type, data[payload:end], 2)
            if problem:
                return (f"{field.name}[{index}]" if field.is_repeated else field.name), problem
    except _Malformed as exc:
        return REQUEST_FIELD, f"malformed protobuf encoding ({exc})"
    return REQUEST_FIELD, "malformed protobuf encoding"


def _value_problem(field: Any, wire_type: int, payload: bytes, level: int) -> str | None:
    """Why one field value (at message nesting ``level`` if it is a message)
    does not decode, or None."""
    if wire_type != _LENGTH_DELIMITED:
        return None
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if level > MAX_DECODE_LEVELS:
            return f"nested deeper than the {MAX_DECODE_LEVELS} message levels protobuf decoders accept"
        return _message_problem(field.message_type, payload, level)
    if field.type == FieldDescriptor.TYPE_STRING:
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            return "a string is not valid UTF-8"
        return None
    if field.type in _PACKED_FIXED_SIZES:
        return None if len(payload) % _PACKED_FIXED_SIZES[field.type] == 0 else "malformed packed numbers"
    if field.type in _PACKED_VARINT_TYPES:
        position = 0
        try:
            while position < len(payload):
                _, position = _varint(payload, position)
        except _Malformed:
            return "malformed packed numbers"
    return None


def _message_problem(descriptor: Any, data: bytes, level: int) -> str | None:
    try:
        for number, wire_type, _, end, payload in _fields(data):
            field = descriptor.fields_by_number.get(number)
            if field is not None:
                problem = _value_problem(field, wire_type, data[payload:end], level + 1)
                if problem:
                    return problem
    except _Malformed as exc:
        return f"malformed protobuf encoding ({exc})"
    return None
