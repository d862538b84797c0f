"""ListViewFrames ordered by a frame-metadata key (ITERATION_ORDER_METADATA, view.proto MetadataOrder):
mixed value types in MongoDB's order, missing keys last both ways, ties by frame id, keyset pages that
neither skip nor repeat, inherited frames, key paths checked as the query language checks them, and the
server's sort time limit."""

from __future__ import annotations

import dataclasses
from typing import Any

import grpc
import pytest

from framevault.common.config import Settings
from framevault.common.errors import ResourceExhausted
from framevault.metadata.db import Database
from framevault.metadata.views.mongo_store import MongoViewStore
from framevault.metadata.views.plan import UNSHARDED, build_plan
from framevault.metadata.views.service import ViewService
from framevault.v1 import frame_pb2, view_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .client import Stub, iterate, view_of, violated_fields
from .corpus import Corpus, make_frame, ref
from .test_forged_cursors import resigned

METADATA = view_pb2.ITERATION_ORDER_METADATA

# Frame id -> value of meta.v (absent: the frame lacks the key).
MIXED: dict[str, Any] = {
    "n": None, "i-neg": -1, "d25": 2.5, "i3": 3, "d3": 3.0, "i-big": 10**12,
    "s-b": "b", "s-a": "a", "s-empty": "", "s-uni": "é",
    "o-x": {"x": 1}, "o-a": {"a": 2}, "l-e": [], "l-01": [0, 5], "l-12": [1, 2],
    "b-f": False, "b-t": True,
}
# null < numbers (by value, int and double alike) < strings (UTF-8 bytes) < objects < lists < booleans;
# equal values (3 and 3.0) by frame id; frames without the key last.
ASCENDING = ["n", "i-neg", "d25", "d3", "i3", "i-big", "s-empty", "s-a", "s-b", "s-uni",
             "o-a", "o-x", "l-e", "l-01", "l-12", "b-f", "b-t", "m0", "m1"]
DESCENDING = ["b-t", "b-f", "l-12", "l-01", "l-e", "o-x", "o-a", "s-uni", "s-b", "s-a", "s-empty",
              "i-big", "d3", "i3", "d25", "i-neg", "n", "m0", "m1"]


def metadata_view(selection: view_pb2.ViewSelection, key: str, *, descending: bool = False,
                  **options: Any) -> view_pb2.View:
    return view_of(selection, order=METADATA,
                   metadata_order=view_pb2.MetadataOrder(key=key, descending=descending), **options)


async def pages(stub: Stub, view: view_pb2.View, page_size: int) -> tuple[list[str], int]:
    """Every frame id of the view, page by page, and the number of pages."""
    listed: list[str] = []
    token = ""
    count = 0
    while True:
        page = await stub.ListViewFrames(ms.ListViewFramesRequest(view=view, page_size=page_size, page_token=token))
        listed += [frame.id for frame in page.frames]
        count += 1
        token = page.next_page_token
        if not token:
            return listed, count


@pytest.fixture(scope="module")
async def mixed(corpus: Corpus) -> view_pb2.ViewSelection:
    version = await corpus.version(await corpus.dataset())
    frames = [make_frame(frame_id, context=f"c{i % 3}", timestamp=i, meta={"v": value, "w": {"depth": -i}})
              for i, (frame_id, value) in enumerate(MIXED.items())]
    frames += [make_frame("m1", meta={"other": 1}), make_frame("m0")]
    await corpus.put_many(version, frames)
    return view_pb2.ViewSelection(version=ref(version))


