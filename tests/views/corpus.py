"""Builds datasets, versions and frames for view tests by writing documents
directly, shaped as STORAGE.md describes (frames via ``support.frame_to_document``).

Writes follow the revision rules of STORAGE.md: overwriting an inherited
frame inserts a revision and hides the ancestor's; deleting one hides it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from support import frame_to_document

from framevault.api.metadata_values import dict_to_metadata
from framevault.metadata.db import Database
from framevault.metadata.lineage import VersionHandle, visible_filter
from framevault.v1 import dataset_pb2, frame_pb2


def make_frame(
    frame_id: str,
    *,
    context: str = "",
    timestamp: int = 0,
    rois: Iterable[frame_pb2.Roi] = (),
    meta: dict[str, Any] | None = None,
    sources: Iterable[frame_pb2.Source] | None = None,
) -> frame_pb2.Frame:
    """A frame as the upload path stores it: an empty context id defaults to
    the first source URI."""
    source_list = list(sources) if sources is not None else [
        frame_pb2.Source(id="default", uri=f"s3://bucket/{frame_id}.jpg", content_type="image/jpeg",
                         width=640, height=480)
    ]
    frame = frame_pb2.Frame(id=frame_id, context_id=context or source_list[0].uri, timestamp=timestamp,
                            sources=source_list, rois=list(rois))
    if meta:
        frame.meta.CopyFrom(dict_to_metadata(meta))
    return frame


def roi(*labels: str, confidence: float | None = None) -> frame_pb2.Roi:
    out = frame_pb2.Roi(labels=labels, box=frame_pb2.Box2D(x=1, y=2, w=3, h=4))
    if confidence is not None:
        out.confidence = confidence
    return out


def ref(version: VersionHandle) -> dataset_pb2.VersionRef:
    return dataset_pb2.VersionRef(id=version.id)


class Corpus:
    def __init__(self, db: Database):
        self.db = db

    async def dataset(self, prefix: str = "views") -> str:
        dataset_id = str(ObjectId())
        now = datetime.now(UTC)
        await self.db.datasets.insert_one({
            "_id": dataset_id, "name": f"{prefix}-{uuid.uuid4().hex[:10]}", "description": "", "tags": [],
            "meta": {}, "create_time": now, "update_time": now, "etag": uuid.uuid4().hex,
        })
        return dataset_id

    async def version(self, dataset_id: str, name: str = "main", parent: VersionHandle | None = None) -> VersionHandle:
        """A draft; a child of ``parent`` (published first) inherits its frames."""
        version_id = str(ObjectId())
        now = datetime.now(UTC)
        lineage = [*(parent.lineage if parent else ()), version_id]
        frame_count = 0
        if parent is not None:
            await self.publish(parent)
            frame_count = (await self.db.versions.find_one({"_id": parent.id}))["frame_count"]
        await self.db.versions.insert_one({
            "_id": version_id, "dataset_id": dataset_id, "name": name, "description": "", "status": "draft",
            "parent_ids": [parent.id] if parent else [], "lineage": lineage, "meta": {}, "mask_labels": [],
            "frame_count": frame_count, "create_time": now, "update_time": now, "publish_time": None,
            "etag": uuid.uuid4().hex, "write_seq": 0,
        })
        return VersionHandle(version_id, dataset_id, name, "draft", tuple(lineage))

    async def publish(self, version: VersionHandle) -> None:
        await self.db.versions.update_one(
            {"_id": version.id}, {"$set": {"status": "published", "publish_time": datetime.now(UTC)}}
        )

    async def put(self, version: VersionHandle, frames: Iterable[frame_pb2.Frame]) -> None:
        """Upserts ``frames`` into the draft ``version``."""
        new_documents = []
        created = 0
        for frame in frames:
            document = frame_to_document(frame, dataset_id=version.dataset_id, version_id=version.id, saved_ms=1)
            visible = await self.db.frames.find_one({**visible_filter(version), "frame_id": frame.id})
            if visible is None:
                created += 1
                new_documents.append(document)
            elif visible["version_id"] == version.id:
                await self.db.frames.replace_one({"_id": visible["_id"]}, document)
            else:
                await self.db.frames.update_one({"_id": visible["_id"]}, {"$addToSet": {"hidden_in": version.id}})
                new_documents.append(document)
        if new_documents:
            await self.db.frames.insert_many(new_documents)
        await self.db.versions.update_one({"_id": version.id}, {"$inc": {"frame_count": created}})

    async def put_many(self, version: VersionHandle, frames: list[frame_pb2.Frame]) -> None:
        """Bulk insert of new frames into an empty draft (no revision checks)."""
        documents = [frame_to_document(f, dataset_id=version.dataset_id, version_id=version.id, saved_ms=1)
                     for f in frames]
        for start in range(0, len(documents), 1000):
            await self.db.frames.insert_many(documents[start:start + 1000])
        await self.db.versions.update_one({"_id": version.id}, {"$inc": {"frame_count": len(documents)}})

    async def delete(self, version: VersionHandle, frame_id: str) -> None:
        visible = await self.db.frames.find_one({**visible_filter(version), "frame_id": frame_id})
        assert visible is not None, frame_id
        if visible["version_id"] == version.id:
            await self.db.frames.delete_one({"_id": visible["_id"]})
        else:
            await self.db.frames.update_one({"_id": visible["_id"]}, {"$addToSet": {"hidden_in": version.id}})
        await self.db.versions.update_one({"_id": version.id}, {"$inc": {"frame_count": -1}})
