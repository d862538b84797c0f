"""The MongoDB side of ``lineage.VersionReader``: the dataset and version reads
every area makes, and the settling of write leases when drafts end. Each
area's MongoDB store extends ``MongoVersionReader``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from framevault.metadata.db import Database
from framevault.metadata.lineage import DRAFT


def equality_query(**fields: str | None) -> dict[str, Any]:
    """A query matching every given (not None) field exactly; at least one."""
    query = {name: value for name, value in fields.items() if value is not None}
    if not query:
        raise ValueError("a lookup needs at least one field")
    return query


async def aggregate(collection: Any, pipeline: list[dict[str, Any]], **options: Any) -> Any:
    """The cursor of an aggregation, for either driver."""
    cursor = collection.aggregate(pipeline, **options)
    # motor returns the cursor, PyMongo's async API a coroutine of it.
    return await cursor if hasattr(cursor, "__await__") and not hasattr(cursor, "__aiter__") else cursor


async def settle_leases(db: Database, session: Any, query: dict[str, Any]) -> int:
    """Inside the transaction that ends drafts (publish, snapshot, delete in
    catalog/mongo_store.py; leases: frames/write_leases.py): removes the leases
    matching ``query`` (by ``version_id`` or ``dataset_id``) and returns the
    frame count they held. The caller must write the version document(s) in
    the same transaction."""
    leases = await db.write_leases.find(query, {"frame_count_delta": 1}, session=session).to_list(length=None)
    if not leases:
        return 0
    await db.write_leases.delete_many({"_id": {"$in": [lease["_id"] for lease in leases]}}, session=session)
    return sum(int(lease["frame_count_delta"]) for lease in leases)


class MongoVersionReader:
    def __init__(self, db: Database):
        self._db = db
        self.settings = db.settings

    async def find_dataset(self, *, dataset_id: str | None = None, name: str | None = None) -> dict[str, Any] | None:
        return await self._db.datasets.find_one(equality_query(_id=dataset_id, name=name))

    async def find_version(
        self, *, version_id: str | None = None, dataset_id: str | None = None, name: str | None = None
    ) -> dict[str, Any] | None:
        return await self._db.versions.find_one(equality_query(_id=version_id, dataset_id=dataset_id, name=name))

    async def exact_frame_counts(self, version_ids: Iterable[str]) -> dict[str, int]:
        # The leases are read before the version documents, so a draft
        # published in between is seen published with the folded count
        # rather than counted short.
        ids = list(dict.fromkeys(version_ids))
        if not ids:
            return {}
        held: dict[str, int] = {}
        async for group in await aggregate(self._db.write_leases, [
            {"$match": {"version_id": {"$in": ids}}},
            {"$group": {"_id": "$version_id", "delta": {"$sum": "$frame_count_delta"}}},
        ]):
            held[group["_id"]] = int(group["delta"])
        return {
            doc["_id"]: int(doc["frame_count"]) + (held.get(doc["_id"], 0) if doc["status"] == DRAFT else 0)
            async for doc in self._db.versions.find({"_id": {"$in": ids}}, {"frame_count": 1, "status": 1})
        }