@pytest.mark.parametrize(("descending", "expected"), [(False, ASCENDING), (True, DESCENDING)])
async def test_values_of_every_type_in_mongodb_order_and_missing_keys_last(
        mixed: view_pb2.ViewSelection, metadata_stub: Stub, descending: bool, expected: list[str]) -> None:
    view = metadata_view(mixed, "meta.v", descending=descending)
    page = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view, page_size=100))
    assert [frame.id for frame in page.frames] == expected
    assert page.next_page_token == ""
    # Every page size gives the same order: a page token resumes exactly after the last frame sent.
    for size in (1, 2, 3, 5):
        assert await pages(metadata_stub, view, size) == (expected, -(-len(expected) // size))


async def test_a_nested_key_and_the_query_languages_spellings(mixed: view_pb2.ViewSelection,
                                                               metadata_stub: Stub) -> None:
    # meta.w.depth is minus the frame's position in MIXED: ascending is MIXED reversed.
    for key in ("meta.w.depth", "metadata.w.depth", "meta_data.w.depth"):
        listed, _ = await pages(metadata_stub, metadata_view(mixed, key), 7)
        assert listed == [*reversed(MIXED), "m0", "m1"]


async def test_the_query_narrows_and_max_frames_ends_the_pages(mixed: view_pb2.ViewSelection,
                                                              metadata_stub: Stub) -> None:
    # The first six frames: meta.w.depth 0 to -5.
    selection = view_pb2.ViewSelection(version=mixed.version, query="meta.w.depth:[-5 TO 0]")
    assert (await pages(metadata_stub, metadata_view(selection, "meta.v", descending=True), 2))[0] == [
        "i-big", "d3", "i3", "d25", "i-neg", "n"]
    limited = metadata_view(mixed, "meta.v", max_frames=5)
    assert await pages(metadata_stub, limited, 2) == (ASCENDING[:5], 3)


async def test_ties_across_page_boundaries_neither_skip_nor_repeat(corpus: Corpus, metadata_stub: Stub) -> None:
    version = await corpus.version(await corpus.dataset())
    # Runs of equal values (ints and doubles among them) much longer than a page, and stored nulls.
    speeds: dict[str, Any] = {f"t{i:03d}": None if i % 11 == 0 else [7, 7.0, 30, 30, 30][i % 5] for i in range(120)}
    await corpus.put_many(version, [make_frame(frame_id, meta={"speed": speed}) for frame_id, speed in speeds.items()])
    selection = view_pb2.ViewSelection(version=ref(version))

    def run(value: Any) -> list[str]:
        return [frame_id for frame_id in sorted(speeds) if speeds[frame_id] == value]

    for descending, expected in ((False, run(None) + run(7) + run(30)), (True, run(30) + run(7) + run(None))):
        for size in (4, 7, 13):
            listed, count = await pages(metadata_stub, metadata_view(selection, "meta.speed",
                                                                     descending=descending), size)
            assert listed == expected
            assert count == -(-120 // size)


async def test_a_child_version_sorts_its_inherited_frames_with_its_own(corpus: Corpus, metadata_stub: Stub) -> None:
    dataset = await corpus.dataset()
    parent = await corpus.version(dataset, "v1")
    await corpus.put_many(parent, [make_frame(f"p{i}", context="drive", timestamp=i, meta={"rank": i})
                                   for i in range(1, 9)])
    child = await corpus.version(dataset, "v2", parent=parent)  # publishes the parent, copies nothing
    await corpus.put(child, [make_frame("p3", context="drive", timestamp=3, meta={"rank": 100}),
                             make_frame("c0", context="drive", timestamp=0, meta={"rank": 0}),
                             make_frame("c-none", context="drive", timestamp=9)])
    await corpus.delete(child, "p5")

    listed, _ = await pages(metadata_stub, metadata_view(view_pb2.ViewSelection(version=ref(child)), "meta.rank"), 3)
    assert listed == ["c0", "p1", "p2", "p4", "p6", "p7", "p8", "p3", "c-none"]
    page = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(
        view=metadata_view(view_pb2.ViewSelection(version=ref(child)), "meta.rank", descending=True), page_size=2))
    assert [(f.id, f.saved_in_version, f.version_id) for f in page.frames] == [
        ("p3", child.id, child.id), ("p8", parent.id, child.id)]
    # The parent is unchanged.
    listed, _ = await pages(metadata_stub, metadata_view(view_pb2.ViewSelection(version=ref(parent)), "meta.rank"), 4)
    assert listed == [f"p{i}" for i in range(1, 9)]


@pytest.mark.parametrize("key", [
    "", "speed", "meta", "meta.", "meta.a..b", "meta.a.", "meta.$where", "meta.a.$gt", "meta.a\x00b",
    "meta." + "k" * 257, "meta." + ".".join(["a"] * 21), "label", "source.width",
])
async def test_bad_key_paths_are_invalid_argument_naming_the_key(mixed: view_pb2.ViewSelection,
                                                                 metadata_stub: Stub, key: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=metadata_view(mixed, key)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["view.metadata_order.key"]


async def test_the_order_and_its_key_go_together_and_read_one_selection(mixed: view_pb2.ViewSelection,
                                                                        metadata_stub: Stub) -> None:
    cases = [
        (view_of(mixed, order=view_pb2.ITERATION_ORDER_SEQUENTIAL,
                 metadata_order=view_pb2.MetadataOrder(key="meta.v")), ["view.metadata_order"]),
        (view_of(mixed, metadata_order=view_pb2.MetadataOrder(key="meta.v")), ["view.metadata_order"]),
        (view_of(mixed, order=METADATA), ["view.metadata_order.key"]),
        (view_of(mixed, mixed, order=METADATA, metadata_order=view_pb2.MetadataOrder(key="meta.v")),
         ["view.selections"]),
    ]
    for view, fields in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(caught.value) == fields


async def test_iterate_frames_refuses_the_metadata_order_naming_view_order(mixed: view_pb2.ViewSelection,
                                                                           metadata_stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await iterate(metadata_stub, metadata_view(mixed, "meta.v"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["view.order"]
    # Counting ignores the order.
    counted = await metadata_stub.CountViewFrames(ms.CountViewFramesRequest(view=metadata_view(mixed, "meta.v")))
    assert counted.count == len(ASCENDING)


async def test_page_tokens_are_bound_to_the_view_and_checked(mixed: view_pb2.ViewSelection, metadata_stub: Stub,
                                                             settings: Settings) -> None:
    view = metadata_view(mixed, "meta.v")
    first = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view, page_size=3))
    assert first.next_page_token
    other = metadata_view(mixed, "meta.v", descending=True)
    forged = [
        resigned(settings, first.next_page_token, lambda state: state.update(after=[2, None, "x"])),
        resigned(settings, first.next_page_token, lambda state: state.update(after=[1, 5, "x"])),
        resigned(settings, first.next_page_token, lambda state: state.update(after=[0, 5, ""])),
        resigned(settings, first.next_page_token, lambda state: state.update(after=[0, 2**64, "x"])),
        resigned(settings, first.next_page_token, lambda state: state.update(n=0)),
        resigned(settings, first.next_page_token, lambda state: state.pop("after")),
    ]
    for view_sent, token in [(other, first.next_page_token), *((view, token) for token in forged)]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view_sent, page_token=token))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(caught.value) == ["page_token"]
    # A value that looks like an operator stays a value: after the object {"$gt": ""} come the lists.
    operator_like = resigned(settings, first.next_page_token,
                             lambda state: state.update(after=[0, {"$gt": ""}, "zz"]))
    rest = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view, page_token=operator_like,
                                                                        page_size=100))
    assert [f.id for f in rest.frames] == ASCENDING[ASCENDING.index("l-e"):]


