"""The MongoDB side of views (``store.ViewStore``): the few reads iteration needs.

Every read is bounded (a limit, or one shuffle bucket) and pinned to the index
its order needs (see STORAGE.md, "Iteration order and indexes"). No server
cursor outlives one call, so a slow consumer never holds database resources.
A hinted index that does not exist yet (the service answers before its
start-up index creation finished) is UNAVAILABLE, like every driver error
translated by the collection handles (mongo_errors.py).
"""

from __future__ import annotations

from typing import Any

from bson import Int64, MaxKey, MinKey, ObjectId

from framevault.metadata.db import FRAMES, Database
from framevault.metadata.frame_documents import SequentialKey, StoredRevision
from framevault.metadata.mongo_errors import TimeLimitExceeded, translated
from framevault.metadata.mongo_versions import MongoVersionReader
from framevault.metadata.views.plan import FrameScope, MetadataOrder
from framevault.metadata.views.store import ContextKey, MetadataKey, SortTimeLimitExceeded

SEQUENTIAL_INDEX = "sequential_order"
SHUFFLE_INDEX = "shuffle_order"
_SEQUENTIAL_FIELDS = ("dataset_id", "context_id", "timestamp", "frame_id")
# Computed fields of a metadata-order batch: 1 when the frame lacks the key, and the key's value
# wrapped in a one-member list. $sort compares a list field by its smallest (largest, descending)
# member but a one-member list by that member, and leaves a nested list whole; $expr compares a
# list as a whole. Wrapped, a stored list is one value to both, so the sort and the keyset
# predicate agree on every value.
_SORT_MISSING = "_sort_missing"
_SORT_VALUE = "_sort_value"


def _projection(fields: list[str] | None) -> dict[str, int] | None:
    return None if fields is None else {name: 1 for name in fields}


