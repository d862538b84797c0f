"""Frames as MongoDB documents, and back.

One document is one *revision* of a frame: the content a version wrote. The
layout (see STORAGE.md) keeps caller metadata as a native sub-document so
filters can address ``meta.<key>`` directly; keys were validated before they
get here (``framevault.common.metadata_values.key_problem``).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from bson import Int64

from framevault.api.metadata_values import metadata_fields, metadata_to_dict
from framevault.v1 import frame_pb2

GEOMETRY_KINDS = ("polygon", "box", "ellipse", "keypoints", "keypoints_3d", "box_3d")

# Frame fields the server sets; never part of the content hash.
OUTPUT_ONLY_FIELDS = ("num_frames", "dataset_id", "version_id", "saved_in_version", "saved", "etag")


def content_etag(frame: frame_pb2.Frame) -> str:
    """Hash of everything the caller wrote; equal etags mean equal content."""
    content = frame
    if has_output_only_fields(frame):
        content = frame_pb2.Frame()
        content.CopyFrom(frame)
        for name in OUTPUT_ONLY_FIELDS:
            content.ClearField(name)  # type: ignore[arg-type]
    return hashlib.sha256(content.SerializeToString(deterministic=True)).hexdigest()[:32]


def has_output_only_fields(frame: frame_pb2.Frame) -> bool:
    # Whether any output-only field is set. Frames being stored were
    # normalised (validation cleared these), so the copy without them is
    # rarely needed.
    return bool(frame.num_frames or frame.dataset_id or frame.version_id or frame.saved_in_version
                or frame.saved or frame.etag)


def now_ms() -> int:
    """The ``saved`` time of a revision written now (epoch milliseconds)."""
    return time.time_ns() // 1_000_000


# (context_id, timestamp, frame_id): a revision's place in sequential order.
SequentialKey = tuple[str, int, str]


def sequential_key(document: dict[str, Any]) -> SequentialKey:
    return document["context_id"], int(document["timestamp"]), document["frame_id"]


def shuffle_key(frame_id: str) -> int:
    """A stable, uniformly spread non-negative int63 per frame id.

    Random order and sharding are derived from it, so they need no state.
    """
    return int.from_bytes(hashlib.sha256(frame_id.encode()).digest()[:8], "big") >> 1


def frame_to_document(
    frame: frame_pb2.Frame, *, dataset_id: str, version_id: str, saved_ms: int
) -> dict[str, Any]:
    """The revision document of a validated frame, written by ``version_id``."""
    frame_id = frame.id
    sources = frame.sources
    doc: dict[str, Any] = {
        "dataset_id": dataset_id,
        "version_id": version_id,
        "frame_id": frame_id,
        "context_id": frame.context_id,
        "timestamp": Int64(frame.timestamp),
        "sources": [_source_to_doc(s) for s in sources],
        "num_frames": len(sources),
        "saved": Int64(saved_ms),
        "etag": content_etag(frame),
        "shuffle_key": Int64(shuffle_key(frame_id)),
    }
    rois = frame.rois
    if rois:
        doc["rois"] = [_roi_to_doc(r) for r in rois]
    if frame.HasField("meta") and frame.meta.fields:
        doc["meta"] = metadata_to_dict(frame.meta)
    blob = frame.blob
    if blob:
        doc["blob"] = blob
    return doc


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


def _source_to_doc(source: frame_pb2.Source) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if value := source.id:
        doc["id"] = value
    if value := source.uri:
        doc["uri"] = value
    if value := source.content_type:
        doc["content_type"] = value
    if number := source.width:
        doc["width"] = number
    if number := source.height:
        doc["height"] = number
    if number := source.timestamp:
        doc["timestamp"] = Int64(number)
    if source.HasField("meta") and source.meta.fields:
        doc["meta"] = metadata_to_dict(source.meta)
    if source.HasField("preview"):
        doc["preview"] = _add_location({}, source.preview)
    masks = source.masks
    if masks:
        doc["masks"] = [_add_location({"id": m.id} if m.id else {}, m) for m in masks]
    return doc


def _add_location(doc: dict[str, Any], message: frame_pb2.Preview | frame_pb2.Mask) -> dict[str, Any]:
    """Adds the set ``uri``, ``content_type`` and ``timestamp`` of a preview
    or mask to ``doc``; returns it."""
    if value := message.uri:
        doc["uri"] = value
    if value := message.content_type:
        doc["content_type"] = value
    if number := message.timestamp:
        doc["timestamp"] = Int64(number)
    return doc


def _source_fields(doc: dict[str, Any]) -> dict[str, Any]:
    # Stored keys are the proto field names (``_source_to_doc``), but
    # ``meta`` needs its message form.
    if "meta" not in doc:
        return doc
    fields = dict(doc)
    meta = fields.pop("meta")
    if meta:
        fields["meta"] = {"fields": metadata_fields(meta)}
    return fields


def _roi_to_doc(roi: frame_pb2.Roi) -> dict[str, Any]:
    doc: dict[str, Any] = {"labels": roi.labels[:]}
    if value := roi.id:
        doc["id"] = value
    if roi.HasField("confidence"):
        doc["confidence"] = roi.confidence
    kind = roi.WhichOneof("geometry")
    if kind == "polygon":
        doc["polygon"] = [part.xy[:] for part in roi.polygon.parts]
    elif kind == "box":
        b = roi.box
        doc["box"] = [b.x, b.y, b.w, b.h]
    elif kind == "ellipse":
        e = roi.ellipse
        doc["ellipse"] = [e.cx, e.cy, e.rx, e.ry, e.theta]
    elif kind == "keypoints":
        keypoints = roi.keypoints
        doc["keypoints"] = keypoints.xy[:]
        if keypoints.visibility:
            doc["visibility"] = keypoints.visibility[:]
    elif kind == "keypoints_3d":
        doc["keypoints_3d"] = roi.keypoints_3d.xyz[:]
    elif kind == "box_3d":
        b3 = roi.box_3d
        doc["box_3d"] = [b3.x, b3.y, b3.z, b3.size_x, b3.size_y, b3.size_z, b3.qw, b3.qx, b3.qy, b3.qz]
    if roi.sources:
        doc["sources"] = roi.sources[:]
    if roi.HasField("meta") and roi.meta.fields:
        doc["meta"] = metadata_to_dict(roi.meta)
    if roi.HasField("mask"):
        mask = roi.mask
        doc["mask"] = {"id": mask.id, "value": mask.value[:]}
    return doc


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
