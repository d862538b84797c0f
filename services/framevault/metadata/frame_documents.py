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

from framevault.common.metadata_values import dict_to_metadata, metadata_to_dict
from framevault.v1 import frame_pb2

GEOMETRY_KINDS = ("polygon", "box", "ellipse", "keypoints", "keypoints_3d", "box_3d")

# Frame fields the server sets; never part of the content hash.
OUTPUT_ONLY_FIELDS = ("num_frames", "dataset_id", "version_id", "saved_in_version", "saved", "etag")


def content_etag(frame: frame_pb2.Frame) -> str:
    """Hash of everything the caller wrote; equal etags mean equal content."""
    content = frame_pb2.Frame()
    content.CopyFrom(frame)
    for name in OUTPUT_ONLY_FIELDS:
        content.ClearField(name)  # type: ignore[arg-type]
    return hashlib.sha256(content.SerializeToString(deterministic=True)).hexdigest()[:32]


def now_ms() -> int:
    """The ``saved`` time of a revision written now (epoch milliseconds)."""
    return time.time_ns() // 1_000_000


def shuffle_key(frame_id: str) -> int:
    """A stable, uniformly spread non-negative int63 per frame id.

    Random order and sharding are derived from it, so they need no state.
    """
    return int.from_bytes(hashlib.sha256(frame_id.encode()).digest()[:8], "big") >> 1


def frame_to_document(
    frame: frame_pb2.Frame, *, dataset_id: str, version_id: str, saved_ms: int
) -> dict[str, Any]:
    """The revision document of a validated frame, written by ``version_id``."""
    doc: dict[str, Any] = {
        "dataset_id": dataset_id,
        "version_id": version_id,
        "frame_id": frame.id,
        "context_id": frame.context_id,
        "timestamp": Int64(frame.timestamp),
        "sources": [_source_to_doc(s) for s in frame.sources],
        "num_frames": len(frame.sources),
        "saved": Int64(saved_ms),
        "etag": content_etag(frame),
        "shuffle_key": Int64(shuffle_key(frame.id)),
    }
    if frame.rois:
        doc["rois"] = [_roi_to_doc(r) for r in frame.rois]
    if frame.meta.fields:
        doc["meta"] = metadata_to_dict(frame.meta)
    if frame.blob:
        doc["blob"] = bytes(frame.blob)
    return doc


def document_to_frame(doc: dict[str, Any], *, version_id: str) -> frame_pb2.Frame:
    """The frame as read in ``version_id`` (which may have inherited it)."""
    frame = frame_pb2.Frame(
        id=doc.get("frame_id", ""),
        context_id=doc.get("context_id", ""),
        timestamp=int(doc.get("timestamp", 0)),
        num_frames=int(doc.get("num_frames", 0)),
        dataset_id=doc.get("dataset_id", ""),
        version_id=version_id,
        saved_in_version=doc.get("version_id", ""),
        saved=int(doc.get("saved", 0)),
        etag=doc.get("etag", ""),
        blob=doc.get("blob", b""),
    )
    frame.sources.extend(_doc_to_source(s) for s in doc.get("sources", ()))
    frame.rois.extend(_doc_to_roi(r) for r in doc.get("rois", ()))
    if doc.get("meta"):
        frame.meta.CopyFrom(dict_to_metadata(doc["meta"]))
    return frame


