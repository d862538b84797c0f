"""Frames across the wire: any frame the SDK accepts to a ``framevault.v1.Frame``
(as a message, or encoded straight from the SDK's objects), a stored frame back to
the SDK class that fits it, and a frame as a JSON-ready dict.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from google.protobuf import descriptor, json_format

from framevault.api.metadata_values import INT64_MAX, INT64_MIN, metadata_to_dict
from framevault.api.wire import FIXED32, FIXED64, LENGTH_DELIMITED, ONE_BYTE_VARINTS, VARINT, varint
from framevault.sdk.frames import Annotation, Frame, FrameGroup, FrameLike, SingleFrame
from framevault.sdk.geometry import BOX3D_FIELDS, GEOMETRY_FIELDS
from framevault.sdk.sources import guess_content_type
from framevault.v1 import frame_pb2, metadata_pb2


def frame_from_proto(proto: frame_pb2.Frame) -> Frame:
    """A :class:`SingleFrame` for a frame with one source, else a :class:`FrameGroup`."""
    if len(proto.sources) <= 1:
        return SingleFrame.from_proto(proto)
    return FrameGroup.from_proto(proto)


def frame_to_proto(frame: FrameLike) -> frame_pb2.Frame:
    """The ``framevault.v1.Frame`` of any frame the SDK accepts (a proto is copied)."""
    if isinstance(frame, frame_pb2.Frame):
        copy = frame_pb2.Frame()
        copy.CopyFrom(frame)
        return copy
    if isinstance(frame, (SingleFrame, FrameGroup)):
        return frame.to_proto()
    raise TypeError(f"expected SingleFrame, FrameGroup or framevault.v1.Frame, not {type(frame).__name__}")


_META_FIELD = "meta"


def frame_to_json_dict(proto: frame_pb2.Frame) -> dict[str, Any]:
    """A JSON-ready dict of a frame: proto field names, metadata as plain objects.

    The proto's JSON mapping would spell metadata as typed wrappers
    (``{"fields": {"city": {"stringValue": ...}}}``); exports are for people and
    tools, so metadata is written as the plain values it stands for.
    """
    out = json_format.MessageToDict(proto, preserving_proto_field_name=True)
    _plain_meta(out, proto)
    for source_dict, source in zip(out.get("sources", []), proto.sources, strict=False):
        _plain_meta(source_dict, source)
    for roi_dict, roi in zip(out.get("rois", []), proto.rois, strict=False):
        _plain_meta(roi_dict, roi)
    return out


def _plain_meta(out: dict[str, Any], message: Any) -> None:
    meta: metadata_pb2.Metadata = getattr(message, _META_FIELD)
    if _META_FIELD in out:
        out[_META_FIELD] = metadata_to_dict(meta)


# --- the wire encoding of the SDK's frames ----------------------------------------
#
# Building a ``framevault.v1.Frame`` from a frame's Python values and serializing it costs more than
# writing the same bytes directly, and a frame sent needs only its bytes. The encoder takes the plain
# values frames are built from (str, int, float, bool, None, bytes, lists, tuples, dicts); for anything
# else it gives up and the frame is converted through the message runtime (``to_proto``), whose
# conversions and errors stay the SDK's.


class _NotPlain(TypeError):
    """A value the encoder does not take as is (a subclass, a numpy scalar, a wrong type)."""


_GIVE_UP = (AttributeError, TypeError, ValueError, OverflowError, struct.error)

_UINT64 = (1 << 64) - 1
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_FLOAT = struct.Struct("<f").pack
_DOUBLE = struct.Struct("<d").pack
_FLOAT_ZERO = bytes(4)
# Packers of ``n`` little-endian floats, by n.
_FLOAT_ARRAYS: dict[int, Callable[..., bytes]] = {}


_WIRE_TYPE = {descriptor.FieldDescriptor.TYPE_FLOAT: FIXED32, descriptor.FieldDescriptor.TYPE_DOUBLE: FIXED64,
              descriptor.FieldDescriptor.TYPE_STRING: LENGTH_DELIMITED,
              descriptor.FieldDescriptor.TYPE_BYTES: LENGTH_DELIMITED,
              descriptor.FieldDescriptor.TYPE_MESSAGE: LENGTH_DELIMITED}


def field_key(message: Any, name: str) -> bytes:
    """The key (field number and wire type) that precedes field ``name`` of ``message`` on the wire:
    packed repeated scalars, strings, bytes and messages are length-delimited, the other scalars
    varints unless float or double."""
    field = message.DESCRIPTOR.fields_by_name[name]
    return varint(field.number << 3 | (LENGTH_DELIMITED if field.is_packed else _WIRE_TYPE.get(field.type, VARINT)))


def _keys(message: Any, *names: str) -> list[bytes]:
    return [field_key(message, name) for name in names]


_FRAME_ID, _FRAME_CONTEXT_ID, _FRAME_TIMESTAMP, _FRAME_SOURCES, _FRAME_ROIS, _FRAME_META, _FRAME_BLOB = _keys(
    frame_pb2.Frame, "id", "context_id", "timestamp", "sources", "rois", "meta", "blob")
(_SOURCE_ID, _SOURCE_URI, _SOURCE_CONTENT_TYPE, _SOURCE_WIDTH, _SOURCE_HEIGHT, _SOURCE_TIMESTAMP, _SOURCE_META,
 _SOURCE_PREVIEW, _SOURCE_MASKS) = _keys(frame_pb2.Source, "id", "uri", "content_type", "width", "height",
                                         "timestamp", "meta", "preview", "masks")
_PREVIEW_URI, _PREVIEW_CONTENT_TYPE = _keys(frame_pb2.Preview, "uri", "content_type")
_MASK_ID, _MASK_URI, _MASK_CONTENT_TYPE = _keys(frame_pb2.Mask, "id", "uri", "content_type")
_ROI_ID, _ROI_LABELS, _ROI_CONFIDENCE, _ROI_SOURCES, _ROI_META = _keys(
    frame_pb2.Roi, "id", "labels", "confidence", "sources", "meta")
(_META_ENTRY,) = _keys(metadata_pb2.Metadata, "fields")
# A map entry is a message of its key (field 1) and its value (field 2).
_ENTRY_KEY, _ENTRY_VALUE = varint(1 << 3 | 2), varint(2 << 3 | 2)
_NULL, _BOOL, _INT, _DOUBLE_VALUE, _STRING, _LIST, _MAP = _keys(
    metadata_pb2.MetadataValue, "null_value", "bool_value", "int_value", "double_value", "string_value",
    "list_value", "map_value")
_NULL_VALUE, _TRUE_VALUE, _FALSE_VALUE = _NULL + b"\x00", _BOOL + b"\x01", _BOOL + b"\x00"
(_LIST_VALUES,) = _keys(metadata_pb2.MetadataList, "values")


def _delimited(key: bytes, payload: bytes) -> bytes:
    size = len(payload)
    return key + (ONE_BYTE_VARINTS[size] if size < 0x80 else varint(size)) + payload


def _text(key: bytes, value: str) -> bytes:
    """A string field, omitted when empty (proto3 scalars at their default are not sent)."""
    if not value:
        return b""
    data = value.encode()
    size = len(data)
    return key + (ONE_BYTE_VARINTS[size] if size < 0x80 else varint(size)) + data


class _Vocabulary(dict[str, bytes]):
    """The encodings of one string field whose values repeat from frame to frame (labels, metadata keys,
    content types, source and mask ids): each value is encoded once, up to a bound."""

    def __init__(self, key: bytes, *, omit_empty: bool = True) -> None:
        super().__init__()
        self.key = key
        self.omit_empty = omit_empty

    def __missing__(self, text: str) -> bytes:
        encoded = b"" if self.omit_empty and not text else _delimited(self.key, text.encode())
        if len(self) < _VOCABULARY_BOUND:
            self[text] = encoded
        return encoded


_VOCABULARY_BOUND = 4096


def _int64(key: bytes, value: Any) -> bytes:
    if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
        raise _NotPlain
    return key + varint(value & _UINT64) if value else b""


def _int32_varint(value: Any) -> bytes:
    """An int32 as a varint (a negative one sign-extended to ten bytes, as the runtime writes it)."""
    if type(value) is not int or not _INT32_MIN <= value <= _INT32_MAX:
        raise _NotPlain
    return varint(value & _UINT64)


def _int32(key: bytes, value: Any) -> bytes:
    return key + _int32_varint(value) if value else b""


def _floats(key: bytes, values: Any) -> bytes:
    """A packed repeated float field (omitted when empty)."""
    count = len(values)
    if not count:
        return b""
    pack = _FLOAT_ARRAYS.get(count)
    if pack is None:
        pack = _FLOAT_ARRAYS[count] = struct.Struct(f"<{count}f").pack
    data = pack(*values)
    return key + (ONE_BYTE_VARINTS[count * 4] if count < 0x20 else varint(count * 4)) + data


def _float_fields(keys: list[bytes], values: Iterable[Any]) -> bytes:
    """Float fields of one message, each omitted when it is (+)0.0 (by its bits, as the runtime compares)."""
    out = b""
    for key, value in zip(keys, values, strict=False):
        packed = _FLOAT(value)
        if packed != _FLOAT_ZERO:
            out += key + packed
    return out


def _metadata(values: Mapping[str, Any]) -> bytes:
    """The fields of a ``Metadata`` message: one map entry per key. Entries of a string value are
    remembered by key and value (they repeat from frame to frame: a city, a weather); the other
    scalars are written here without a call per value."""
    out = b""
    for key, value in values.items():
        kind = type(value)
        if kind is str:
            known = _STRING_ENTRIES.get(key)
            entry = known.get(value) if known is not None else None
            if entry is None:
                entry = _string_entry(key, value)
            out += entry
            continue
        if kind is float:
            entry = _METADATA_KEYS[key] + _DOUBLE_ENTRY_VALUE + _DOUBLE(value)
        elif kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                raise _NotPlain
            encoded = varint(value & _UINT64)
            entry = _METADATA_KEYS[key] + _ENTRY_VALUE + ONE_BYTE_VARINTS[len(encoded) + 1] + _INT + encoded
        elif kind is bool:
            entry = _METADATA_KEYS[key] + (_TRUE_ENTRY_VALUE if value else _FALSE_ENTRY_VALUE)
        else:
            encoded = _metadata_value(value)
            size = len(encoded)
            entry = (_METADATA_KEYS[key] + _ENTRY_VALUE + (ONE_BYTE_VARINTS[size] if size < 0x80 else varint(size))
                     + encoded)
        size = len(entry)
        out += _META_ENTRY + (ONE_BYTE_VARINTS[size] if size < 0x80 else varint(size)) + entry
    return out


def _string_entry(key: str, value: str) -> bytes:
    """The ``fields`` entry of a string value, remembered (up to a bound) for the next frame."""
    entry = _METADATA_KEYS[key] + _delimited(_ENTRY_VALUE, _delimited(_STRING, value.encode()))
    entry = _delimited(_META_ENTRY, entry)
    if _STRING_ENTRIES.count < _VOCABULARY_BOUND:
        _STRING_ENTRIES.count += 1
        _STRING_ENTRIES.setdefault(key, {})[value] = entry
    return entry


class _StringEntries(dict[str, dict[str, bytes]]):
    """Encoded metadata entries of string values by key and value, with how many there are."""

    count = 0


def _metadata_value(value: Any) -> bytes:
    """A ``MetadataValue``: the member of its oneof, sent even at its default (oneof members have presence)."""
    kind = type(value)
    if kind is str:
        return _delimited(_STRING, value.encode())
    if kind is float:
        return _DOUBLE_VALUE + _DOUBLE(value)
    if kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise _NotPlain
        return _INT + varint(value & _UINT64)
    if kind is bool:
        return _TRUE_VALUE if value else _FALSE_VALUE
    if value is None:
        return _NULL_VALUE
    if kind is list or kind is tuple:
        return _delimited(_LIST, b"".join([_delimited(_LIST_VALUES, _metadata_value(v)) for v in value]))
    if kind is dict:
        return _delimited(_MAP, _metadata(value))
    raise _NotPlain


_LABELS = _Vocabulary(_ROI_LABELS, omit_empty=False)
_METADATA_KEYS = _Vocabulary(_ENTRY_KEY, omit_empty=False)
_STRING_ENTRIES = _StringEntries()
# A map entry's value field of a double, true and false (its length and its message).
_DOUBLE_ENTRY_VALUE = _ENTRY_VALUE + ONE_BYTE_VARINTS[9] + _DOUBLE_VALUE
_TRUE_ENTRY_VALUE = _ENTRY_VALUE + ONE_BYTE_VARINTS[2] + _TRUE_VALUE
_FALSE_ENTRY_VALUE = _ENTRY_VALUE + ONE_BYTE_VARINTS[2] + _FALSE_VALUE
_SOURCE_IDS, _SOURCE_CONTENT_TYPES = _Vocabulary(_SOURCE_ID), _Vocabulary(_SOURCE_CONTENT_TYPE)
_PREVIEW_CONTENT_TYPES = _Vocabulary(_PREVIEW_CONTENT_TYPE)
_MASK_IDS, _MASK_CONTENT_TYPES = _Vocabulary(_MASK_ID), _Vocabulary(_MASK_CONTENT_TYPE)

(_POLYGON_PARTS,) = _keys(frame_pb2.Polygon2D, "parts")
(_PART_XY,) = _keys(frame_pb2.PolygonPart, "xy")
_BOX_KEYS = _keys(frame_pb2.Box2D, "x", "y", "w", "h")
_ELLIPSE_KEYS = _keys(frame_pb2.Ellipse2D, "cx", "cy", "rx", "ry", "theta")
_KEYPOINTS_XY, _KEYPOINTS_VISIBILITY = _keys(frame_pb2.Keypoints2D, "xy", "visibility")
(_KEYPOINTS_3D_XYZ,) = _keys(frame_pb2.Keypoints3D, "xyz")
_BOX3D_KEYS = _keys(frame_pb2.Box3D, *BOX3D_FIELDS)


def _polygon(value: Any) -> bytes:
    parts = b""
    for part in value:
        count = len(part)
        packer = _POLYGON_PARTS_OF.get(count)
        if packer is None:
            packer = _polygon_part_packer(count)
        prefix, pack = packer
        parts += prefix + pack(*part)
    return parts


def _polygon_part_packer(count: int) -> tuple[bytes, Callable[..., bytes]]:
    """For parts of ``count`` coordinates: the key and length prefixes of a ``parts`` entry and its
    packed ``xy`` field, and the packer of its coordinates."""
    size = count * 4
    message = _PART_XY + varint(size) if count else b""
    packer = (_POLYGON_PARTS + varint(len(message) + size) + message, struct.Struct(f"<{count}f").pack)
    if len(_POLYGON_PARTS_OF) < _VOCABULARY_BOUND:
        _POLYGON_PARTS_OF[count] = packer
    return packer


# Polygon part prefixes and coordinate packers by coordinate count (_polygon_part_packer).
_POLYGON_PARTS_OF: dict[int, tuple[bytes, Callable[..., bytes]]] = {}


def _box(value: Any) -> bytes:
    x, y, w, h = value
    return _float_fields(_BOX_KEYS, (x, y, w, h))


def _ellipse(value: Any) -> bytes:
    cx, cy, rx, ry, theta = value
    return _float_fields(_ELLIPSE_KEYS, (cx, cy, rx, ry, theta))


def _keypoints(value: Any) -> bytes:
    encoded = _floats(_KEYPOINTS_XY, [c for point in value for c in point[:2]])
    if value and len(value[0]) == 3:
        encoded += _delimited(_KEYPOINTS_VISIBILITY, b"".join([_int32_varint(int(point[2])) for point in value]))
    return encoded


def _keypoints_3d(value: Any) -> bytes:
    return _floats(_KEYPOINTS_3D_XYZ, [c for point in value for c in point])


def _box3d(value: Any) -> bytes:
    return _float_fields(_BOX3D_KEYS, [v for _, v in zip(BOX3D_FIELDS, value, strict=True)])


# Each annotation geometry attribute (geometry.GEOMETRY_FIELDS): the key of its Roi field and the
# encoder of its message's fields, as geometry.geometry_fields builds them.
_GEOMETRY: dict[str, tuple[bytes, Callable[[Any], bytes]]] = {
    "box2d_xywh": (field_key(frame_pb2.Roi, "box"), _box),
    "poly2d_xy": (field_key(frame_pb2.Roi, "polygon"), _polygon),
    "ellipse2d_xyrrt": (field_key(frame_pb2.Roi, "ellipse"), _ellipse),
    "keypoints": (field_key(frame_pb2.Roi, "keypoints"), _keypoints),
    "keypoints_3d": (field_key(frame_pb2.Roi, "keypoints_3d"), _keypoints_3d),
    "box3d": (field_key(frame_pb2.Roi, "box_3d"), _box3d),
}
_GEOMETRY_IN_ORDER = [(kind, *_GEOMETRY[kind]) for kind in GEOMETRY_FIELDS]


def _roi(annotation: Annotation, member: str | None = None) -> bytes:
    """An annotation as a frame's ``rois`` entry, as ``Annotation._proto_fields`` builds it; ``member``: the
    source of a frame group's member it was added on (the ROI names it when it names no sources itself)."""
    attributes = annotation.__dict__
    if "_roi" in attributes:
        attributes = annotation._attributes()
    roi_id = attributes["id"]
    out = _text(_ROI_ID, roi_id) if roi_id else b""
    labels = _LABELS
    for label in attributes["labels"]:
        out += labels[label]
    confidence = attributes["confidence"]
    if confidence is not None:
        out += _ROI_CONFIDENCE + _FLOAT(confidence)
    for kind, key, encode in _GEOMETRY_IN_ORDER:
        value = attributes[kind]
        if value is not None:
            encoded = encode(value)
            size = len(encoded)
            out += key + (ONE_BYTE_VARINTS[size] if size < 0x80 else varint(size)) + encoded
            break
    sources = attributes["sources"]
    if not sources and member is not None:
        sources = (member,)
    for source in sources:
        out += _delimited(_ROI_SOURCES, source.encode())
    metadata = attributes["metadata"]
    if metadata:
        out += _delimited(_ROI_META, _metadata(metadata))
    size = len(out)
    return _FRAME_ROIS + (ONE_BYTE_VARINTS[size] if size < 0x80 else varint(size)) + out


