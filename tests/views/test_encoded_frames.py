"""Frames are streamed as the frame codec encodes them from the stored BSON:
every frame IterateFrames, ListViewFrames, ListContexts and ListContextFrames
send is the Python decoding of its stored document (``reference_decoding``),
also for documents of earlier layouts and frames a child version inherits."""

from __future__ import annotations

from typing import Any

from frames.reference_decoding import reference_frame
from frames.test_frame_codec import realistic_frame

from framevault.metadata.db import Database
from framevault.v1 import frame_pb2, view_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .client import Stub, iterate, view_of
from .corpus import Corpus, make_frame, ref

# Documents written before the codec existed, as earlier services stored them: no etag, saved or
# num_frames, int32 times, ints in geometry, empty and null optional parts, a field no frame has.
EARLIER: list[dict[str, Any]] = [
    {"frame_id": "old-1", "context_id": "c-old", "timestamp": 3, "sources": [{"uri": "s3://b/old-1.jpg"}]},
    {"frame_id": "old-2", "context_id": "c-old", "timestamp": 4, "sources": [{"uri": "u", "meta": {}}],
     "rois": [{"labels": ["car"], "box": [1, 2, 3, 4]}, {"labels": [], "keypoints": [1.5, 2], "visibility": [2]}],
     "meta": {}, "blob": None, "legacy": True},
    {"frame_id": "old-3", "context_id": "c-old", "timestamp": 5,
     "meta": {"n": 1, "nested": {"l": [None, 1.5, "x", {}]}, "d": -0.0}},
]


def compare(sent: list[frame_pb2.Frame], stored: dict[str, dict[str, Any]], version_id: str) -> None:
    assert sent
    for frame in sent:
        expected = reference_frame(stored[frame.id], version_id=version_id)
        assert frame.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)


async def test_frames_sent_are_the_decoding_of_their_stored_documents(corpus: Corpus, db: Database,
                                                                       metadata_stub: Stub) -> None:
    parent = await corpus.version(await corpus.dataset())
    written = realistic_frame()
    written.ClearField("num_frames")
    await corpus.put(parent, [written, make_frame("plain", context="c-new", timestamp=1)])
    await db.frames.insert_many([{"dataset_id": parent.dataset_id, "version_id": parent.id, **document}
                                 for document in EARLIER])
    child = await corpus.version(parent.dataset_id, "child", parent=parent)
    stored = {d["frame_id"]: d async for d in db.frames.find({"dataset_id": parent.dataset_id})}
    assert len(stored) == 2 + len(EARLIER)
    for version in (parent, child):
        view = view_of(view_pb2.ViewSelection(version=ref(version)))
        streamed = await iterate(metadata_stub, view, per_message=2)
        assert sorted(streamed.ids) == sorted(stored)
        compare(streamed.frames, stored, version.id)
        page = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view, page_size=100))
        compare(list(page.frames), stored, version.id)
        selection = view_pb2.ViewSelection(version=ref(version))
        contexts = await metadata_stub.ListContexts(ms.ListContextsRequest(selection=selection))
        compare([c.first_frame for c in contexts.contexts], stored, version.id)
        in_context = await metadata_stub.ListContextFrames(ms.ListContextFramesRequest(
            selection=selection, context_id="c-old"))
        assert [f.id for f in in_context.frames] == ["old-1", "old-2", "old-3"]
        compare(list(in_context.frames), stored, version.id)
