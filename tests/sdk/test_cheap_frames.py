"""Frames read from the service are views over their protos, built frames become protos in one
step, and synchronous iterators take a whole message or page per trip to the SDK's loop, with
the same behaviour as frame-by-frame conversion and iteration."""

from __future__ import annotations

import asyncio
import copy
import mimetypes
import pickle
import re
import threading
from typing import Any
from urllib.parse import urlparse

import pytest

from framevault.sdk import (
    Annotation,
    ClientSettings,
    DatasetVersion,
    DataView,
    FrameGroup,
    SingleFrame,
    aclose,
    configure,
    frame_from_proto,
    runtime,
)
from framevault.sdk.geometry import GEOMETRY_FIELDS
from framevault.sdk.sources import guess_content_type
from framevault.v1 import frame_pb2

from .test_sdk_end_to_end import view_corpus

SINGLE_FRAME_ATTRIBUTES = (
    "source", "width", "height", "timestamp", "context_id", "preview_uri", "preview_content_type", "metadata",
    "masks", "mask_content_types", "id", "content_type", "source_id", "source_timestamp", "source_metadata", "blob",
    "annotations", "stored",
)


def stored_frame() -> frame_pb2.Frame:
    """A frame as the service returns it: every kind of geometry, metadata, masks, output-only fields."""
    frame = SingleFrame(
        source="s3://drives/c1/0007.jpg", width=1920, height=1080, timestamp=231, context_id="c1",
        preview_uri="s3://drives/c1/0007_p.jpg", metadata={"city": "bremen", "n": 7, "speed": 31.5, "day": True,
                                                           "tags": ["a", 1], "nested": {"k": None}},
        mask_source={"semantic": "s3://drives/c1/0007_m.png", "instance": "s3://drives/c1/0007_i.png"},
        id="f-7", source_timestamp=230, source_metadata={"camera": "front"}, blob=b"\x00raw",
    )
    frame.add_annotation(box2d_xywh=(1, 2, 3, 4), labels=["car", "parked"], confidence=0.75, id="t1",
                         metadata={"occluded": False})
    frame.add_annotation(poly2d_xy=[(0, 0), (4, 0), (4, 3)], labels="road")
    frame.add_annotation(ellipse2d_xyrrt=(5, 5, 2, 1, 0.5), labels="sign")
    frame.add_annotation(keypoints=[(1, 2, 2), (3, 4, 1)], labels="person")
    frame.add_annotation(keypoints_3d=[(1, 2, 3)], labels="lidar")
    frame.add_annotation(box3d=(1, 2, 3, 4, 5, 6), labels="truck")
    frame.add_annotation(labels="daytime")
    proto = frame.to_proto()
    proto.rois[0].label_ids.append(3)
    proto.rois[1].sources.append("default")
    proto.dataset_id, proto.version_id, proto.saved_in_version, proto.saved, proto.etag = "d", "v", "v0", 99, "e"
    return proto


def eager_single_frame(proto: frame_pb2.Frame) -> SingleFrame:
    """The SingleFrame of ``proto`` built attribute by attribute through the constructor (the reference)."""
    source = proto.sources[0]
    frame = SingleFrame(
        source=source.uri, width=source.width or None, height=source.height or None, timestamp=proto.timestamp,
        context_id=proto.context_id or None, preview_uri=source.preview.uri or None,
        metadata=_plain(proto.meta), mask_source={m.id: m.uri for m in source.masks}, id=proto.id or None,
        content_type=source.content_type, source_id=source.id,
        source_timestamp=source.timestamp if source.timestamp != proto.timestamp else None,
        source_metadata=_plain(source.meta), blob=bytes(proto.blob) or None,
    )
    frame.preview_content_type = source.preview.content_type
    frame.mask_content_types = {m.id: m.content_type for m in source.masks}
    frame.annotations = [_eager_annotation(roi) for roi in proto.rois]
    frame.stored.dataset_id, frame.stored.version_id = proto.dataset_id, proto.version_id
    frame.stored.saved_in_version, frame.stored.saved, frame.stored.etag = (
        proto.saved_in_version, proto.saved, proto.etag)
    return frame


