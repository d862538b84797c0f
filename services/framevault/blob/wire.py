"""ReadBlob responses encoded by hand.

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

from framevault.v1 import blob_pb2

_LENGTH_DELIMITED = 2
_VARINT = 0
_DATA_TAG = bytes([blob_pb2.ReadBlobResponse.DATA_FIELD_NUMBER << 3 | _LENGTH_DELIMITED])
_OFFSET_TAG = bytes([blob_pb2.ReadBlobResponse.OFFSET_FIELD_NUMBER << 3 | _VARINT])


def varint(value: int) -> bytes:
    """The base-128 varint of a non-negative ``value``."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_response(offset: int, data: bytes) -> bytes:
    """The encoded ``ReadBlobResponse(data=data, offset=offset)``, as protobuf writes it but for the
    order of the fields (any order decodes the same); proto3 leaves out a zero offset and empty data."""
    head = _OFFSET_TAG + varint(offset) if offset else b""
    if not data:
        return head
    return b"".join((head, _DATA_TAG, varint(len(data)), data))