def _source(frame: SingleFrame, source_id: str, metadata: Mapping[str, Any]) -> bytes:
    """A frame's ``sources`` entry, as ``SingleFrame._source_fields`` builds it."""
    uri = frame.source
    content_type = frame.content_type
    timestamp = frame.source_timestamp
    out = (_SOURCE_IDS[source_id] + _text(_SOURCE_URI, uri)
           + _SOURCE_CONTENT_TYPES[content_type if content_type is not None else guess_content_type(uri)]
           + _int32(_SOURCE_WIDTH, frame.width or 0) + _int32(_SOURCE_HEIGHT, frame.height or 0)
           + _int64(_SOURCE_TIMESTAMP, timestamp if timestamp is not None else (frame.timestamp or 0)))
    if metadata:
        out += _delimited(_SOURCE_META, _metadata(metadata))
    preview_uri = frame.preview_uri
    if preview_uri:
        content_type = frame.preview_content_type
        out += _delimited(_SOURCE_PREVIEW, _text(_PREVIEW_URI, preview_uri) + _PREVIEW_CONTENT_TYPES[
            content_type if content_type is not None else guess_content_type(preview_uri)])
    masks = frame.masks
    if masks:
        types = frame.mask_content_types
        for mask_id, mask_uri in masks.items():
            content_type = types.get(mask_id)
            out += _delimited(_SOURCE_MASKS, _MASK_IDS[mask_id] + _text(_MASK_URI, mask_uri) + _MASK_CONTENT_TYPES[
                content_type if content_type is not None else guess_content_type(mask_uri)])
    return _delimited(_FRAME_SOURCES, out)