def _plain(meta: Any) -> dict[str, Any]:
    from framevault.api.metadata_values import metadata_to_dict

    return metadata_to_dict(meta)


def _eager_annotation(roi: frame_pb2.Roi) -> Annotation:
    from framevault.sdk.geometry import read_geometry

    annotation = Annotation(labels=list(roi.labels), confidence=roi.confidence if roi.HasField("confidence") else None,
                            metadata=_plain(roi.meta), id=roi.id or None, sources=list(roi.sources),
                            label_ids=list(roi.label_ids))
    geometry = read_geometry(roi)
    if geometry is not None:
        setattr(annotation, geometry[0], geometry[1])
    return annotation


def attributes(frame: SingleFrame) -> dict[str, Any]:
    return {name: getattr(frame, name) for name in SINGLE_FRAME_ATTRIBUTES}


def test_a_read_frame_has_the_values_of_one_built_from_them() -> None:
    proto = stored_frame()
    read = SingleFrame.from_proto(proto)
    reference = eager_single_frame(proto)
    assert attributes(read) == attributes(reference)
    assert repr(read) == repr(reference)
    assert read.mask_source == reference.mask_source and read.frame_labels == ["daytime"]
    assert read.to_proto() == reference.to_proto()
    assert [a.geometry_kind for a in read.annotations] == [
        "box2d_xywh", "poly2d_xy", "ellipse2d_xyrrt", "keypoints", "keypoints_3d", "box3d", None]


def test_a_read_frame_converts_only_what_is_read() -> None:
    read = SingleFrame.from_proto(stored_frame())
    assert (read.id, read.source) == ("f-7", "s3://drives/c1/0007.jpg")
    assert repr(read).endswith("annotations=7)")
    assert {"annotations", "metadata", "source_metadata", "stored"}.isdisjoint(vars(read))
    first = read.annotations[0]
    assert first.labels == ["car", "parked"]
    assert {"metadata", "box2d_xywh", "label_ids"}.isdisjoint(vars(first))
    assert first.box2d_xywh == (1.0, 2.0, 3.0, 4.0) and first.label_ids == [3]


def test_the_geometry_kind_of_a_read_annotation_converts_no_coordinates() -> None:
    read = SingleFrame.from_proto(stored_frame())
    kinds = [a.geometry_kind for a in read.annotations]
    assert kinds == ["box2d_xywh", "poly2d_xy", "ellipse2d_xyrrt", "keypoints", "keypoints_3d", "box3d", None]
    assert all(set(GEOMETRY_FIELDS).isdisjoint(vars(a)) for a in read.annotations)
    # A geometry assigned (or read) first is what the kind reports.
    box, polygon = read.annotations[0], read.annotations[1]
    box.box2d_xywh = None
    box.poly2d_xy = [[0.0, 0.0, 1.0, 0.0, 1.0, 1.0]]
    assert box.geometry_kind == "poly2d_xy"
    assert polygon.poly2d_xy == [[0.0, 0.0, 4.0, 0.0, 4.0, 3.0]] and polygon.geometry_kind == "poly2d_xy"


def test_assignments_and_mutations_of_a_read_frame_are_what_to_proto_sends() -> None:
    read = SingleFrame.from_proto(stored_frame())
    read.context_id = "elsewhere"  # assigned before it was ever read: the assignment wins
    read.metadata["city"] = "kiel"
    read.annotations[0].labels.append("moving")
    read.annotations[1].poly2d_xy = None
    read.annotations[1].box2d_xywh = (9.0, 9.0, 1.0, 1.0)
    read.add_annotation(labels="night")
    sent = read.to_proto()
    assert sent.context_id == "elsewhere" and sent.id == "f-7" and sent.timestamp == 231
    assert sent.meta.fields["city"].string_value == "kiel"
    assert list(sent.rois[0].labels) == ["car", "parked", "moving"]
    assert sent.rois[1].WhichOneof("geometry") == "box"
    assert list(sent.rois[-1].labels) == ["night"]
    # Output-only fields and label ids are never sent back.
    assert (sent.dataset_id, sent.etag, list(sent.rois[0].label_ids)) == ("", "", [])