def _uri_doc(message: Any, *names: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(message, name)
        if value:
            out[name] = Int64(value) if name == "timestamp" else value
    return out


def _source_to_doc(source: frame_pb2.Source) -> dict[str, Any]:
    doc = _uri_doc(source, "id", "uri", "content_type", "width", "height", "timestamp")
    if source.meta.fields:
        doc["meta"] = metadata_to_dict(source.meta)
    if source.HasField("preview"):
        doc["preview"] = _uri_doc(source.preview, "uri", "content_type", "timestamp")
    if source.masks:
        doc["masks"] = [_uri_doc(m, "id", "uri", "content_type", "timestamp") for m in source.masks]
    return doc


def _doc_to_source(doc: dict[str, Any]) -> frame_pb2.Source:
    source = frame_pb2.Source(
        id=doc.get("id", ""),
        uri=doc.get("uri", ""),
        content_type=doc.get("content_type", ""),
        width=doc.get("width", 0),
        height=doc.get("height", 0),
        timestamp=int(doc.get("timestamp", 0)),
    )
    if doc.get("meta"):
        source.meta.CopyFrom(dict_to_metadata(doc["meta"]))
    if "preview" in doc:
        source.preview.CopyFrom(frame_pb2.Preview(**_plain(doc["preview"])))
    source.masks.extend(frame_pb2.Mask(**_plain(m)) for m in doc.get("masks", ()))
    return source


def _plain(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: int(v) if isinstance(v, Int64) else v for k, v in doc.items()}


def _roi_to_doc(roi: frame_pb2.Roi) -> dict[str, Any]:
    doc: dict[str, Any] = {"labels": list(roi.labels)}
    if roi.id:
        doc["id"] = roi.id
    if roi.HasField("confidence"):
        doc["confidence"] = roi.confidence
    kind = roi.WhichOneof("geometry")
    if kind == "polygon":
        doc["polygon"] = [list(part.xy) for part in roi.polygon.parts]
    elif kind == "box":
        b = roi.box
        doc["box"] = [b.x, b.y, b.w, b.h]
    elif kind == "ellipse":
        e = roi.ellipse
        doc["ellipse"] = [e.cx, e.cy, e.rx, e.ry, e.theta]
    elif kind == "keypoints":
        doc["keypoints"] = list(roi.keypoints.xy)
        if roi.keypoints.visibility:
            doc["visibility"] = list(roi.keypoints.visibility)
    elif kind == "keypoints_3d":
        doc["keypoints_3d"] = list(roi.keypoints_3d.xyz)
    elif kind == "box_3d":
        b3 = roi.box_3d
        doc["box_3d"] = [b3.x, b3.y, b3.z, b3.size_x, b3.size_y, b3.size_z, b3.qw, b3.qx, b3.qy, b3.qz]
    if roi.sources:
        doc["sources"] = list(roi.sources)
    if roi.meta.fields:
        doc["meta"] = metadata_to_dict(roi.meta)
    if roi.HasField("mask"):
        doc["mask"] = {"id": roi.mask.id, "value": list(roi.mask.value)}
    return doc


def _doc_to_roi(doc: dict[str, Any]) -> frame_pb2.Roi:
    roi = frame_pb2.Roi(id=doc.get("id", ""), labels=doc.get("labels", ()), sources=doc.get("sources", ()))
    if "confidence" in doc:
        roi.confidence = doc["confidence"]
    if "polygon" in doc:
        roi.polygon.parts.extend(frame_pb2.PolygonPart(xy=part) for part in doc["polygon"])
    elif "box" in doc:
        x, y, w, h = doc["box"]
        roi.box.CopyFrom(frame_pb2.Box2D(x=x, y=y, w=w, h=h))
    elif "ellipse" in doc:
        cx, cy, rx, ry, theta = doc["ellipse"]
        roi.ellipse.CopyFrom(frame_pb2.Ellipse2D(cx=cx, cy=cy, rx=rx, ry=ry, theta=theta))
    elif "keypoints" in doc:
        roi.keypoints.CopyFrom(frame_pb2.Keypoints2D(xy=doc["keypoints"], visibility=doc.get("visibility", ())))
    elif "keypoints_3d" in doc:
        roi.keypoints_3d.CopyFrom(frame_pb2.Keypoints3D(xyz=doc["keypoints_3d"]))
    elif "box_3d" in doc:
        x, y, z, sx, sy, sz, qw, qx, qy, qz = doc["box_3d"]
        roi.box_3d.CopyFrom(
            frame_pb2.Box3D(x=x, y=y, z=z, size_x=sx, size_y=sy, size_z=sz, qw=qw, qx=qx, qy=qy, qz=qz)
        )
    if doc.get("meta"):
        roi.meta.CopyFrom(dict_to_metadata(doc["meta"]))
    if "mask" in doc:
        roi.mask.CopyFrom(frame_pb2.RoiMaskLink(id=doc["mask"]["id"], value=doc["mask"]["value"]))
    return roi
