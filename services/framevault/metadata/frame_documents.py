"""Frames as MongoDB documents, and back.

One document is one *revision* of a frame: the content a version wrote. The
layout (see STORAGE.md) keeps caller metadata as a native sub-document so
filters can address ``meta.<key>`` directly; keys were validated before they
get here. Documents are written by the frame codec (``framevault_codec``,
services/codec), which validates a frame and encodes its document in one
pass (``frames.validation``); this module reads them back.
"""

from __future__ import annotations

import time
from typing import Any

import bson
import framevault_codec
from bson.raw_bson import RawBSONDocument

from framevault.api.metadata_values import metadata_fields
from framevault.v1 import frame_pb2

GEOMETRY_KINDS = ("polygon", "box", "ellipse", "keypoints", "keypoints_3d", "box_3d")

# A stable, uniformly spread non-negative int63 per frame id (the first 63
# bits of its SHA-256): random order and sharding are derived from it, so
# they need no state.
shuffle_key = framevault_codec.shuffle_key


class EncodedRevision(RawBSONDocument):
    """A revision document as the frame codec encoded it, inserted as its
    bytes. The fields the write rules read are known without decoding it."""

    __slots__ = ("_known",)

    def __init__(self, data: bytes, *, frame_id: str, etag: str, dataset_id: str, version_id: str):
        super().__init__(data)
        self._known = {"frame_id": frame_id, "etag": etag, "dataset_id": dataset_id, "version_id": version_id}

    def __getitem__(self, key: str) -> Any:
        known = self._known.get(key)
        return known if known is not None else super().__getitem__(key)

    def written_for(self, dataset_id: str, version_id: str) -> bool:
        """Whether the document is already that of ``version_id`` of ``dataset_id``."""
        return self._known["dataset_id"] == dataset_id and self._known["version_id"] == version_id

    def as_dict(self) -> dict[str, Any]:
        return bson.decode(self.raw)


def now_ms() -> int:
    """The ``saved`` time of a revision written now (epoch milliseconds)."""
    return time.time_ns() // 1_000_000


# (context_id, timestamp, frame_id): a revision's place in sequential order.
SequentialKey = tuple[str, int, str]


def sequential_key(document: dict[str, Any]) -> SequentialKey:
    return document["context_id"], int(document["timestamp"]), document["frame_id"]


def document_to_frame(doc: dict[str, Any], *, version_id: str) -> frame_pb2.Frame:
    """The frame as read in ``version_id`` (which may have inherited it)."""
    return frame_pb2.Frame(**frame_fields(doc, version_id=version_id))


def frame_fields(doc: dict[str, Any], *, version_id: str) -> dict[str, Any]:
    """``document_to_frame`` as keyword arguments of a ``Frame`` constructor,
    for building the frame in place (``frames.add(**fields)``).

    The frame is described by nested dicts and built by one constructor call:
    much cheaper than filling messages field by field and copying them into
    their parents.
    """
    fields: dict[str, Any] = {
        "id": doc.get("frame_id", ""),
        "context_id": doc.get("context_id", ""),
        "timestamp": doc.get("timestamp", 0),
        "num_frames": doc.get("num_frames", 0),
        "dataset_id": doc.get("dataset_id", ""),
        "version_id": version_id,
        "saved_in_version": doc.get("version_id", ""),
        "saved": doc.get("saved", 0),
        "etag": doc.get("etag", ""),
        "blob": doc.get("blob", b""),
    }
    sources = doc.get("sources")
    if sources:
        fields["sources"] = [_source_fields(s) for s in sources]
    rois = doc.get("rois")
    if rois:
        fields["rois"] = [_roi_fields(r) for r in rois]
    meta = doc.get("meta")
    if meta:
        fields["meta"] = {"fields": metadata_fields(meta)}
    return fields


def _source_fields(doc: dict[str, Any]) -> dict[str, Any]:
    # Stored keys are the proto field names (the codec writes them so), but
    # ``meta`` needs its message form.
    if "meta" not in doc:
        return doc
    fields = dict(doc)
    meta = fields.pop("meta")
    if meta:
        fields["meta"] = {"fields": metadata_fields(meta)}
    return fields


def _roi_fields(doc: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"id": doc.get("id", ""), "labels": doc.get("labels", ()),
                              "sources": doc.get("sources", ())}
    if "confidence" in doc:
        fields["confidence"] = doc["confidence"]
    if "polygon" in doc:
        fields["polygon"] = {"parts": [{"xy": part} for part in doc["polygon"]]}
    elif "box" in doc:
        x, y, w, h = doc["box"]
        fields["box"] = {"x": x, "y": y, "w": w, "h": h}
    elif "ellipse" in doc:
        cx, cy, rx, ry, theta = doc["ellipse"]
        fields["ellipse"] = {"cx": cx, "cy": cy, "rx": rx, "ry": ry, "theta": theta}
    elif "keypoints" in doc:
        fields["keypoints"] = {"xy": doc["keypoints"], "visibility": doc.get("visibility", ())}
    elif "keypoints_3d" in doc:
        fields["keypoints_3d"] = {"xyz": doc["keypoints_3d"]}
    elif "box_3d" in doc:
        x, y, z, sx, sy, sz, qw, qx, qy, qz = doc["box_3d"]
        fields["box_3d"] = {"x": x, "y": y, "z": z, "size_x": sx, "size_y": sy, "size_z": sz,
                            "qw": qw, "qx": qx, "qy": qy, "qz": qz}
    meta = doc.get("meta")
    if meta:
        fields["meta"] = {"fields": metadata_fields(meta)}
    if "mask" in doc:
        fields["mask"] = {"id": doc["mask"]["id"], "value": doc["mask"]["value"]}
    return fields