def test_a_frame_read_from_a_proto_does_not_follow_later_changes_of_that_proto() -> None:
    proto = stored_frame()
    read, annotation = SingleFrame.from_proto(proto), Annotation.from_proto(proto.rois[0])
    proto.id = "changed"
    proto.rois[0].labels[0] = "changed"
    del proto.rois[1:]
    assert read.id == "f-7" and len(read.annotations) == 7 and read.annotations[0].labels == ["car", "parked"]
    assert annotation.labels == ["car", "parked"]


def test_read_frames_and_annotations_pickle_copy_and_compare_as_built_ones() -> None:
    proto = stored_frame()
    reference = eager_single_frame(proto)
    for clone in (pickle.loads(pickle.dumps(SingleFrame.from_proto(proto))),
                  copy.deepcopy(SingleFrame.from_proto(proto)), copy.copy(SingleFrame.from_proto(proto))):
        assert attributes(clone) == attributes(reference)
    read = SingleFrame.from_proto(proto)
    assert read.annotations == reference.annotations
    assert pickle.loads(pickle.dumps(read.annotations)) == reference.annotations
    assert Annotation.from_proto(proto.rois[0]) == Annotation.from_proto(proto.rois[0])
    assert Annotation.from_proto(proto.rois[0]) != Annotation.from_proto(proto.rois[1])
    assert repr(Annotation.from_proto(proto.rois[6])) == repr(reference.annotations[6])
    with pytest.raises(AttributeError):
        read.not_an_attribute  # noqa: B018


def test_frame_without_sources_and_groups_read_as_before() -> None:
    empty = SingleFrame.from_proto(frame_pb2.Frame(id="x", timestamp=5))
    assert (empty.source, empty.source_id, empty.content_type, empty.masks, empty.source_timestamp) == (
        "", "default", None, {}, None)
    assert empty.to_proto() == SingleFrame(id="x", timestamp=5).to_proto()
    group = FrameGroup(id="g", context_id="c", timestamp=3, metadata={"k": 1})
    group["left"] = SingleFrame(source="s3://b/l.jpg", width=4, height=3, metadata={"side": "l"})
    group["right"] = SingleFrame(source="s3://b/r.png")
    group["left"].add_annotation(box2d_xywh=(1, 1, 1, 1), labels="car")
    group.add_annotation(labels="day")
    proto = group.to_proto()
    again = frame_from_proto(proto)
    assert isinstance(again, FrameGroup) and again.to_proto() == proto
    assert [s.content_type for s in proto.sources] == ["image/jpeg", "image/png"]


@pytest.mark.parametrize("uri", [
    "s3://b/x.jpg", "s3://b/x.JPG", "https://h:8443/a/b.png?sig=1", "https://h/a.png#frag", "s3://b/x.jpg;v=2",
    "s3://bucket.jpg", "s3:relative.png", "blob:sha256/ab/12", "/local/x.tar.gz", "x.tgz", "file:///tmp/a%20b.jpg",
    "C:\\data\\x.jpg", "c:/data/x.png", "data:image/png;base64,AAAA", "s3://b/dir.v1/noext", "s3://b/.jpg",
    "https://[::1]:80/x.jpg", "s3://b/x.svgz", "s3://b/x.json", "relative/x.unknownext", "",
    # Around the one-pass reading of plain remote URIs.
    "s3://b/a..jpg", "s3://h:9000/d/x.jpg", "S3://B/X.PNG", "s3://b/x.jpg/", "s3://b/dir/x.", "gs://b/d.x/y",
    "s3://b/x:y.jpg", "s3://b/é.jpg", "ab://b//x.jpg", "https://h/a b.jpg", "s3://b/.hidden.png", "s3://b.jpg/x",
    "s3:///x.png", "s3://b/x.tar.gz", "s3://b/x.unknownext",
])
def test_content_type_guess_is_the_mimetypes_guess_of_the_uri_path(uri: str) -> None:
    is_url = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri) and not re.match(r"^[A-Za-z]:[\\/]", uri)
    path = urlparse(uri).path if is_url else uri
    expected = mimetypes.guess_type(path)[0] or ""
    assert guess_content_type(uri) == expected
    assert guess_content_type(uri) == expected  # again, from what the first call remembered


