"""Helpers of the frame tests: datasets, frames, blobs and a small upload client."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from support import status_details

from framevault.api.digests import BlobDigest, digest_of
from framevault.common.errors import ok_status
from framevault.metadata.db import Database
from framevault.metadata.lineage import VersionHandle, visible_filter
from framevault.v1 import blob_pb2, dataset_pb2, frame_pb2
from framevault.v1 import metadata_service_pb2 as ms

Outcome = ms.FrameResult.Outcome
CREATED = ms.FrameResult.OUTCOME_CREATED
UPDATED = ms.FrameResult.OUTCOME_UPDATED
UNCHANGED = ms.FrameResult.OUTCOME_UNCHANGED
FAILED = ms.FrameResult.OUTCOME_FAILED


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def by_id(version_id: str) -> dataset_pb2.VersionRef:
    return dataset_pb2.VersionRef(id=version_id)


async def new_draft(stub: Any) -> dataset_pb2.Version:
    """The draft `Current` of a fresh dataset."""
    dataset = await stub.CreateDataset(ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=unique("frames"))))
    return await stub.GetVersion(ms.GetVersionRequest(version=dataset_pb2.VersionRef(
        dataset=dataset_pb2.DatasetRef(id=dataset.id), name="Current")))


async def publish(stub: Any, version_id: str) -> dataset_pb2.Version:
    return await stub.PublishVersion(ms.PublishVersionRequest(version=by_id(version_id)))


async def child_of(stub: Any, parent: dataset_pb2.Version) -> dataset_pb2.Version:
    return await stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_pb2.DatasetRef(id=parent.dataset_id), parent=by_id(parent.id),
        version=dataset_pb2.Version(name=unique("child"))))


def image_frame(frame_id: str = "", *, uri: str | None = None, context: str = "ctx", timestamp: int = 0,
                labels: Iterable[str] = ("car",), confidence: float | None = None) -> frame_pb2.Frame:
    roi = frame_pb2.Roi(labels=list(labels), box=frame_pb2.Box2D(x=1, y=2, w=3, h=4))
    if confidence is not None:
        roi.confidence = confidence
    return frame_pb2.Frame(
        id=frame_id, context_id=context, timestamp=timestamp,
        sources=[frame_pb2.Source(uri=uri or f"https://images.invalid/{frame_id or uuid.uuid4().hex}.jpg",
                                  content_type="image/jpeg", width=640, height=480)],
        rois=[roi],
    )


def items(frames: Iterable[frame_pb2.Frame]) -> list[ms.UploadItem]:
    return [ms.UploadItem(client_key=f"k{i}", frame=f) for i, f in enumerate(frames)]


async def put_blob(blob_stub: Any, data: bytes) -> BlobDigest:
    digest = digest_of(data)
    response = await blob_stub.BatchUpdateBlobs(blob_pb2.BatchUpdateBlobsRequest(requests=[
        blob_pb2.BatchUpdateBlobsRequest.Request(
            digest=blob_pb2.Digest(hash=digest.hash, size_bytes=digest.size), data=data)]))
    assert response.responses[0].status.code == ok_status().code
    return digest


def missing_digest() -> BlobDigest:
    return digest_of(uuid.uuid4().bytes * 3)


@dataclass
class UploadRun:
    started: ms.UploadStarted | None = None
    results: list[ms.FrameResult] = field(default_factory=list)
    summary: ms.UploadSummary | None = None
    # Largest number of frames the client had sent without a result.
    max_in_flight: int = 0

    def by_key(self) -> dict[str, ms.FrameResult]:
        return {r.client_key: r for r in self.results}

    def outcomes(self) -> list[int]:
        return [r.outcome for r in self.results]


async def upload(stub: Any, version_id: str, upload_items: Iterable[ms.UploadItem], *, retries: int = 3,
                 per_message: int = 64, cancel_after: int | None = None,
                 between_messages: Any = None, run: UploadRun | None = None) -> UploadRun:
    """Streams ``upload_items`` (taken lazily) honouring the server's credit window.

    ``cancel_after``: cancel the call once that many results arrived (a
    broken stream). ``between_messages(sent_count)`` is awaited before each
    message after the first, for tests that act mid-stream; they may also
    pass ``run`` to watch results arrive.
    """
    run = run if run is not None else UploadRun()
    call = stub.UploadFrames()
    await call.write(ms.UploadFramesRequest(options=ms.UploadOptions(version=by_id(version_id),
                                                                     upload_retries=retries)))
    first = await call.read()
    run.started = first.started
    window = first.started.max_unacknowledged_frames
    state = {"sent": 0}
    credit = asyncio.Condition()

    async def writer() -> None:
        pending = iter(upload_items)
        while chunk := list(itertools.islice(pending, per_message)):
            if state["sent"] and between_messages is not None:
                await between_messages(state["sent"])
            size = len(chunk)
            async with credit:
                await credit.wait_for(lambda size=size: state["sent"] - len(run.results) + size <= window)
                state["sent"] += size
                run.max_in_flight = max(run.max_in_flight, state["sent"] - len(run.results))
            await call.write(ms.UploadFramesRequest(items=chunk))
        await call.done_writing()

    sending = asyncio.create_task(writer())
    try:
        while True:
            response = await call.read()
            if response is aio.EOF:
                break
            kind = response.WhichOneof("message")
            if kind == "results":
                async with credit:
                    run.results.extend(response.results.results)
                    credit.notify_all()
                if cancel_after is not None and len(run.results) >= cancel_after:
                    call.cancel()
                    return run
            elif kind == "summary":
                run.summary = response.summary
        await sending
        # A stream cut by a dead server may read as a plain end of stream;
        # its status says what happened.
        code = await call.code()
        if code != grpc.StatusCode.OK:
            raise RuntimeError(f"UploadFrames ended with {code.name}: {await call.details()}")
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, aio.AioRpcError, grpc.RpcError):
            await sending
    return run


def bad_fields(status: status_pb2.Status) -> list[str]:
    return [v.field for d in status_details(status) if isinstance(d, error_details_pb2.BadRequest)
            for v in d.field_violations]


def precondition_subjects(status: status_pb2.Status) -> list[tuple[str, str]]:
    return [(v.type, v.subject) for d in status_details(status)
            if isinstance(d, error_details_pb2.PreconditionFailure) for v in d.violations]


async def handle(db: Database, version_id: str) -> VersionHandle:
    doc = await db.versions.find_one({"_id": version_id})
    assert doc is not None
    return VersionHandle.from_document(doc)


async def visible_count(db: Database, version_id: str) -> int:
    return await db.frames.count_documents(visible_filter(await handle(db, version_id)))


async def revision_count(db: Database, version_id: str) -> int:
    return await db.frames.count_documents({"version_id": version_id})


async def count_frames(stub: Any, version_id: str) -> int:
    return (await stub.CountFrames(ms.CountFramesRequest(version=by_id(version_id)))).count


async def get_frame(stub: Any, version_id: str, frame_id: str) -> frame_pb2.Frame:
    return await stub.GetFrame(ms.GetFrameRequest(version=by_id(version_id), frame_id=frame_id))


def code_of(status: status_pb2.Status) -> grpc.StatusCode:
    return next(c for c in grpc.StatusCode if c.value[0] == status.code)