def _frame_head(frame: SingleFrame | FrameGroup) -> bytes:
    """The id, context id and timestamp of a frame."""
    frame_id = frame.id
    context_id = frame.context_id
    timestamp = frame.timestamp
    return ((_text(_FRAME_ID, frame_id) if frame_id else b"")
            + (_text(_FRAME_CONTEXT_ID, context_id) if context_id else b"")
            + (_int64(_FRAME_TIMESTAMP, timestamp) if timestamp else b""))


def _frame_tail(frame: SingleFrame | FrameGroup) -> bytes:
    """The metadata and blob of a frame."""
    out = _delimited(_FRAME_META, _metadata(frame.metadata)) if frame.metadata else b""
    blob = frame.blob
    if blob:
        if type(blob) is not bytes:
            raise _NotPlain
        out += _delimited(_FRAME_BLOB, blob)
    return out


def encode_frame(frame: FrameLike) -> bytes | None:
    """The ``framevault.v1.Frame`` of a ``SingleFrame`` or ``FrameGroup`` (what ``frame.to_proto()``
    gives) in its wire encoding. None for other frames (protos, subclasses with their own ``to_proto``)
    and when a value is not one the encoder takes: ``frame_to_proto`` converts that frame, or says
    what is wrong with it."""
    try:
        if type(frame) is SingleFrame:
            out = _frame_head(frame) + _source(frame, frame.source_id, frame.source_metadata)
            for annotation in frame.annotations:
                out += _roi(annotation)
            return out + _frame_tail(frame)
        if type(frame) is FrameGroup:
            members = frame._members.items()
            return b"".join([
                _frame_head(frame),
                *[_source(member, key, {**member.source_metadata, **member.metadata}) for key, member in members],
                *[_roi(annotation) for annotation in frame.annotations],
                *[_roi(annotation, key) for key, member in members for annotation in member.annotations],
                _frame_tail(frame)])
    except _GIVE_UP:
        pass
    return None
