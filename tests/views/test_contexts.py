"""ListContexts and ListContextFrames: one entry per context, keyset pages, seeks on the sequential index."""

from __future__ import annotations

import pytest
from grpc import aio
from support import violated_fields

from framevault.common.errors import FieldErrors
from framevault.metadata.db import Database
from framevault.metadata.views.mongo_store import MongoViewStore
from framevault.metadata.views.plan import Shard, build_selection_plan
from framevault.v1 import metadata_service_pb2 as ms
from framevault.v1 import view_pb2

from .corpus import Corpus, make_frame, ref, roi
from .test_query_plans import _winning_stages


@pytest.fixture(scope="module")
async def contexts_version(corpus: Corpus) -> view_pb2.ViewSelection:
    """30 contexts of 7 frames; a child hides one context's first frame and rewrites another's."""
    dataset = await corpus.dataset()
    parent = await corpus.version(dataset, "v1")
    await corpus.put_many(parent, [make_frame(f"c{c:02d}-{t}", context=f"c{c:02d}", timestamp=t * 33,
                                              rois=[roi("car" if c % 3 == 0 else "person")])
                                   for c in range(30) for t in range(7)])
    child = await corpus.version(dataset, "v2", parent=parent)
    await corpus.delete(child, "c04-0")
    await corpus.put(child, [make_frame("c05-3", context="c05", timestamp=500, rois=[roi("bike")])])
    return view_pb2.ViewSelection(version=ref(child))


async def _all_contexts(stub: object, selection: view_pb2.ViewSelection, page_size: int) -> list[ms.FrameContext]:
    contexts: list[ms.FrameContext] = []
    token = ""
    while True:
        page = await stub.ListContexts(ms.ListContextsRequest(  # type: ignore[attr-defined]
            selection=selection, page_size=page_size, page_token=token, projection={"paths": ["rois"]}))
        assert len(page.contexts) <= page_size
        contexts.extend(page.contexts)
        token = page.next_page_token
        if not token:
            return contexts


async def test_contexts_list_one_entry_per_context_in_order_across_pages(
        metadata_stub: object, contexts_version: view_pb2.ViewSelection) -> None:
    contexts = await _all_contexts(metadata_stub, contexts_version, 4)

    assert [c.context_id for c in contexts] == [f"c{c:02d}" for c in range(30)]
    counts = {c.context_id: c.frame_count for c in contexts}
    assert counts["c04"] == 6 and counts["c05"] == 7 and counts["c00"] == 7
    first = {c.context_id: c.first_frame for c in contexts}
    # The child hid c04-0: its context starts at the next frame.
    assert first["c04"].id == "c04-1" and first["c00"].id == "c00-0"
    # The projection applies; id, context and timestamp always come.
    assert first["c00"].rois[0].labels == ["car"] and not first["c00"].sources


async def test_contexts_of_a_query_hold_only_matching_frames(
        metadata_stub: object, contexts_version: view_pb2.ViewSelection) -> None:
    selection = view_pb2.ViewSelection(version=contexts_version.version, query="label:bike")
    contexts = await _all_contexts(metadata_stub, selection, 10)
    assert [(c.context_id, c.frame_count, c.first_frame.id) for c in contexts] == [("c05", 1, "c05-3")]


async def test_context_frames_page_in_timestamp_order_both_ways(
        metadata_stub: object, contexts_version: view_pb2.ViewSelection) -> None:
    for descending, expected in ((False, ["c05-0", "c05-1", "c05-2", "c05-4", "c05-5", "c05-6", "c05-3"]),
                                 (True, ["c05-3", "c05-6", "c05-5", "c05-4", "c05-2", "c05-1", "c05-0"])):
        seen: list[str] = []
        token = ""
        while True:
            page = await metadata_stub.ListContextFrames(ms.ListContextFramesRequest(  # type: ignore[attr-defined]
                selection=contexts_version, context_id="c05", page_size=3, page_token=token, descending=descending))
            seen += [f.id for f in page.frames]
            token = page.next_page_token
            if not token:
                break
        assert seen == expected


