"""The stored revision document to Frame as the service decoded it in Python
before the frame codec did (``frame_documents.document_to_frame`` up to this
change): the reference the codec's ``frame_from_document`` is checked against."""

from __future__ import annotations

from typing import Any

from framevault.api.metadata_values import metadata_fields
from framevault.v1 import frame_pb2


def reference_frame(doc: dict[str, Any], *, version_id: str) -> frame_pb2.Frame:
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
    return frame_pb2.Frame(**fields)


def _source_fields(doc: dict[str, Any]) -> dict[str, Any]:
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
