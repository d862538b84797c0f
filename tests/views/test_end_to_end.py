"""Views over data written through the real catalog and frame RPCs: upload
with defaulted ids and context ids, publish, child version with an update and
a delete, then iterate, count and list."""

from __future__ import annotations

import uuid

from grpc import aio

from framevault.metadata.db import Database
from framevault.v1 import dataset_pb2, frame_pb2, view_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .client import Stub, iterate, view_of


async def _upload(stub: Stub, version_id: str, frames: list[frame_pb2.Frame]) -> None:
    call = stub.UploadFrames(timeout=60)
    await call.write(ms.UploadFramesRequest(options=ms.UploadOptions(version=dataset_pb2.VersionRef(id=version_id))))
    started = await call.read()
    assert len(frames) <= started.started.max_unacknowledged_frames
    await call.write(ms.UploadFramesRequest(items=[ms.UploadItem(frame=f) for f in frames]))
    await call.done_writing()
    summary = None
    while (response := await call.read()) is not aio.EOF:
        if response.WhichOneof("message") == "summary":
            summary = response.summary
    assert summary is not None and summary.failed == 0 and summary.created == len(frames)


def _frame(name: str, context: str = "", timestamp: int = 0, *labels: str) -> frame_pb2.Frame:
    return frame_pb2.Frame(context_id=context, timestamp=timestamp,
                           sources=[frame_pb2.Source(uri=f"https://images.invalid/{name}.jpg",
                                                     content_type="image/jpeg", width=64, height=48)],
                           rois=[frame_pb2.Roi(labels=labels)] if labels else [])


async def test_views_over_frames_written_by_the_frame_rpcs(db: Database, metadata_stub: Stub) -> None:
    # ``db`` waits for the service's indexes to exist.
    dataset = await metadata_stub.CreateDataset(ms.CreateDatasetRequest(
        dataset=dataset_pb2.Dataset(name=f"views-{uuid.uuid4().hex[:10]}")))
    draft = await metadata_stub.GetVersion(ms.GetVersionRequest(version=dataset_pb2.VersionRef(
        dataset=dataset_pb2.DatasetRef(id=dataset.id), name="Current")))
    # No ids, and some frames without a context: both derive from the URI.
    await _upload(metadata_stub, draft.id, [
        _frame("drive-3", "drive", 300, "car"), _frame("drive-1", "drive", 100, "car"),
        _frame("drive-2", "drive", 200, "truck"), _frame("still-b", "", 0, "car"), _frame("still-a", "", 0),
    ])
    parent = await metadata_stub.PublishVersion(ms.PublishVersionRequest(version=dataset_pb2.VersionRef(id=draft.id)))
    child = await metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_pb2.DatasetRef(id=dataset.id), parent=dataset_pb2.VersionRef(id=parent.id),
        version=dataset_pb2.Version(name="child")))
    parent_view = view_of(view_pb2.ViewSelection(version=dataset_pb2.VersionRef(id=parent.id)))
    before = await iterate(metadata_stub, parent_view)
    assert [f.sources[0].uri.rsplit("/", 1)[1] for f in before.frames] == [
        "drive-1.jpg", "drive-2.jpg", "drive-3.jpg", "still-a.jpg", "still-b.jpg"]
    assert before.frames[3].context_id == before.frames[3].sources[0].uri
    ids = {f.sources[0].uri.rsplit("/", 1)[1].removesuffix(".jpg"): f.id for f in before.frames}

    # In the child: drive-2 becomes a car at the end of the drive; still-b goes.
    updated = _frame("drive-2", "drive", 400, "car")
    updated.id = ids["drive-2"]
    await metadata_stub.UpdateFrame(ms.UpdateFrameRequest(version=dataset_pb2.VersionRef(id=child.id), frame=updated))
    await metadata_stub.DeleteFrames(ms.DeleteFramesRequest(version=dataset_pb2.VersionRef(id=child.id),
                                                            frame_ids=[ids["still-b"]]))

    child_cars = view_of(view_pb2.ViewSelection(version=dataset_pb2.VersionRef(id=child.id), query="label:car"))
    stream = await iterate(metadata_stub, child_cars)
    assert stream.ids == [ids["drive-1"], ids["drive-3"], ids["drive-2"]]
    assert (await metadata_stub.CountViewFrames(ms.CountViewFramesRequest(view=child_cars))).count == 3
    page = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=child_cars, page_size=2))
    rest = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=child_cars, page_token=page.next_page_token))
    assert [f.id for f in page.frames] + [f.id for f in rest.frames] == stream.ids and not rest.next_page_token
    # The parent is untouched.
    assert (await iterate(metadata_stub, parent_view)).ids == before.ids
