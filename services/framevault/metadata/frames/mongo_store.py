"""The MongoDB side of frames (``store.FrameStore``): every query and write of
frame revisions and write leases. ``revisions`` and ``write_leases`` decide
what to write; this module writes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import bson
from bson import ObjectId
from pymongo import ASCENDING, InsertOne, ReplaceOne

from framevault.metadata.catalog.page_tokens import Cursor
from framevault.metadata.db import FRAMES, Database
from framevault.metadata.frame_documents import SequentialKey, StoredRevision
from framevault.metadata.frames.frame_reads import BatchedFrameReads
from framevault.metadata.frames.known_versions import KnownVersions
from framevault.metadata.frames.store import Revision, Session
from framevault.metadata.lineage import DRAFT, VersionHandle, visible_expression, visible_filter
from framevault.metadata.mongo_errors import translated
from framevault.metadata.mongo_versions import MongoVersionReader, aggregate
from framevault.metadata.transactions import TransactionSessions, transaction

SEQUENTIAL_ORDER = [("context_id", ASCENDING), ("timestamp", ASCENDING), ("frame_id", ASCENDING)]
# What a version handle is read from.
_HANDLE_FIELDS = {"_id": 1, "dataset_id": 1, "name": 1, "status": 1, "lineage": 1}


def _referenced_uris_pipeline() -> list[dict[str, Any]]:
    """Every distinct ``blob:`` URI of any revision (sources, previews, masks),
    with its number of references. Grouping spills to disk when large."""
    return [
        {"$project": {"_id": 0, "sources.uri": 1, "sources.preview.uri": 1, "sources.masks.uri": 1}},
        {"$unwind": "$sources"},
        {"$project": {"uris": {"$concatArrays": [
            ["$sources.uri"],
            [{"$ifNull": ["$sources.preview.uri", None]}],
            {"$ifNull": ["$sources.masks.uri", []]},
        ]}}},
        {"$unwind": "$uris"},
        {"$match": {"uris": {"$regex": "^blob:"}}},
        {"$group": {"_id": "$uris", "references": {"$sum": 1}}},
    ]


class MongoFrameStore(MongoVersionReader):
    def __init__(self, db: Database):
        super().__init__(db)
        self.known_versions = KnownVersions(db.settings)
        # Revisions read to be sent, kept as their BSON for the frame codec.
        self._stored_codec = db.frames.codec_options.with_options(document_class=StoredRevision)
        self._frames_read_concern = db.frames.read_concern.document
        self._frames_read_preference = db.db[FRAMES].read_preference
        # GetFrame's reads that wait together, as one query.
        self._frame_reads = BatchedFrameReads(self._stored_revisions)

    def transaction(self) -> AbstractAsyncContextManager[Session]:
        return transaction(self._db)

    def transaction_sessions(self) -> TransactionSessions:
        return TransactionSessions(self._db)

    # -- revisions ------------------------------------------------------------

    async def visible_revisions(
        self, version: VersionHandle, frame_ids: list[str], fields: dict[str, int] | None, session: Session
    ) -> dict[str, Revision]:
        # One query on the frame_lineage index; for one id a find_one (at most
        # one revision is visible), which spares the driver a cursor.
        if len(frame_ids) == 1:
            doc = await self._db.frames.find_one({**visible_filter(version), "frame_id": frame_ids[0]}, fields,
                                                 session=session)
            return {} if doc is None else {doc["frame_id"]: doc}
        query = {**visible_filter(version), "frame_id": {"$in": frame_ids}}
        return {doc["frame_id"]: doc async for doc in self._db.frames.find(query, fields, session=session)}

    async def stored_revision(self, version: VersionHandle, frame_id: str) -> StoredRevision | None:
        found: StoredRevision | None = await self._frame_reads.read(version, frame_id)
        return found

    async def _stored_revisions(self, version: VersionHandle, frame_ids: list[str]) -> dict[str, StoredRevision]:
        # The find command itself rather than a cursor: the driver's cursor around a small read
        # costs more CPU than the command. Same read concern and read preference as the
        # collection's; at most one revision per frame is visible, so one batch holds them all.
        wanted: Any = frame_ids[0] if len(frame_ids) == 1 else {"$in": frame_ids}
        command = {"find": FRAMES, "filter": {**visible_filter(version), "frame_id": wanted},
                   "limit": len(frame_ids), "singleBatch": True, "readConcern": self._frames_read_concern}
        with translated():
            reply = await self._db.db.command(command, codec_options=self._stored_codec,
                                              read_preference=self._frames_read_preference)
        return {doc["frame_id"]: doc for doc in reply["cursor"]["firstBatch"]}

    async def version_with_revision(
        self, version_id: str, frame_id: str
    ) -> tuple[VersionHandle, Revision | None] | None:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"_id": version_id}},
            {"$project": {"dataset_id": 1, "name": 1, "status": 1, "lineage": 1}},
            # The equality on dataset_id and the frame id keep the lookup on the
            # frame_lineage index (one key per revision of the frame).
            {"$lookup": {
                "from": FRAMES,
                "localField": "dataset_id",
                "foreignField": "dataset_id",
                "let": {"lineage": "$lineage"},
                "pipeline": [
                    {"$match": {"frame_id": frame_id, "$expr": visible_expression("$$lineage")}},
                    # At most one revision per frame is visible (STORAGE.md).
                    {"$limit": 1},
                ],
                "as": "visible",
            }},
        ]
        found = await (await aggregate(self._db.versions, pipeline)).to_list(length=1)
        if not found:
            return None
        version = found[0]
        visible = version.pop("visible")
        return VersionHandle.from_document(version), (visible[0] if visible else None)

    async def write_revisions(
        self, session: Session, version_id: str, inserts: Sequence[Revision],
        replacements: Sequence[tuple[ObjectId, Revision]], hide: Sequence[ObjectId],
    ) -> None:
        if replacements:
            operations: list[InsertOne[Any] | ReplaceOne[Any]] = [InsertOne(doc) for doc in inserts]
            operations.extend(ReplaceOne({"_id": revision_id}, doc) for revision_id, doc in replacements)
            await self._db.frames.bulk_write(operations, ordered=True, session=session)
        elif inserts:
            # New frames only (an upload into a fresh draft): no operation object per document.
            await self._db.frames.insert_many(inserts, ordered=True, session=session)
        if hide:
            await self._hide(session, version_id, hide)

    async def remove_revisions(
        self, session: Session, version_id: str, delete: Sequence[ObjectId], hide: Sequence[ObjectId]
    ) -> None:
        if delete:
            await self._db.frames.delete_many({"_id": {"$in": list(delete)}}, session=session)
        if hide:
            await self._hide(session, version_id, hide)

    async def _hide(self, session: Session, version_id: str, revision_ids: Sequence[ObjectId]) -> None:
        await self._db.frames.update_many(
            {"_id": {"$in": list(revision_ids)}}, {"$addToSet": {"hidden_in": version_id}}, session=session
        )

    def sequential_page(self, version: VersionHandle, after: SequentialKey | None, limit: int) -> Cursor:
        query: dict[str, Any] = visible_filter(version)
        if after is not None:
            context_id, timestamp, frame_id = after
            query = {"$and": [query, {"$or": [
                {"context_id": {"$gt": context_id}},
                {"context_id": context_id, "timestamp": {"$gt": timestamp}},
                {"context_id": context_id, "timestamp": timestamp, "frame_id": {"$gt": frame_id}},
            ]}]}
        cursor: Cursor = (self._db.frames.find(query).sort(SEQUENTIAL_ORDER).hint("sequential_order")
                          .limit(limit).batch_size(limit))
        return cursor

    async def referenced_uris(self, batch_size: int) -> AsyncIterator[tuple[str, int]]:
        cursor = await aggregate(self._db.frames, _referenced_uris_pipeline(), allowDiskUse=True,
                                 batchSize=batch_size)
        async for group in cursor:
            yield group["_id"], int(group["references"])

    # -- write leases -----------------------------------------------------------

    async def register_lease(self, version: VersionHandle) -> ObjectId | None:
        # A lease is inserted, then the draft's lease_seq bumped: both single
        # writes outside any transaction, so a process dying here holds
        # nothing. The bump write-conflicts with a concurrent settle (which
        # writes the version document too): either the settle sees this
        # lease, or the bump finds no draft and the lease is withdrawn again.
        lease_id = ObjectId()
        await self._db.write_leases.insert_one({
            "_id": lease_id, "version_id": version.id, "dataset_id": version.dataset_id,
            "frame_count_delta": bson.Int64(0), "writes": bson.Int64(0),
        })
        bumped = await self._db.versions.update_one({"_id": version.id, "status": DRAFT}, {"$inc": {"lease_seq": 1}})
        if bumped.matched_count:
            return lease_id
        await self._db.write_leases.delete_one({"_id": lease_id})
        return None

    async def claim_lease(self, session: Session, lease_id: ObjectId, frame_count_delta: int) -> bool:
        moved = await self._db.write_leases.update_one(
            {"_id": lease_id}, {"$inc": {"frame_count_delta": frame_count_delta, "writes": 1}}, session=session)
        return bool(moved.matched_count)

    async def version_handle(self, version_id: str, session: Session) -> VersionHandle | None:
        current = await self._db.versions.find_one({"_id": version_id}, _HANDLE_FIELDS, session=session)
        return None if current is None else VersionHandle.from_document(current)
