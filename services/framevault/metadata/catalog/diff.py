"""Differences between two versions of a dataset, in frame id order.

Let L be the deepest version both lineages share. A frame can differ between
the versions only if a version after L on either side wrote or hid one of its
revisions, so only those frame ids are looked at: the cost follows the size
of the change. Two roots share nothing, and then every frame is a candidate.
See STORAGE.md.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from framevault.common.errors import InvalidArgument
from framevault.metadata.catalog.ancestry import common_prefix_length
from framevault.metadata.catalog.page_tokens import PageTokens, as_text, query_digest
from framevault.metadata.catalog.revisions import ReadCounter, changed_frame_ids, pick_visible, revisions_of
from framevault.metadata.catalog.store import CatalogStore
from framevault.metadata.lineage import resolve_version_document
from framevault.v1 import metadata_service_pb2 as ms

ADDED = ms.FrameChange.KIND_ADDED
CHANGED = ms.FrameChange.KIND_CHANGED
REMOVED = ms.FrameChange.KIND_REMOVED


@dataclass
class FrameDifference:
    frame_id: str
    kind: int
    # The visible revisions (identity fields only unless full documents were asked).
    base: dict[str, Any] | None
    target: dict[str, Any] | None


def classify(base: dict[str, Any] | None, target: dict[str, Any] | None) -> int | None:
    """The kind of change from ``base`` to ``target`` revision, None if equal."""
    if base is None and target is None:
        return None
    if base is None:
        return ADDED
    if target is None:
        return REMOVED
    if base["_id"] == target["_id"] or base["etag"] == target["etag"]:
        return None
    return CHANGED


def change_scope(base_lineage: Sequence[str], target_lineage: Sequence[str]) -> list[str]:
    """The versions whose writes can make ``base`` and ``target`` differ."""
    shared = common_prefix_length(base_lineage, target_lineage)
    return [*base_lineage[shared:], *target_lineage[shared:]]


async def differences(
    store: CatalogStore,
    dataset_id: str,
    base_lineage: Sequence[str],
    target_lineage: Sequence[str],
    *,
    full: bool = False,
    counter: ReadCounter | None = None,
    after: str | None = None,
    batch_frames: int | None = None,
) -> AsyncGenerator[list[FrameDifference], None]:
    """Batches of differences from base to target, ascending by frame id,
    only of frames whose id sorts after ``after`` when it is given; each
    batch resolves at most ``batch_frames`` candidates (default
    ``catalog_diff_batch_frames``).

    An empty ``base_lineage`` is the empty version (everything is ADDED)."""
    counter = counter or ReadCounter()
    batch_frames = batch_frames or store.settings.catalog_diff_batch_frames
    scope = change_scope(base_lineage, target_lineage)
    base_set, target_set = frozenset(base_lineage), frozenset(target_lineage)
    every_version = list(base_set | target_set)
    pending: list[str] = []

    async def resolve(frame_ids: list[str]) -> list[FrameDifference]:
        docs = await revisions_of(store, dataset_id, frame_ids, every_version, counter, full=full)
        in_base, in_target = pick_visible(docs, base_set), pick_visible(docs, target_set)
        out = []
        for frame_id in frame_ids:
            base, target = in_base.get(frame_id), in_target.get(frame_id)
            kind = classify(base, target)
            if kind is not None:
                out.append(FrameDifference(frame_id, kind, base, target))
        return out

    async for frame_id in changed_frame_ids(store, scope, counter, after=after):
        pending.append(frame_id)
        if len(pending) >= batch_frames:
            batch = await resolve(pending)
            pending = []
            if batch:
                yield batch
    if pending:
        batch = await resolve(pending)
        if batch:
            yield batch


@dataclass
class VersionDiff:
    base_id: str
    target_id: str
    batches: AsyncGenerator[list[FrameDifference], None]
    # Changes to send before stopping; None: every change.
    max_changes: int | None
    tokens: PageTokens

    async def changes(self) -> AsyncGenerator[FrameDifference, None]:
        """The differences one by one, ascending by frame id: at most
        ``max_changes`` and then one more when it exists, so the caller
        knows whether the diff continues past them."""
        wanted = None if self.max_changes is None else self.max_changes + 1
        sent = 0
        async with aclosing(self.batches) as batches:
            async for batch in batches:
                for change in batch:
                    if sent == wanted:
                        return
                    yield change
                    sent += 1

    def cursor_after(self, frame_id: str) -> str:
        """The signed position that resumes this diff after ``frame_id``."""
        return self.tokens.encode([frame_id], diff_binding(self.base_id, self.target_id))


def diff_binding(base_id: str, target_id: str) -> str:
    """What a diff cursor is bound to: the two versions (by id) it positions the changes of."""
    return query_digest("diff", base_id, target_id)


class VersionDiffer:
    def __init__(self, store: CatalogStore, tokens: PageTokens):
        self.store = store
        self.tokens = tokens

    async def open(self, request: ms.DiffVersionsRequest) -> VersionDiff:
        """Resolves and checks both versions and the resume position; the differences stream lazily."""
        if request.max_changes < 0:
            raise InvalidArgument.field("max_changes", "must be 0 (every change) or more")
        base = await resolve_version_document(self.store, request.base, "base")
        target = await resolve_version_document(self.store, request.target, "target")
        if base["dataset_id"] != target["dataset_id"]:
            raise InvalidArgument.field("target", "base and target must be versions of one dataset")
        after = None
        if request.resume_cursor:
            after = self.tokens.decode(request.resume_cursor, diff_binding(base["_id"], target["_id"]), [as_text],
                                       field="resume_cursor")[0]
        max_changes = request.max_changes or None
        batch_frames = self.store.settings.catalog_diff_batch_frames
        if max_changes is not None:
            # A page resolves about what it sends (and one more change to know whether the diff goes on).
            batch_frames = min(batch_frames, max_changes + 1)
        batches = differences(self.store, base["dataset_id"], base["lineage"], target["lineage"],
                              full=request.include_frames, after=after, batch_frames=batch_frames)
        return VersionDiff(base["_id"], target["_id"], batches, max_changes, self.tokens)
