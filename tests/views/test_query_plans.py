"""Iteration reads are index scans: no in-memory sort, no rescans on resume."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from framevault.common.config import Settings
from framevault.common.errors import Unavailable
from framevault.metadata.db import Database
from framevault.metadata.views.mongo_store import MongoViewStore
from framevault.metadata.views.plan import FrameScope, Shard, build_plan
from framevault.metadata.views.store import sequential_key
from framevault.v1 import view_pb2

from .client import view_of
from .corpus import Corpus, make_frame, ref, roi


def _stages(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for key in ("inputStage", "queryPlan"):
        if key in plan:
            out += _stages(plan[key])
    for child in plan.get("inputStages", ()):
        out += _stages(child)
    return out


def _winning_stages(explained: dict[str, Any]) -> list[dict[str, Any]]:
    return _stages(explained["queryPlanner"]["winningPlan"])


@pytest.fixture(scope="module")
async def child_selection(corpus: Corpus) -> view_pb2.VersionRef:
    dataset = await corpus.dataset()
    # Other datasets' frames share the index; the scan must stay in this one.
    other = await corpus.version(await corpus.dataset())
    await corpus.put_many(other, [make_frame(f"o{i}", context="a", timestamp=i) for i in range(300)])
    parent = await corpus.version(dataset, "v1")
    await corpus.put_many(parent, [make_frame(f"f{i:04d}", context=f"ctx{i % 20:02d}", timestamp=i // 20,
                                              rois=[roi("car")] * (i % 3)) for i in range(2000)])
    child = await corpus.version(dataset, "v2", parent=parent)
    await corpus.put(child, [make_frame("f0005", context="ctx05", timestamp=1)])
    return ref(child)


@pytest.mark.parametrize("query", ["", "roi:(label:car AND count:[2 TO *]) AND NOT meta.x:*"])
@pytest.mark.parametrize("shard", [Shard(), Shard(1, 3)])
async def test_sequential_batches_scan_the_sequential_index_without_sorting(
    db: Database, child_selection: view_pb2.VersionRef, query: str, shard: Shard
) -> None:
    plan = await build_plan(MongoViewStore(db), view_of(view_pb2.ViewSelection(version=child_selection, query=query)))
    scope = plan.selections[0].scope(shard)
    store = MongoViewStore(db)

    for after in (None, ("ctx07", 50, "f1007")):
        explained = await store.explain_sequential(scope, after, 100)
        stages = _winning_stages(explained)
        scans = [s for s in stages if s["stage"] == "IXSCAN"]
        assert [s["indexName"] for s in scans] == ["sequential_order"], stages
        assert not [s for s in stages if "SORT" in s["stage"]], stages
        assert explained["executionStats"]["nReturned"] > 0


async def test_resuming_seeks_instead_of_rescanning(db: Database, child_selection: view_pb2.VersionRef) -> None:
    plan = await build_plan(MongoViewStore(db), view_of(view_pb2.ViewSelection(version=child_selection)))
    scope = plan.selections[0].scope(Shard())
    store = MongoViewStore(db)
    first = await store.sequential_batch(scope, None, 1000, None)
    after = sequential_key(first[-1])

    explained = await store.explain_sequential(scope, after, 50)

    stats = explained["executionStats"]
    assert stats["nReturned"] == 50
    # The scan starts at the last key: it examines about the returned frames
    # (plus the child's hidden revision), not the thousand before them.
    assert stats["totalKeysExamined"] <= 52


async def test_random_buckets_scan_the_shuffle_index(db: Database, child_selection: view_pb2.VersionRef) -> None:
    plan = await build_plan(MongoViewStore(db), view_of(view_pb2.ViewSelection(version=child_selection, query="label:car")))
    scope = plan.selections[0].scope(Shard(0, 2))
    explained = await MongoViewStore(db).explain_bucket(scope, 0, 1 << 61)

    stages = _winning_stages(explained)
    scans = [s for s in stages if s["stage"] == "IXSCAN"]
    assert [s["indexName"] for s in scans] == ["shuffle_order"]
    assert not [s for s in stages if "SORT" in s["stage"]]
    assert explained["executionStats"]["totalKeysExamined"] < 2000 // 4 * 1.3


async def test_missing_indexes_are_unavailable_not_internal(settings: Settings) -> None:
    fresh = Database(dataclasses.replace(settings, mongodb_database=settings.mongodb_database + "_noindex"))
    try:
        await fresh.frames.insert_one({"dataset_id": "d", "frame_id": "f"})
        scope = FrameScope("d", {"dataset_id": "d"})
        with pytest.raises(Unavailable):
            await MongoViewStore(fresh).sequential_batch(scope, None, 10, None)
        with pytest.raises(Unavailable):
            await MongoViewStore(fresh).bucket_members(scope, 0, None)
    finally:
        await fresh.client.drop_database(fresh.settings.mongodb_database)
        await fresh.close()
