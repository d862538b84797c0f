"""A child version reads its parent's frames through the visibility rules:
overridden frames come in the child's revision, hidden ones not at all."""

from __future__ import annotations

from framevault.v1 import metadata_service_pb2 as ms
from framevault.v1 import view_pb2

from .client import Stub, iterate, view_of
from .corpus import Corpus, make_frame, ref, roi


async def test_child_version_iterates_with_overrides_and_hidden_frames(corpus: Corpus, metadata_stub: Stub) -> None:
    dataset = await corpus.dataset()
    parent = await corpus.version(dataset, "v1")
    await corpus.put_many(parent, [make_frame(f"p{i}", context="drive", timestamp=i * 100, rois=[roi("car")])
                                   for i in range(6)])
    child = await corpus.version(dataset, "v2", parent=parent)  # publishes the parent
    assert len(child.lineage) == 2
    # Override p2 (now a truck, later in the drive), delete p4, add n1.
    await corpus.put(child, [make_frame("p2", context="drive", timestamp=999, rois=[roi("truck")]),
                             make_frame("n1", context="drive", timestamp=150, rois=[roi("car")])])
    await corpus.delete(child, "p4")

    for order in (view_pb2.ITERATION_ORDER_SEQUENTIAL, view_pb2.ITERATION_ORDER_RANDOM):
        stream = await iterate(metadata_stub, view_of(view_pb2.ViewSelection(version=ref(child)), order=order))
        frames = {f.id: f for f in stream.frames}
        assert sorted(stream.ids) == ["n1", "p0", "p1", "p2", "p3", "p5"]
        assert frames["p2"].timestamp == 999 and list(frames["p2"].rois[0].labels) == ["truck"]
        assert frames["p2"].saved_in_version == child.id and frames["p0"].saved_in_version == parent.id
        assert all(f.version_id == child.id for f in stream.frames)
        if order == view_pb2.ITERATION_ORDER_SEQUENTIAL:
            assert stream.ids == ["p0", "p1", "n1", "p3", "p5", "p2"]

    # Filters see the child's content; the parent is unchanged.
    cars = await iterate(metadata_stub, view_of(view_pb2.ViewSelection(version=ref(child), query="label:car")))
    assert cars.ids == ["p0", "p1", "n1", "p3", "p5"]
    parent_stream = await iterate(metadata_stub, view_of(view_pb2.ViewSelection(version=ref(parent))))
    assert parent_stream.ids == [f"p{i}" for i in range(6)]
    assert list(parent_stream.frames[2].rois[0].labels) == ["car"]

    counted = await metadata_stub.CountViewFrames(ms.CountViewFramesRequest(
        view=view_of(view_pb2.ViewSelection(version=ref(child)), view_pb2.ViewSelection(version=ref(parent)))))
    assert counted.count == 6 + 6