def counting_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    trips: list[int] = []
    real = runtime.run_sync

    def run_sync(coroutine: Any) -> Any:
        trips.append(1)
        return real(coroutine)

    monkeypatch.setattr(runtime, "run_sync", run_sync)
    return trips


async def test_sync_view_iterator_takes_a_message_per_trip_and_resumes_exactly(
        sdk: ClientSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    name = await view_corpus(sdk)
    await asyncio.to_thread(configure, iterate_frames_per_message=4)
    await aclose()
    try:
        view = DataView()
        view.add_query(dataset_name=name)
        everything = [f.id for f in await view.ato_list()]
        assert len(everything) == 9

        def read(taken: int) -> tuple[list[str], str, int]:
            iterator = view.get_iterator()
            head = [next(iterator).id for _ in range(taken)]
            cursor, returned = iterator.cursor, iterator.frames_returned
            iterator.close()
            rest = [f.id for f in view.get_iterator(resume_cursor=cursor)]
            assert returned == taken
            return head + rest, cursor, returned

        for taken in range(1, len(everything) + 1):
            ids, _, _ = await asyncio.to_thread(read, taken)
            assert ids == everything, taken

        trips = counting_trips(monkeypatch)
        assert [f.id for f in await asyncio.to_thread(lambda: list(view.get_iterator()))] == everything
        # Messages of 4, 4 and 1 frames, then the end of the stream: not one trip per frame.
        assert len(trips) == 4
    finally:
        await asyncio.to_thread(configure, iterate_frames_per_message=0)
        await aclose()


async def test_sync_view_iterator_reads_the_next_message_while_the_caller_works(
        sdk: ClientSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a message's frames are handed to the caller's thread, the SDK's loop reads the next one:
    the service does not wait for the caller to finish the frames it has."""
    name = await view_corpus(sdk)
    await asyncio.to_thread(configure, iterate_frames_per_message=4)
    await aclose()
    try:
        client = await asyncio.to_thread(runtime.run_sync, _running_client())
        real = client.metadata.IterateFrames
        second_message = threading.Event()

        class Counting:
            def __init__(self, call: Any) -> None:
                self.call = call

            async def __aiter__(self) -> Any:
                received = 0
                async for message in self.call:
                    received += 1
                    if received == 2:
                        second_message.set()
                    yield message

            def cancel(self) -> bool:
                return bool(self.call.cancel())

        monkeypatch.setattr(client.metadata, "IterateFrames", lambda request, **kwargs: Counting(real(request, **kwargs)))
        view = DataView()
        view.add_query(dataset_name=name)

        def first_frame_then_wait() -> tuple[str, bool]:
            with view.get_iterator() as iterator:
                first = next(iterator).id
                # The caller asks for nothing more; a generous bound only stops a hang.
                return first, second_message.wait(timeout=60)

        first, read_ahead = await asyncio.to_thread(first_frame_then_wait)
        assert first and read_ahead
    finally:
        await asyncio.to_thread(configure, iterate_frames_per_message=0)
        await aclose()


async def _running_client() -> Any:
    return runtime.current_client()


async def test_sync_iterate_frames_takes_a_page_per_trip(sdk: ClientSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    name = await view_corpus(sdk)
    draft = await DatasetVersion.aget_version(name)
    expected = [f.id async for f in draft.aiterate_frames(page_size=4)]
    trips = counting_trips(monkeypatch)
    assert [f.id for f in await asyncio.to_thread(lambda: list(draft.iterate_frames(page_size=4)))] == expected
    assert len(expected) == 9 and len(trips) == 4


def test_batched_sync_iterator_returns_items_one_by_one_and_closes() -> None:
    closed = []

    async def pages() -> Any:
        try:
            for start in range(0, 10, 3):
                yield list(range(start, min(start + 3, 10)))
            yield []
        finally:
            closed.append(True)

    with runtime.SyncIterator(pages(), batched=True) as iterator:
        assert [next(iterator) for _ in range(4)] == [0, 1, 2, 3]
    assert closed == [True]
    assert list(runtime.SyncIterator(pages(), batched=True)) == list(range(10))