async def test_context_frames_start_after_a_frame_find_its_neighbours(
        metadata_stub: object, contexts_version: view_pb2.ViewSelection) -> None:
    async def neighbour(frame_id: str, descending: bool) -> list[str]:
        page = await metadata_stub.ListContextFrames(ms.ListContextFramesRequest(  # type: ignore[attr-defined]
            selection=contexts_version, context_id="c07", page_size=1, start_after_frame_id=frame_id,
            descending=descending, projection={"paths": ["id"]}))
        return [f.id for f in page.frames]

    assert await neighbour("c07-3", False) == ["c07-4"]
    assert await neighbour("c07-3", True) == ["c07-2"]
    assert await neighbour("c07-0", True) == []
    assert await neighbour("c07-6", False) == []


async def test_bad_requests_name_their_field(metadata_stub: object, contexts_version: view_pb2.ViewSelection) -> None:
    version = contexts_version.version
    cases = [
        (metadata_stub.ListContexts(ms.ListContextsRequest(  # type: ignore[attr-defined]
            selection=view_pb2.ViewSelection(version=version, query="label:(car"))), "selection.query"),
        (metadata_stub.ListContexts(ms.ListContextsRequest(  # type: ignore[attr-defined]
            selection=view_pb2.ViewSelection(version=version), page_token="forged.token")), "page_token"),
        (metadata_stub.ListContexts(ms.ListContextsRequest(  # type: ignore[attr-defined]
            selection=view_pb2.ViewSelection(version=version), page_size=-1)), "page_size"),
        (metadata_stub.ListContexts(ms.ListContextsRequest()), "selection.version"),  # type: ignore[attr-defined]
        (metadata_stub.ListContextFrames(ms.ListContextFramesRequest(  # type: ignore[attr-defined]
            selection=view_pb2.ViewSelection(version=version), context_id="c01", projection={"paths": ["nope"]})),
         "projection.paths[0]"),
    ]
    for call, field in cases:
        with pytest.raises(aio.AioRpcError) as failed:
            await call
        assert failed.value.code().name == "INVALID_ARGUMENT", field
        assert field in violated_fields(failed.value), (field, failed.value.details())

    with pytest.raises(aio.AioRpcError) as missing:
        await metadata_stub.ListContextFrames(ms.ListContextFramesRequest(  # type: ignore[attr-defined]
            selection=contexts_version, context_id="c01", start_after_frame_id="c02-1"))
    assert missing.value.code().name == "NOT_FOUND"

    # A token of one context does not continue another.
    page = await metadata_stub.ListContextFrames(ms.ListContextFramesRequest(  # type: ignore[attr-defined]
        selection=contexts_version, context_id="c01", page_size=2))
    with pytest.raises(aio.AioRpcError) as foreign:
        await metadata_stub.ListContextFrames(ms.ListContextFramesRequest(  # type: ignore[attr-defined]
            selection=contexts_version, context_id="c02", page_size=2, page_token=page.next_page_token))
    assert violated_fields(foreign.value) == ["page_token"]


async def test_a_context_seek_starts_past_the_previous_context(
        db: Database, contexts_version: view_pb2.ViewSelection) -> None:
    store = MongoViewStore(db)
    plan = await build_selection_plan(store, contexts_version, view_pb2.View().projection, FieldErrors())
    scope = plan.selections[0].scope(Shard())

    explained = await store.explain_next_context(scope, "c20")

    stages = _winning_stages(explained)
    assert [s["indexName"] for s in stages if s["stage"] == "IXSCAN"] == ["sequential_order"]
    assert not [s for s in stages if "SORT" in s["stage"]]
    # One key: the first of c21, not the 140 keys of the contexts before it.
    assert explained["executionStats"]["totalKeysExamined"] <= 2
