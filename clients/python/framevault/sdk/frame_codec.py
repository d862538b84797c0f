"""Frames across the wire: any frame the SDK accepts to a ``framevault.v1.Frame``,
a stored frame back to the SDK class that fits it, and a frame as a JSON-ready dict.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from framevault.api.metadata_values import metadata_to_dict
from framevault.sdk.frames import Frame, FrameGroup, FrameLike, SingleFrame
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