class MongoViewStore(MongoVersionReader):
    def __init__(self, db: Database):
        super().__init__(db)
        self._frames = db.frames
        # Reads that send frames get each document as its BSON: the frame codec encodes the frame
        # from those bytes, so no document is decoded into Python objects.
        self._stored_frames = db.frames.with_options(
            codec_options=db.frames.codec_options.with_options(document_class=StoredRevision))
        self._database = db.db

    def _sequential_find(
        self, frames: Any, scope: FrameScope, after: SequentialKey | None, limit: int, fields: list[str] | None
    ) -> Any:
        # min()/max() turn the keyset position into exact index bounds: the
        # scan starts at the last key sent, whatever the query around it.
        start: tuple[Any, ...] = (scope.dataset_id, MinKey(), MinKey(), MinKey())
        if after:
            start = (scope.dataset_id, after[0], Int64(after[1]), after[2])
        return frames.find(
            scope.query,
            projection=_projection(fields),
            sort=[(name, 1) for name in _SEQUENTIAL_FIELDS],
            hint=SEQUENTIAL_INDEX,
            min=dict(zip(_SEQUENTIAL_FIELDS, start, strict=True)),
            max=dict(zip(_SEQUENTIAL_FIELDS, (scope.dataset_id, MaxKey(), MaxKey(), MaxKey()), strict=True)),
            limit=limit,
            batch_size=limit,
        )

    async def sequential_batch(
        self, scope: FrameScope, after: SequentialKey | None, limit: int, fields: list[str] | None
    ) -> list[dict[str, Any]]:
        return await self._sequential_find(self._stored_frames, scope, after, limit, fields).to_list(length=limit)

    async def explain_sequential(self, scope: FrameScope, after: SequentialKey | None, limit: int) -> dict[str, Any]:
        """The query plan of a sequential batch (for tests and operators)."""
        return await self._sequential_find(self._frames, scope, after, limit, None).explain()

    def _bucket_find(self, scope: FrameScope, low: int, high: int | None) -> Any:
        key_range: dict[str, Any] = {"$gte": Int64(low)}
        if high is not None:
            key_range["$lt"] = Int64(high)
        return self._frames.find(
            {"$and": [{"dataset_id": scope.dataset_id, "shuffle_key": key_range}, scope.query]},
            projection={"frame_id": 1},
            hint=SHUFFLE_INDEX,
            batch_size=2000,
        )

    async def bucket_members(self, scope: FrameScope, low: int, high: int | None) -> list[tuple[str, ObjectId]]:
        # One awaited list, not a loop per document: a bucket can hold thousands.
        members = await self._bucket_find(scope, low, high).to_list(length=None)
        return [(doc["frame_id"], doc["_id"]) for doc in members]

    async def explain_bucket(self, scope: FrameScope, low: int, high: int | None) -> dict[str, Any]:
        """The query plan of a shuffle-bucket listing."""
        return await self._bucket_find(scope, low, high).explain()

    async def documents(self, scope: FrameScope, ids: list[ObjectId], fields: list[str] | None) -> list[dict[str, Any]]:
        cursor = self._stored_frames.find(
            {"$and": [{"_id": {"$in": ids}}, scope.query]}, projection=_projection(fields), batch_size=len(ids)
        )
        return await cursor.to_list(length=len(ids))

    async def count(self, scope: FrameScope) -> int:
        return int(await self._frames.count_documents(scope.query))

    def _metadata_order_pipeline(self, scope: FrameScope, order: MetadataOrder, after: MetadataKey | None,
                                 limit: int, fields: list[str] | None) -> list[dict[str, Any]]:
        value = "$" + order.field
        pipeline: list[dict[str, Any]] = [
            {"$match": scope.query},
            {"$set": {_SORT_MISSING: {"$cond": [{"$eq": [{"$type": value}, "missing"]}, 1, 0]},
                      _SORT_VALUE: [value]}},
        ]
        if after is not None:
            missing, last, frame_id = after
            # Caller-given values only ever appear under $literal.
            last_value = {"$literal": [last]}
            further = "$lt" if order.descending else "$gt"
            pipeline.append({"$match": {"$expr": {"$or": [
                {"$gt": ["$" + _SORT_MISSING, missing]},
                {"$and": [{"$eq": ["$" + _SORT_MISSING, missing]}, {"$or": [
                    {further: ["$" + _SORT_VALUE, last_value]},
                    {"$and": [{"$eq": ["$" + _SORT_VALUE, last_value]},
                              {"$gt": ["$frame_id", {"$literal": frame_id}]}]},
                ]}]},
            ]}}})
        # $sort followed by $limit keeps only the best ``limit`` documents while scanning (top-k).
        pipeline += [
            {"$sort": {_SORT_MISSING: 1, _SORT_VALUE: -1 if order.descending else 1, "frame_id": 1}},
            {"$limit": limit},
        ]
        if fields is not None:
            pipeline.append({"$project": {name: 1 for name in (*fields, _SORT_MISSING, _SORT_VALUE)}})
        return pipeline

    async def metadata_order_batch(self, scope: FrameScope, order: MetadataOrder, after: MetadataKey | None,
                                   limit: int, fields: list[str] | None, max_time_ms: int
                                   ) -> list[tuple[dict[str, Any], MetadataKey]]:
        pipeline = self._metadata_order_pipeline(scope, order, after, limit, fields)
        try:
            documents = await self._frames.aggregate(pipeline, maxTimeMS=max_time_ms,
                                                     batchSize=limit).to_list(length=limit)
        except TimeLimitExceeded as exc:
            raise SortTimeLimitExceeded() from exc
        return [(document, (document.pop(_SORT_MISSING), document.pop(_SORT_VALUE)[0], document["frame_id"]))
                for document in documents]

    async def explain_metadata_order(self, scope: FrameScope, order: MetadataOrder, after: MetadataKey | None,
                                     limit: int) -> dict[str, Any]:
        """The query plan of a metadata-order batch (for tests and operators)."""
        pipeline = self._metadata_order_pipeline(scope, order, after, limit, None)
        with translated():
            return dict(await self._database.command(
                "explain", {"aggregate": FRAMES, "pipeline": pipeline, "cursor": {}}))

    # Contexts: seeks on the sequential index (dataset, context, timestamp, frame id), so the
    # n-th page costs what the first does.

    def _next_context_find(self, frames: Any, scope: FrameScope, after_context: str | None,
                           fields: list[str] | None) -> Any:
        # Past every key of ``after_context``: no timestamp reaches MaxKey.
        start = (scope.dataset_id, MinKey(), MinKey(), MinKey()) if after_context is None else (
            scope.dataset_id, after_context, MaxKey(), MaxKey())
        return frames.find(
            scope.query, projection=_projection(fields), sort=[(name, 1) for name in _SEQUENTIAL_FIELDS],
            hint=SEQUENTIAL_INDEX, min=dict(zip(_SEQUENTIAL_FIELDS, start, strict=True)),
            max=dict(zip(_SEQUENTIAL_FIELDS, (scope.dataset_id, MaxKey(), MaxKey(), MaxKey()), strict=True)),
            limit=1, batch_size=1)

    async def next_context_first(self, scope: FrameScope, after_context: str | None,
                                 fields: list[str] | None) -> dict[str, Any] | None:
        found = await self._next_context_find(self._stored_frames, scope, after_context, fields).to_list(length=1)
        return found[0] if found else None

    async def explain_next_context(self, scope: FrameScope, after_context: str | None) -> dict[str, Any]:
        """The query plan of a context seek (for tests and operators)."""
        return await self._next_context_find(self._frames, scope, after_context, None).explain()

    async def context_count(self, scope: FrameScope, context_id: str, limit: int) -> int:
        return int(await self._frames.count_documents(
            {"$and": [{"dataset_id": scope.dataset_id, "context_id": context_id}, scope.query]},
            hint=SEQUENTIAL_INDEX, limit=limit))

    async def context_batch(self, scope: FrameScope, context_id: str, after: ContextKey | None, limit: int,
                            fields: list[str] | None, descending: bool) -> list[dict[str, Any]]:
        low: tuple[Any, ...] = (scope.dataset_id, context_id, MinKey(), MinKey())
        high: tuple[Any, ...] = (scope.dataset_id, context_id, MaxKey(), MaxKey())
        skip_first = False
        if after is not None and descending:
            # max() is exclusive: the scan starts right before ``after``.
            high = (scope.dataset_id, context_id, Int64(after[0]), after[1])
        elif after is not None:
            # min() is inclusive: the frame at ``after`` itself is dropped below.
            low = (scope.dataset_id, context_id, Int64(after[0]), after[1])
            skip_first = True
        direction = -1 if descending else 1
        cursor = self._stored_frames.find(
            scope.query, projection=_projection(fields), sort=[(name, direction) for name in _SEQUENTIAL_FIELDS],
            hint=SEQUENTIAL_INDEX, min=dict(zip(_SEQUENTIAL_FIELDS, low, strict=True)),
            max=dict(zip(_SEQUENTIAL_FIELDS, high, strict=True)), limit=limit + skip_first,
            batch_size=limit + skip_first)
        documents = await cursor.to_list(length=limit + skip_first)
        if skip_first and documents and after is not None and (
                int(documents[0]["timestamp"]), documents[0]["frame_id"]) == after:
            documents = documents[1:]
        return documents[:limit]

    async def context_key(self, scope: FrameScope, context_id: str, frame_id: str) -> ContextKey | None:
        found = await self._frames.find_one(
            {"$and": [{"dataset_id": scope.dataset_id, "frame_id": frame_id, "context_id": context_id}, scope.query]},
            projection={"timestamp": 1, "frame_id": 1})
        return None if found is None else (int(found["timestamp"]), found["frame_id"])
