"""ReadBlob responses encoded, and WriteBlob requests decoded, by hand.

The protobuf runtime copies a ``bytes`` field into the message when it is set
and again when the message is serialized, through freshly allocated arena
memory: about 2 ms of CPU per MiB on the development machine, most of what a
ReadBlob stream cost the service. A response is only an int64 and the chunk,
so it is written here as the wire format defines it: the ``offset`` field,
then the ``data`` field's tag and length, then the chunk (one copy). The
error interceptor sends ``bytes`` responses as they are
(``common.interceptors``); every client decodes them as the ``ReadBlobResponse``
of ``blob.proto``.
"""

from __future__ import annotations

from dataclasses import dataclass

from framevault.api.wire import LENGTH_DELIMITED, VARINT, varint
from framevault.common.request_decoding import UndecodableRequest, tolerant
from framevault.v1 import blob_pb2

_DATA_TAG = bytes([blob_pb2.ReadBlobResponse.DATA_FIELD_NUMBER << 3 | LENGTH_DELIMITED])
_OFFSET_TAG = bytes([blob_pb2.ReadBlobResponse.OFFSET_FIELD_NUMBER << 3 | VARINT])


def read_response(offset: int, data: bytes) -> bytes:
    """The encoded ``ReadBlobResponse(data=data, offset=offset)``, as protobuf writes it but for the
    order of the fields (any order decodes the same); proto3 leaves out a zero offset and empty data."""
    head = _OFFSET_TAG + varint(offset) if offset else b""
    if not data:
        return head
    return b"".join((head, _DATA_TAG, varint(len(data)), data))


@dataclass(frozen=True)
class WriteRequest:
    """A ``WriteBlobRequest`` decoded by ``write_request``: the same fields, ``data`` a view into the
    received message instead of a copy."""

    resource_name: str
    write_offset: int
    data: memoryview
    finish_write: bool


_FIELDS = blob_pb2.WriteBlobRequest.DESCRIPTOR.fields_by_name
_WRITE_LAYOUT = {
    _FIELDS["resource_name"].number: LENGTH_DELIMITED,
    _FIELDS["write_offset"].number: VARINT,
    _FIELDS["data"].number: LENGTH_DELIMITED,
    _FIELDS["finish_write"].number: VARINT,
}
_INT64_RANGE = 1 << 64
# A varint of an int64 takes at most ten bytes.
_MAX_VARINT_BYTES = 10
_decode_with_protobuf = tolerant(blob_pb2.WriteBlobRequest.FromString)


def write_request(message: bytes) -> WriteRequest | blob_pb2.WriteBlobRequest | UndecodableRequest:
    """Decodes a ``WriteBlobRequest`` without copying its data: the protobuf runtime copies the chunk
    into the message and again when ``data`` is read. Only the layout every client sends (each field
    at most once, with its own wire type) is decoded here; anything else (unknown or repeated fields,
    broken framing, a name that is not UTF-8) goes to protobuf, which decides as it always did, so
    both ways give the same fields for the same bytes."""
    fields: dict[int, int | memoryview] = {}
    view = memoryview(message)
    position, end = 0, len(message)
    while position < end:
        tag, position = _read_varint(message, position)
        number, wire_type = tag >> 3, tag & 7
        if position < 0 or number in fields or _WRITE_LAYOUT.get(number) != wire_type:
            return _decode_with_protobuf(message)
        value, position = _read_varint(message, position)
        if position < 0:
            return _decode_with_protobuf(message)
        if wire_type == LENGTH_DELIMITED:
            if value > end - position:
                return _decode_with_protobuf(message)
            fields[number] = view[position:position + value]
            position += value
        else:
            fields[number] = value
    try:
        name = bytes(fields.get(_FIELDS["resource_name"].number, b"")).decode()
    except UnicodeDecodeError:
        return _decode_with_protobuf(message)
    offset = int(fields.get(_FIELDS["write_offset"].number, 0))
    data = fields.get(_FIELDS["data"].number, view[:0])
    assert isinstance(data, memoryview)
    return WriteRequest(resource_name=name, write_offset=offset - _INT64_RANGE if offset >= 1 << 63 else offset,
                        data=data, finish_write=bool(fields.get(_FIELDS["finish_write"].number, 0)))


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    """The varint at ``position`` and the position after it; position -1 when it is truncated or
    does not fit 64 bits."""
    value = shift = 0
    for index in range(position, min(len(data), position + _MAX_VARINT_BYTES)):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (value, index + 1) if value < _INT64_RANGE else (0, -1)
        shift += 7
    return 0, -1
