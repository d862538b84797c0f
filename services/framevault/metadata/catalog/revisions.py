"""Queries and writes on frame revisions for diff, merge and statistics.

The visibility rule lives in ``lineage.visible_filter``; this module adds the
reads that follow a version's *changes* (revisions a set of versions wrote or
hid), which is what makes diff and merge cost follow the size of a change.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING

from framevault.metadata.db import Database
from framevault.metadata.lineage import is_visible

# Fields enough to decide visibility and equality, without the content.
IDENTITY_FIELDS = {"_id": 1, "frame_id": 1, "version_id": 1, "hidden_in": 1, "etag": 1}


@dataclass
class ReadCounter:
    """Revision documents a diff or merge read, by purpose."""

    change_keys: int = 0
    resolved: int = 0
    by_query: list[str] = field(default_factory=list)


async def _frame_ids(cursor: Any, counter: ReadCounter) -> AsyncIterator[str]:
    async for doc in cursor:
        counter.change_keys += 1
        yield doc["frame_id"]


async def changed_frame_ids(
    db: Database, versions: Sequence[str], counter: ReadCounter
) -> AsyncIterator[str]:
    """Distinct ids of the frames that ``versions`` wrote or hid, ascending.

    Two index-ordered scans merged: revisions written by the versions
    (``revision_unique``: version_id, frame_id) and revisions they hid
    (``hidden_frames``: hidden_in, frame_id). Only index keys of changed
    revisions are read.
    """
    if not versions:
        return
    selector: Any = {"$in": list(versions)} if len(versions) > 1 else versions[0]
    written = (
        db.frames.find({"version_id": selector}, {"_id": 0, "frame_id": 1}, batch_size=db.settings.mongodb_cursor_batch_size)
        .sort("frame_id", ASCENDING)
        .hint("revision_unique")
    )
    hidden = (
        db.frames.find({"hidden_in": selector}, {"_id": 0, "frame_id": 1}, batch_size=db.settings.mongodb_cursor_batch_size)
        .sort("frame_id", ASCENDING)
        .hint("hidden_frames")
    )
    previous: str | None = None
    async for frame_id in _merge_sorted([_frame_ids(written, counter), _frame_ids(hidden, counter)]):
        if frame_id != previous:
            yield frame_id
            previous = frame_id


async def _merge_sorted(streams: list[AsyncIterator[str]]) -> AsyncIterator[str]:
    heads: list[tuple[str, int]] = []
    for i, stream in enumerate(streams):
        first = await anext(stream, None)
        if first is not None:
            heads.append((first, i))
    heapq.heapify(heads)
    while heads:
        value, i = heads[0]
        yield value
        following = await anext(streams[i], None)
        if following is None:
            heapq.heappop(heads)
        else:
            heapq.heapreplace(heads, (following, i))


async def revisions_of(
    db: Database,
    dataset_id: str,
    frame_ids: Sequence[str],
    version_ids: Iterable[str],
    counter: ReadCounter,
    *,
    full: bool,
) -> list[dict[str, Any]]:
    """Every revision of ``frame_ids`` written by one of ``version_ids``."""
    cursor = db.frames.find(
        {"dataset_id": dataset_id, "frame_id": {"$in": list(frame_ids)}, "version_id": {"$in": list(version_ids)}},
        None if full else IDENTITY_FIELDS,
        batch_size=db.settings.mongodb_cursor_batch_size,
    ).hint("frame_lineage")
    docs = await cursor.to_list(length=None)
    counter.resolved += len(docs)
    return docs


def pick_visible(docs: Iterable[dict[str, Any]], lineage: frozenset[str]) -> dict[str, dict[str, Any]]:
    """frame id → the revision visible in ``lineage``."""
    return {doc["frame_id"]: doc for doc in docs if is_visible(doc, lineage)}
