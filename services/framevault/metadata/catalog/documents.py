"""Dataset and version documents (layout in STORAGE.md), and their protos."""

from __future__ import annotations

import datetime as dt
from typing import Any

import bson
from google.protobuf import timestamp_pb2

from framevault.api.metadata_values import dict_to_metadata
from framevault.metadata.lineage import DRAFT, PUBLISHED
from framevault.v1 import dataset_pb2

_STATUS = {DRAFT: dataset_pb2.VERSION_STATUS_DRAFT, PUBLISHED: dataset_pb2.VERSION_STATUS_PUBLISHED}


def new_id() -> str:
    return str(bson.ObjectId())


def new_etag() -> str:
    return str(bson.ObjectId())


def now() -> dt.datetime:
    """The current time at MongoDB's millisecond precision, so what is
    returned equals what a later read returns."""
    moment = dt.datetime.now(dt.UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    out.FromDatetime(value)
    return out


def dataset_to_proto(doc: dict[str, Any]) -> dataset_pb2.Dataset:
    return dataset_pb2.Dataset(
        id=doc["_id"],
        name=doc["name"],
        description=doc.get("description", ""),
        tags=doc.get("tags", []),
        meta=dict_to_metadata(doc.get("meta")),
        create_time=_timestamp(doc.get("create_time")),
        update_time=_timestamp(doc.get("update_time")),
        etag=doc.get("etag", ""),
    )


def mask_labels_to_docs(mask_labels: Any) -> list[dict[str, Any]]:
    return [{"value": list(m.value), "labels": list(m.labels)} for m in mask_labels]


def version_to_proto(doc: dict[str, Any]) -> dataset_pb2.Version:
    return dataset_pb2.Version(
        id=doc["_id"],
        dataset_id=doc["dataset_id"],
        name=doc["name"],
        description=doc.get("description", ""),
        status=_STATUS[doc["status"]],
        parent_ids=doc.get("parent_ids", []),
        meta=dict_to_metadata(doc.get("meta")),
        mask_labels=[dataset_pb2.MaskLabel(value=m["value"], labels=m["labels"]) for m in doc.get("mask_labels", [])],
        create_time=_timestamp(doc.get("create_time")),
        update_time=_timestamp(doc.get("update_time")),
        publish_time=_timestamp(doc.get("publish_time")),
        frame_count=int(doc.get("frame_count", 0)),
        etag=doc.get("etag", ""),
    )


def new_version_document(
    *,
    version_id: str,
    dataset_id: str,
    name: str,
    description: str = "",
    parents: list[dict[str, Any]] | None = None,
    meta: dict[str, Any] | None = None,
    mask_labels: list[dict[str, Any]] | None = None,
    frame_count: int = 0,
    created: dt.datetime | None = None,
) -> dict[str, Any]:
    """A draft version. It inherits the frames of its first parent (whose
    lineage it extends); further parents are recorded for the DAG only."""
    parents = parents or []
    created = created or now()
    lineage = [*parents[0]["lineage"], version_id] if parents else [version_id]
    return {
        "_id": version_id,
        "dataset_id": dataset_id,
        "name": name,
        "description": description,
        "status": DRAFT,
        "parent_ids": [p["_id"] for p in parents],
        "lineage": lineage,
        "meta": meta or {},
        "mask_labels": mask_labels or [],
        "frame_count": bson.Int64(frame_count),
        "create_time": created,
        "update_time": created,
        "publish_time": None,
        "etag": new_etag(),
        "write_seq": bson.Int64(0),
    }
