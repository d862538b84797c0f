"""Three-way merge of two published versions into a new draft.

The result M inherits ``ours`` copy-free (lineage(ours) + [M]); the changes
``theirs`` made since the merge base are written into M as revisions with the
write rules of STORAGE.md. M's revisions are written *before* its version
document exists, so no reader sees a half-merged version: until the final
insert no lineage names M. A failure or a lost race purges them again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import bson

from framevault.api.metadata_values import metadata_to_dict
from framevault.common.errors import (
    Aborted,
    AlreadyExists,
    DuplicateKey,
    FailedPrecondition,
    FieldErrors,
    PreconditionViolation,
)
from framevault.metadata.catalog.ancestry import merge_base
from framevault.metadata.catalog.diff import REMOVED, FrameDifference, differences
from framevault.metadata.catalog.documents import mask_labels_to_docs, new_id, new_version_document
from framevault.metadata.catalog.revisions import ReadCounter, pick_visible, revisions_of
from framevault.metadata.catalog.store import CatalogStore
from framevault.metadata.catalog.validation import check_description, check_mask_labels, check_meta, check_name
from framevault.metadata.lineage import PUBLISHED, resolve_version_document
from framevault.v1 import metadata_service_pb2 as ms

MAX_LISTED_CONFLICTS = 1000

FAIL, OURS, THEIRS = ms.MERGE_STRATEGY_FAIL, ms.MERGE_STRATEGY_OURS, ms.MERGE_STRATEGY_THEIRS


@dataclass
class Conflict:
    frame_id: str
    ours: int
    theirs: int


@dataclass
class MergeOutcome:
    version: dict[str, Any] | None
    merge_base_id: str
    conflicts: list[Conflict] = field(default_factory=list)
    conflict_count: int = 0
    applied_changes: int = 0


def same_end_state(ours: FrameDifference, theirs: FrameDifference) -> bool:
    """Both sides made the frame end up identical: no conflict."""
    if ours.kind == REMOVED or theirs.kind == REMOVED:
        return ours.kind == theirs.kind
    assert ours.target is not None and theirs.target is not None
    return bool(ours.target["etag"] == theirs.target["etag"])


def decide(ours: FrameDifference | None, theirs: FrameDifference, strategy: int) -> tuple[bool, Conflict | None]:
    """Whether theirs' change goes into the result, and the conflict if any."""
    if ours is None:
        return True, None
    if same_end_state(ours, theirs):
        return False, None
    return strategy == THEIRS, Conflict(theirs.frame_id, ours.kind, theirs.kind)


async def _flatten(batches: AsyncIterator[list[FrameDifference]]) -> AsyncIterator[FrameDifference]:
    async for batch in batches:
        for item in batch:
            yield item


async def _paired(
    ours: AsyncIterator[FrameDifference], theirs: AsyncIterator[FrameDifference]
) -> AsyncIterator[tuple[FrameDifference | None, FrameDifference]]:
    """Theirs' changes in frame id order, each with ours' change of that frame."""
    ours_head = await anext(ours, None)
    async for change in theirs:
        while ours_head is not None and ours_head.frame_id < change.frame_id:
            ours_head = await anext(ours, None)
        if ours_head is not None and ours_head.frame_id == change.frame_id:
            yield ours_head, change
        else:
            yield None, change


