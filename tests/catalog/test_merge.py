"""MergeVersions: three-way merges against the nearest common ancestor."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from grpc import aio
from support import frame_to_document

from framevault.v1 import dataset_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import (
    by_id,
    child_of,
    database_state,
    delete_frames,
    expect_invalid,
    expect_unchanged,
    make_frame,
    new_dataset,
    publish,
    unique_name,
    violated_fields,
    visible_frames,
    write_frames,
)

ADDED, CHANGED, REMOVED = ms.FrameChange.KIND_ADDED, ms.FrameChange.KIND_CHANGED, ms.FrameChange.KIND_REMOVED
FAIL, OURS, THEIRS = ms.MERGE_STRATEGY_FAIL, ms.MERGE_STRATEGY_OURS, ms.MERGE_STRATEGY_THEIRS


async def merge(stub, ours: str, theirs: str, strategy=ms.MERGE_STRATEGY_UNSPECIFIED, name: str | None = None):
    return await stub.MergeVersions(ms.MergeVersionsRequest(
        ours=by_id(ours), theirs=by_id(theirs), strategy=strategy,
        version=dataset_pb2.Version(name=name or unique_name("merged"), description="merge")))


async def branches(stub, db, ours_edits, theirs_edits, base_frames=8):
    """A published base, and two published children changed by the edit functions."""
    _, current = await new_dataset(stub)
    await write_frames(stub, current.id, [make_frame(f"f{i}") for i in range(base_frames)])
    base = await publish(stub, current.id)
    sides = []
    for edits in (ours_edits, theirs_edits):
        child = await child_of(stub, base)
        await edits(child.id)
        sides.append(await publish(stub, child.id))
    return base, sides[0], sides[1]


async def expected_frames(db, ours_id: str, theirs_id: str, take_from_theirs: set[str], removed: set[str]):
    ours, theirs = await visible_frames(db, ours_id), await visible_frames(db, theirs_id)
    merged = {k: v for k, v in ours.items() if k not in removed}
    merged.update({k: theirs[k] for k in take_from_theirs})
    return merged


async def test_clean_merge_takes_both_sides(metadata_stub, db):
    async def ours_edits(v):
        await write_frames(metadata_stub, v, [make_frame("f1", note="#ours"), make_frame("ours-new")])
        await delete_frames(metadata_stub, v, ["f2"])

    async def theirs_edits(v):
        await write_frames(metadata_stub, v, [make_frame("f3", note="#theirs"), make_frame("theirs-new")])
        await delete_frames(metadata_stub, v, ["f4"])

    base, ours, theirs = await branches(metadata_stub, db, ours_edits, theirs_edits)
    result = await merge(metadata_stub, ours.id, theirs.id)
    assert (result.conflict_count, list(result.conflicts), result.applied_changes) == (0, [], 3)
    assert result.merge_base_id == base.id
    merged = result.version
    assert list(merged.parent_ids) == [ours.id, theirs.id] and merged.status == dataset_pb2.VERSION_STATUS_DRAFT
    frames = await visible_frames(db, merged.id)
    assert frames == await expected_frames(db, ours.id, theirs.id, {"f3", "theirs-new"}, {"f4"})
    assert merged.frame_count == len(frames) == 8
    # Both inputs are untouched.
    assert set(await visible_frames(db, theirs.id)) == {f"f{i}" for i in range(8)} - {"f4"} | {"theirs-new"}
    assert set(await visible_frames(db, ours.id)) == {f"f{i}" for i in range(8)} - {"f2"} | {"ours-new"}
    # Seen from ours, the merge added exactly theirs' changes.
    changes = [c async for m in metadata_stub.DiffVersions(ms.DiffVersionsRequest(
        base=by_id(ours.id), target=by_id(merged.id))) for c in m.changes]
    assert [(c.frame_id, c.kind) for c in changes] == [("f3", CHANGED), ("f4", REMOVED), ("theirs-new", ADDED)]


async def conflicting_branches(stub, db):
    async def ours_edits(v):
        await write_frames(stub, v, [make_frame("f1", note="#ours"), make_frame("f5", note="#ours"),
                                   make_frame("f6", note="#same"), make_frame("both-new", note="#ours"),
                                   make_frame("f0", note="#ours-only")])
        await delete_frames(stub, v, ["f7", "f3"])

    async def theirs_edits(v):
        await write_frames(stub, v, [make_frame("f1", note="#theirs"), make_frame("f6", note="#same"),
                                   make_frame("both-new", note="#theirs"), make_frame("f2", note="#theirs-only"),
                                   make_frame("f3", note="#theirs")])
        await delete_frames(stub, v, ["f5", "f7"])

    return await branches(stub, db, ours_edits, theirs_edits)


EXPECTED_CONFLICTS = [("both-new", ADDED, ADDED), ("f1", CHANGED, CHANGED), ("f3", REMOVED, CHANGED),
                      ("f5", CHANGED, REMOVED)]


async def test_fail_strategy_reports_conflicts_and_writes_nothing(metadata_stub, db):
    _, ours, theirs = await conflicting_branches(metadata_stub, db)
    before = await database_state(db)
    for strategy in (ms.MERGE_STRATEGY_UNSPECIFIED, FAIL):
        result = await merge(metadata_stub, ours.id, theirs.id, strategy)
        assert not result.HasField("version") and result.conflict_count == 4
        assert [(c.frame_id, c.ours, c.theirs) for c in result.conflicts] == EXPECTED_CONFLICTS
    assert await database_state(db) == before


@pytest.mark.parametrize("strategy", [OURS, THEIRS])
async def test_ours_and_theirs_strategies_resolve_conflicts(metadata_stub, db, strategy):
    _, ours, theirs = await conflicting_branches(metadata_stub, db)
    result = await merge(metadata_stub, ours.id, theirs.id, strategy)
    assert result.conflict_count == 4
    assert [(c.frame_id, c.ours, c.theirs) for c in result.conflicts] == EXPECTED_CONFLICTS
    frames = await visible_frames(db, result.version.id)
    if strategy == OURS:
        expected = await expected_frames(db, ours.id, theirs.id, {"f2"}, set())
        assert result.applied_changes == 1
    else:
        expected = await expected_frames(db, ours.id, theirs.id, {"f2", "f1", "both-new", "f3"}, {"f5"})
        assert result.applied_changes == 5
    assert frames == expected
    assert result.version.frame_count == len(frames)


async def test_merge_base_follows_the_parent_dag(metadata_stub, db):
    async def ours_edits(v):
        await write_frames(metadata_stub, v, [make_frame("f1", note="#ours")])

    async def theirs_edits(v):
        await write_frames(metadata_stub, v, [make_frame("f2", note="#theirs")])

    base, ours, theirs = await branches(metadata_stub, db, ours_edits, theirs_edits)
    first = await merge(metadata_stub, ours.id, theirs.id)
    merged = await publish(metadata_stub, first.version.id)
    # Theirs goes on; merging again must see only what came after the first merge.
    later = await child_of(metadata_stub, theirs)
    await write_frames(metadata_stub, later.id, [make_frame("f2", note="#theirs-again"), make_frame("f3", note="#later")])
    later = await publish(metadata_stub, later.id)
    second = await merge(metadata_stub, merged.id, later.id)
    assert second.merge_base_id == theirs.id
    assert (second.conflict_count, second.applied_changes) == (0, 2)
    frames = await visible_frames(db, second.version.id)
    later_frames = await visible_frames(db, later.id)
    assert frames["f2"] == later_frames["f2"] and frames["f3"] == later_frames["f3"]
    assert frames["f1"] == (await visible_frames(db, ours.id))["f1"]
    # Merging the other way round finds the same base and the same frames.
    mirrored = await merge(metadata_stub, later.id, merged.id)
    assert mirrored.merge_base_id == theirs.id and mirrored.conflict_count == 0
    assert await visible_frames(db, mirrored.version.id) == frames


async def test_merge_of_unrelated_roots_conflicts_on_shared_ids(metadata_stub, db):
    dataset, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [make_frame("a"), make_frame("b"), make_frame("c", note="#1")])
    ours = await publish(metadata_stub, current.id)
    other = await metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_pb2.DatasetRef(id=dataset.id), version=dataset_pb2.Version(name="other")))
    await write_frames(metadata_stub, other.id, [make_frame("b"), make_frame("c", note="#2"), make_frame("d")])
    theirs = await publish(metadata_stub, other.id)
    result = await merge(metadata_stub, ours.id, theirs.id, THEIRS)
    assert result.merge_base_id == ""
    assert [(c.frame_id, c.ours, c.theirs) for c in result.conflicts] == [("c", ADDED, ADDED)]
    assert set(await visible_frames(db, result.version.id)) == {"a", "b", "c", "d"}
    assert result.version.frame_count == 4


async def test_merge_bad_input_changes_nothing(metadata_stub, db):
    base, ours, theirs = await branches(metadata_stub, db, lambda v: _noop(), lambda v: _noop(), base_frames=2)
    draft = await child_of(metadata_stub, base)
    _, foreign_current = await new_dataset(metadata_stub)
    foreign = await publish(metadata_stub, foreign_current.id)
    for bad_ours, bad_theirs in ((draft.id, theirs.id), (ours.id, draft.id), (ours.id, foreign.id)):
        await expect_unchanged(db, merge(metadata_stub, bad_ours, bad_theirs), grpc.StatusCode.FAILED_PRECONDITION)
    taken = await expect_unchanged(db, merge(metadata_stub, ours.id, theirs.id, name=draft.name),
                                   grpc.StatusCode.ALREADY_EXISTS)
    assert violated_fields(taken) == ["version.name"]
    await expect_invalid(db, metadata_stub.MergeVersions(ms.MergeVersionsRequest(
        ours=by_id(ours.id), theirs=by_id(theirs.id))), "version.name")
    await expect_invalid(db, metadata_stub.MergeVersions(ms.MergeVersionsRequest(
        ours=by_id(ours.id), theirs=by_id(theirs.id), strategy=42, version=dataset_pb2.Version(name="m"))),
        "strategy")
    await expect_unchanged(db, merge(metadata_stub, ours.id, "0123456789abcdef01234567"), grpc.StatusCode.NOT_FOUND)


async def _noop() -> None:
    return None


async def test_a_merge_cut_off_midway_leaves_nothing_behind(metadata_stub, db):
    _, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [make_frame(f"f{i}") for i in range(10)])
    base = await publish(metadata_stub, current.id)
    ours = await publish(metadata_stub, (await child_of(metadata_stub, base)).id)
    theirs_draft = await child_of(metadata_stub, base)
    saved = int(time.time() * 1000)
    for start in range(0, 20_000, 5_000):
        await db.frames.insert_many([
            frame_to_document(make_frame(f"t{i:05d}"), dataset_id=base.dataset_id, version_id=theirs_draft.id,
                              saved_ms=saved) for i in range(start, start + 5_000)])
    await db.versions.update_one({"_id": theirs_draft.id}, {"$inc": {"frame_count": 20_000}})
    theirs = await publish(metadata_stub, theirs_draft.id)
    name = unique_name("cut")
    with pytest.raises(aio.AioRpcError) as caught:
        await metadata_stub.MergeVersions(ms.MergeVersionsRequest(
            ours=by_id(ours.id), theirs=by_id(theirs.id), version=dataset_pb2.Version(name=name)), timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The server cleans up after the cancelled call; wait for it.
    existing = {v["_id"] async for v in db.versions.find({"dataset_id": base.dataset_id}, {"_id": 1})}
    for _ in range(100):
        writers = set(await db.frames.distinct("version_id", {"dataset_id": base.dataset_id}))
        markers = set(await db.frames.distinct("hidden_in", {"dataset_id": base.dataset_id}))
        if writers <= existing and markers <= existing:
            break
        await asyncio.sleep(0.1)
    assert writers <= existing and markers <= existing
    assert await db.versions.find_one({"dataset_id": base.dataset_id, "name": name}) is None