async def test_a_sort_past_the_time_limit_is_resource_exhausted_naming_the_setting(
        corpus: Corpus, db: Database, settings: Settings) -> None:
    version = await corpus.version(await corpus.dataset())
    await corpus.put_many(version, [make_frame(f"f{i:05d}", meta={"v": (i * 7919) % 10007, "pad": "x" * 200})
                                    for i in range(20_000)])
    tiny = dataclasses.replace(settings, view_sort_max_time_ms=1)
    service = ViewService(MongoViewStore(db), tiny)
    request = ms.ListViewFramesRequest(view=metadata_view(view_pb2.ViewSelection(version=ref(version)), "meta.v"))
    with pytest.raises(ResourceExhausted) as caught:
        await service.list_page(request)
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.reason == "SORT_TIME_LIMIT"
    assert "view_sort_max_time_ms" in caught.value.message and "meta.v" in caught.value.message
    # Within the default limit the same page is answered.
    page, token = await ViewService(MongoViewStore(db), settings).list_page(request)
    assert [frame_pb2.Frame.FromString(frame).id for frame in page.frames][:2] == ["f00000", "f10007"] and token


async def test_a_page_is_one_top_k_sort_of_the_versions_revisions(mixed: view_pb2.ViewSelection, db: Database,
                                                                  corpus: Corpus) -> None:
    """MongoDB keeps only the page's documents while it sorts (the $sort has the page's limit), and
    reads the version's revisions through an index, not the whole collection."""
    store = MongoViewStore(db)
    plan = await build_plan(store, metadata_view(mixed, "meta.v"))
    assert plan.metadata_order is not None
    explained = await store.explain_metadata_order(plan.selections[0].scope(UNSHARDED), plan.metadata_order,
                                                   (0, 3, "i3"), 26)
    text = repr(explained)
    assert "'limit': 26" in text or "'limitAmount': 26" in text, text
    assert "IXSCAN" in text and "COLLSCAN" not in text, text
