"""Write leases: how frame writes into a draft are fenced against publishing
and counted, without a document that every writer updates (STORAGE.md
"Write leases").

A writer (one transaction at a time) holds a lease of the draft: a small
document of its own in ``write_leases``. Every frame transaction updates its
lease (``claim``), moving the lease's ``frame_count_delta`` by the frames that
appeared or disappeared; writers of different frames therefore share no
document and never conflict, and a transaction that dies with its process
holds nothing that other writers need. Ending the draft (publish, snapshot,
delete) removes its leases in the same transaction (``settle_leases``), which
write-conflicts with every frame transaction in flight, so each of them lands
strictly before (and is counted) or fails. A draft's exact frame count is
its document's ``frame_count`` plus the deltas of its leases
(``live_frame_counts``); publishing folds them in.

Leases are registered once and reused: each process keeps the leases no
transaction is using, per version.
"""

from __future__ import annotations

import contextlib
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import bson
from bson import ObjectId

from framevault.common.errors import Aborted, FailedPrecondition, NotFound
from framevault.metadata.db import Database
from framevault.metadata.lineage import DRAFT, VersionHandle, require_draft


@dataclass(frozen=True)
class WriteLease:
    id: ObjectId
    version: VersionHandle


class _LeaseWithdrawn(Aborted):
    """The lease vanished although the version is still a draft; the
    transaction is retried with a new lease."""


class _IdleLeases:
    """The leases of one process that no transaction is using, by version."""

    def __init__(self, remembered_versions: int) -> None:
        self._remembered_versions = remembered_versions
        self._by_version: OrderedDict[str, list[ObjectId]] = OrderedDict()

    def take(self, version_id: str) -> ObjectId | None:
        idle = self._by_version.get(version_id)
        if not idle:
            return None
        self._by_version.move_to_end(version_id)
        return idle.pop()

    def give_back(self, version_id: str, lease_id: ObjectId) -> None:
        self._by_version.setdefault(version_id, []).append(lease_id)
        self._by_version.move_to_end(version_id)
        while len(self._by_version) > self._remembered_versions:
            self._by_version.popitem(last=False)


_idle: weakref.WeakKeyDictionary[Database, _IdleLeases] = weakref.WeakKeyDictionary()


def _idle_leases(db: Database) -> _IdleLeases:
    pool = _idle.get(db)
    if pool is None:
        pool = _idle[db] = _IdleLeases(db.settings.upload_remembered_lease_drafts)
    return pool


@contextlib.asynccontextmanager
async def write_lease(db: Database, version: VersionHandle) -> AsyncIterator[WriteLease]:
    """A lease of draft ``version`` for one transaction, registered if the
    process has no idle one. Raises FailedPrecondition (published) or
    NotFound (deleted)."""
    pool = _idle_leases(db)
    lease_id = pool.take(version.id) or await _register(db, version)
    try:
        yield WriteLease(lease_id, version)
    except (FailedPrecondition, NotFound, _LeaseWithdrawn):
        raise  # the lease is gone with the draft: not reused
    except BaseException:
        pool.give_back(version.id, lease_id)
        raise
    pool.give_back(version.id, lease_id)


async def _register(db: Database, version: VersionHandle) -> ObjectId:
    """Inserts a lease, then bumps the draft's ``lease_seq``. Both are single
    writes outside any transaction, so a process dying here holds nothing.
    The bump write-conflicts with a concurrent settle (which writes the
    version document too): either the settle sees this lease, or the bump
    finds no draft and the lease is withdrawn again."""
    lease_id = ObjectId()
    await db.write_leases.insert_one({
        "_id": lease_id, "version_id": version.id, "dataset_id": version.dataset_id,
        "frame_count_delta": bson.Int64(0), "writes": bson.Int64(0),
    })
    bumped = await db.versions.update_one({"_id": version.id, "status": DRAFT}, {"$inc": {"lease_seq": 1}})
    if bumped.matched_count:
        return lease_id
    await db.write_leases.delete_one({"_id": lease_id})
    await _raise_not_draft(db, version.id, session=None)
    raise AssertionError("unreachable")


async def claim(db: Database, session: Any, lease: WriteLease, frame_count_delta: int) -> None:
    """Inside a frame transaction: moves the lease's frame count. Always a
    real write (``writes`` counts up), so a settle of the draft and this
    transaction conflict; fails unless the draft is still a draft."""
    moved = await db.write_leases.update_one(
        {"_id": lease.id}, {"$inc": {"frame_count_delta": frame_count_delta, "writes": 1}}, session=session)
    if moved.matched_count:
        return
    await _raise_not_draft(db, lease.version.id, session=session)
    raise _LeaseWithdrawn(f"write lease of version {lease.version.id} was withdrawn", retry_after_ms=0)


async def _raise_not_draft(db: Database, version_id: str, session: Any) -> None:
    """Raises FailedPrecondition or NotFound unless ``version_id`` is a draft."""
    current = await db.versions.find_one(
        {"_id": version_id}, {"_id": 1, "dataset_id": 1, "name": 1, "status": 1, "lineage": 1}, session=session)
    if current is None:
        raise NotFound("version", version_id)
    require_draft(VersionHandle.from_document(current))


async def settle_leases(db: Database, session: Any, query: dict[str, Any]) -> int:
    """Inside the transaction that ends drafts (publish, snapshot, delete):
    removes the leases matching ``query`` (by ``version_id`` or
    ``dataset_id``) and returns the frame count they held. The caller must
    write the version document(s) in the same transaction."""
    leases = await db.write_leases.find(query, {"frame_count_delta": 1}, session=session).to_list(length=None)
    if not leases:
        return 0
    await db.write_leases.delete_many({"_id": {"$in": [lease["_id"] for lease in leases]}}, session=session)
    return sum(int(lease["frame_count_delta"]) for lease in leases)


async def exact_frame_counts(db: Database, version_ids: Iterable[str]) -> dict[str, int]:
    """The exact frame count of each existing version among ``version_ids``:
    its document's count, plus its leases' while it is a draft. The leases
    are read before the version documents, so a draft published in between
    is seen published with the folded count rather than counted short."""
    ids = list(dict.fromkeys(version_ids))
    if not ids:
        return {}
    held: dict[str, int] = {}
    async for group in await _aggregate(db.write_leases, [
        {"$match": {"version_id": {"$in": ids}}},
        {"$group": {"_id": "$version_id", "delta": {"$sum": "$frame_count_delta"}}},
    ]):
        held[group["_id"]] = int(group["delta"])
    return {
        doc["_id"]: int(doc["frame_count"]) + (held.get(doc["_id"], 0) if doc["status"] == DRAFT else 0)
        async for doc in db.versions.find({"_id": {"$in": ids}}, {"frame_count": 1, "status": 1})
    }


async def live_frame_counts(db: Database, versions: Iterable[dict[str, Any]]) -> None:
    """Sets ``frame_count`` of the draft documents among ``versions`` to the
    exact count (``exact_frame_counts``)."""
    drafts = [doc for doc in versions if doc.get("status") == DRAFT]
    counts = await exact_frame_counts(db, (doc["_id"] for doc in drafts))
    for doc in drafts:
        if doc["_id"] in counts:
            doc["frame_count"] = counts[doc["_id"]]


async def _aggregate(collection: Any, pipeline: list[dict[str, Any]]) -> Any:
    # motor returns the cursor, PyMongo's async API a coroutine of it.
    cursor = collection.aggregate(pipeline)
    return await cursor if hasattr(cursor, "__await__") else cursor