class Merger:
    def __init__(self, store: CatalogStore):
        self.store = store

    async def merge(self, request: ms.MergeVersionsRequest) -> MergeOutcome:
        errors = FieldErrors()
        check_name(request.version.name, "version.name", errors)
        check_description(request.version.description, "version.description", errors)
        check_meta(request.version.meta, "version.meta", errors)
        check_mask_labels(request.version.mask_labels, "version.mask_labels", errors)
        if request.strategy not in (ms.MERGE_STRATEGY_UNSPECIFIED, FAIL, OURS, THEIRS):
            errors.add("strategy", "unknown merge strategy")
        errors.raise_if_any()
        strategy = request.strategy or FAIL
        ours = await resolve_version_document(self.store, request.ours, "ours")
        theirs = await resolve_version_document(self.store, request.theirs, "theirs")
        if ours["dataset_id"] != theirs["dataset_id"]:
            raise FailedPrecondition(
                "ours and theirs belong to different datasets",
                [PreconditionViolation("SAME_DATASET", theirs["_id"], "merge versions of one dataset")],
                reason="DIFFERENT_DATASETS",
            )
        for side, doc in (("ours", ours), ("theirs", theirs)):
            if doc["status"] != PUBLISHED:
                raise FailedPrecondition(
                    f"{side} version {doc['name']!r} ({doc['_id']}) is a draft; only published versions merge",
                    [PreconditionViolation("VERSION_STATUS", doc["_id"], "merge inputs must be published")],
                    reason="MERGE_INPUT_NOT_PUBLISHED",
                )
        if await self.store.find_version(dataset_id=ours["dataset_id"], name=request.version.name):
            raise AlreadyExists("version", request.version.name, field="version.name")

        graph = await self.store.version_graph(ours["dataset_id"])
        parents = {v["_id"]: v["parent_ids"] for v in graph}
        base_id = merge_base(ours["_id"], theirs["_id"], parents, {v["_id"]: v["create_time"] for v in graph})
        base_lineage: list[str] = next((v["lineage"] for v in graph if v["_id"] == base_id), [])
        outcome = MergeOutcome(version=None, merge_base_id=base_id or "")

        def changes(side: dict[str, Any], full: bool) -> AsyncIterator[FrameDifference]:
            return _flatten(differences(self.store, ours["dataset_id"], base_lineage, side["lineage"], full=full))

        if strategy == FAIL:
            async for ours_change, theirs_change in _paired(changes(ours, False), changes(theirs, False)):
                _, conflict = decide(ours_change, theirs_change, strategy)
                if conflict is not None:
                    self._record(outcome, conflict)
            if outcome.conflict_count:
                return outcome

        merged_id = new_id()
        try:
            delta = await self._materialise(merged_id, ours, changes(ours, False), changes(theirs, True), strategy,
                                            outcome)
            doc = new_version_document(
                version_id=merged_id,
                dataset_id=ours["dataset_id"],
                name=request.version.name,
                description=request.version.description,
                parents=[ours, theirs],
                meta=metadata_to_dict(request.version.meta),
                mask_labels=mask_labels_to_docs(request.version.mask_labels) or ours.get("mask_labels", []),
                frame_count=int(ours["frame_count"]) + delta,
            )
            await self.store.insert_version(doc)
        except DuplicateKey as exc:
            await self._discard(merged_id)
            raise Aborted(
                f"version {request.version.name!r} was created concurrently; nothing was merged", reason="NAME_RACE"
            ) from exc
        except BaseException:
            # Also when the caller went away mid-merge (cancellation): the
            # shielded clean-up finishes even if the handler is cancelled again.
            await asyncio.shield(self._discard(merged_id))
            raise
        outcome.version = doc
        return outcome

    @staticmethod
    def _record(outcome: MergeOutcome, conflict: Conflict) -> None:
        outcome.conflict_count += 1
        if len(outcome.conflicts) < MAX_LISTED_CONFLICTS:
            outcome.conflicts.append(conflict)

    async def _materialise(
        self,
        merged_id: str,
        ours: dict[str, Any],
        ours_changes: AsyncIterator[FrameDifference],
        theirs_changes: AsyncIterator[FrameDifference],
        strategy: int,
        outcome: MergeOutcome,
    ) -> int:
        """Writes theirs' accepted changes as revisions of ``merged_id``; the
        change of the frame count relative to ours."""
        delta = 0
        batch: list[FrameDifference] = []
        async for ours_change, theirs_change in _paired(ours_changes, theirs_changes):
            take, conflict = decide(ours_change, theirs_change, strategy)
            if conflict is not None:
                self._record(outcome, conflict)
            if take:
                batch.append(theirs_change)
            if len(batch) >= self.store.settings.catalog_merge_batch_frames:
                delta += await self._apply(merged_id, ours, batch)
                outcome.applied_changes += len(batch)
                batch = []
        if batch:
            delta += await self._apply(merged_id, ours, batch)
            outcome.applied_changes += len(batch)
        return delta

    async def _apply(self, merged_id: str, ours: dict[str, Any], batch: list[FrameDifference]) -> int:
        """The write rules for M = child of ours, for a batch of frames."""
        ours_lineage = frozenset(ours["lineage"])
        visible = pick_visible(
            await revisions_of(self.store, ours["dataset_id"], [c.frame_id for c in batch], ours_lineage, ReadCounter(),
                               full=False),
            ours_lineage,
        )
        saved = bson.Int64(int(time.time() * 1000))
        inserts: list[dict[str, Any]] = []
        to_hide: list[Any] = []
        delta = 0
        for change in batch:
            current = visible.get(change.frame_id)
            if current is not None:
                to_hide.append(current["_id"])
            if change.kind == REMOVED:
                if current is not None:
                    delta -= 1
                continue
            assert change.target is not None
            revision = {k: v for k, v in change.target.items() if k not in ("_id", "hidden_in")}
            revision.update(version_id=merged_id, saved=saved)
            inserts.append(revision)
            if current is None:
                delta += 1
        if inserts:
            await self.store.insert_revisions(inserts)
        if to_hide:
            await self.store.hide_revisions(to_hide, merged_id)
        return delta

    async def _discard(self, merged_id: str) -> None:
        await self.store.purge_revisions(version_id=merged_id)
        await self.store.unhide_everywhere(merged_id)

