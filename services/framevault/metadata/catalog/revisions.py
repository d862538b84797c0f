"""Reads of frame revisions for diff and merge.

The visibility rule lives in ``lineage.visible_filter``; this module adds the
reads that follow a version's *changes* (revisions a set of versions wrote or
hid), which is what makes diff and merge cost follow the size of a change.
The store (``store.CatalogStore``) runs the queries.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from framevault.metadata.catalog.store import CatalogStore
from framevault.metadata.lineage import is_visible


@dataclass
class ReadCounter:
    """Revision documents a diff or merge read, by purpose."""

    change_keys: int = 0
    resolved: int = 0
    by_query: list[str] = field(default_factory=list)


async def _frame_ids(cursor: AsyncIterable[dict[str, Any]], counter: ReadCounter) -> AsyncIterator[str]:
    async for doc in cursor:
        counter.change_keys += 1
        yield doc["frame_id"]


async def changed_frame_ids(
    store: CatalogStore, versions: Sequence[str], counter: ReadCounter, *, after: str | None = None
) -> AsyncIterator[str]:
    """Distinct ids of the frames that ``versions`` wrote or hid, ascending
    (only those after ``after`` when it is given).

    Two index-ordered scans merged: revisions written by the versions
    (``revision_unique``: version_id, frame_id) and revisions they hid
    (``hidden_frames``: hidden_in, frame_id). Only index keys of changed
    revisions are read, from ``after`` on: each scan seeks there.
    """
    if not versions:
        return
    written = store.frame_ids_written_by(versions, after=after)
    hidden = store.frame_ids_hidden_by(versions, after=after)
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
    store: CatalogStore,
    dataset_id: str,
    frame_ids: Sequence[str],
    version_ids: Iterable[str],
    counter: ReadCounter,
    *,
    full: bool,
) -> list[dict[str, Any]]:
    """Every revision of ``frame_ids`` written by one of ``version_ids``
    (identity fields only unless ``full``)."""
    docs = await store.revisions_of(dataset_id, frame_ids, list(version_ids), full=full)
    counter.resolved += len(docs)
    return docs


def pick_visible(docs: Iterable[dict[str, Any]], lineage: frozenset[str]) -> dict[str, dict[str, Any]]:
    """frame id → the revision visible in ``lineage``."""
    return {doc["frame_id"]: doc for doc in docs if is_visible(doc, lineage)}
