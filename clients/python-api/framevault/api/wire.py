"""The protobuf wire format's pieces that framevault writes by hand where building a message costs
more than the bytes it carries: the SDK's frame encoder, the blob service's ReadBlob responses.
Both are checked against the protobuf runtime's encoding in tests."""

from __future__ import annotations

# Wire types (the low three bits of a field's key).
VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
FIXED32 = 5

# The varints of 0..127: one byte each, the most common lengths and keys.
ONE_BYTE_VARINTS = [bytes((n,)) for n in range(0x80)]


def varint(value: int) -> bytes:
    """``value`` (>= 0) as a protobuf base-128 varint."""
    # Values of one or two bytes come without the loop.
    if value < 0x80:
        return ONE_BYTE_VARINTS[value]
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
