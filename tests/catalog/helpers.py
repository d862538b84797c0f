"""Helpers of the catalog tests: datasets, frames and error checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Awaitable, Iterable
from typing import Any

import grpc
import pytest
from grpc import aio
from support import error_details, resource_info, violated_fields

from framevault.common.tokens import PAGE_TOKEN, derived_key
from framevault.metadata.db import Database
from framevault.metadata.lineage import VersionHandle, visible_filter
from framevault.v1 import dataset_pb2, frame_pb2, metadata_pb2
from framevault.v1 import metadata_service_pb2 as ms


def unique_name(prefix: str = "ds") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def by_id(version_id: str) -> dataset_pb2.VersionRef:
    return dataset_pb2.VersionRef(id=version_id)


def dataset_ref(dataset_id: str) -> dataset_pb2.DatasetRef:
    return dataset_pb2.DatasetRef(id=dataset_id)


async def new_dataset(stub: Any, name: str | None = None, **fields: Any) -> tuple[dataset_pb2.Dataset, dataset_pb2.Version]:
    """A fresh dataset and its draft `Current`."""
    dataset = await stub.CreateDataset(ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name or unique_name(), **fields)))
    current = await stub.GetVersion(ms.GetVersionRequest(
        version=dataset_pb2.VersionRef(dataset=dataset_ref(dataset.id), name="Current")))
    return dataset, current


def make_frame(frame_id: str, *, labels: Iterable[str] = (), meta: dict[str, Any] | None = None,
               context: str = "ctx", timestamp: int = 0, note: str = "") -> frame_pb2.Frame:
    frame = frame_pb2.Frame(
        id=frame_id,
        context_id=context,
        timestamp=timestamp,
        sources=[frame_pb2.Source(id="default", uri=f"https://example.invalid/{frame_id}.jpg{note}")],
    )
    for label in labels:
        frame.rois.append(frame_pb2.Roi(labels=[label], box=frame_pb2.Box2D(x=1, y=2, w=3, h=4)))
    for key, value in (meta or {}).items():
        if isinstance(value, str):
            frame.meta.fields[key].CopyFrom(metadata_pb2.MetadataValue(string_value=value))
        elif isinstance(value, int):
            frame.meta.fields[key].CopyFrom(metadata_pb2.MetadataValue(int_value=value))
    return frame


def mint_page_token(secret: str, after: list[Any], query: str) -> str:
    """A page token signed with ``secret`` holding whatever ``after`` is, as
    anyone who knows the secret (a deployment left at the default) can make."""
    body = json.dumps({"v": 1, "k": "page", "b": query, "s": {"after": after}}).encode()
    mac = hmac.new(derived_key(secret, PAGE_TOKEN), body, hashlib.sha256).digest()[:16]
    return ".".join(base64.urlsafe_b64encode(part).decode().rstrip("=") for part in (body, mac))


async def version_handle(db: Database, version_id: str) -> VersionHandle:
    doc = await db.versions.find_one({"_id": version_id})
    assert doc is not None
    return VersionHandle.from_document(doc)


async def write_frames(stub: Any, version_id: str, frames: Iterable[frame_pb2.Frame]) -> None:
    """Upserts frames into a draft through the UploadFrames stream."""
    items = [ms.UploadItem(frame=frame) for frame in frames]
    call = stub.UploadFrames()
    await call.write(ms.UploadFramesRequest(options=ms.UploadOptions(version=by_id(version_id))))
    started = await call.read()
    chunk = max(1, min(500, started.started.max_unacknowledged_frames))
    results: list[ms.FrameResult] = []
    for start in range(0, len(items), chunk):
        await call.write(ms.UploadFramesRequest(items=items[start:start + chunk]))
        while len(results) < min(start + chunk, len(items)):
            response = await call.read()
            assert response is not aio.EOF
            results.extend(response.results.results)
    await call.done_writing()
    while (response := await call.read()) is not aio.EOF:
        assert response.WhichOneof("message") == "summary"
        assert response.summary.failed == 0, response.summary
    failed = [r for r in results if r.outcome == ms.FrameResult.OUTCOME_FAILED]
    assert not failed, failed


async def delete_frames(stub: Any, version_id: str, frame_ids: Iterable[str]) -> None:
    """Deletes frames of a draft through DeleteFrames."""
    reply = await stub.DeleteFrames(ms.DeleteFramesRequest(version=by_id(version_id), frame_ids=list(frame_ids)))
    assert all(s.status.code == 0 for s in reply.statuses), reply


async def visible_frames(db: Database, version_id: str) -> dict[str, str]:
    """frame id → etag of every frame visible in a version."""
    version = await version_handle(db, version_id)
    return {d["frame_id"]: d["etag"] async for d in db.frames.find(visible_filter(version), {"frame_id": 1, "etag": 1})}


async def publish(stub: Any, version_id: str) -> dataset_pb2.Version:
    return await stub.PublishVersion(ms.PublishVersionRequest(version=by_id(version_id)))


async def child_of(stub: Any, parent: dataset_pb2.Version, name: str | None = None) -> dataset_pb2.Version:
    return await stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_ref(parent.dataset_id), parent=by_id(parent.id),
        version=dataset_pb2.Version(name=name or unique_name("v"))))


async def database_state(db: Database) -> str:
    """A digest of the stored catalog and of the frame revisions' identities
    and visibility markers: equal digests mean nothing changed."""
    digest = hashlib.sha256()
    for collection in (db.datasets, db.versions):
        async for doc in collection.find({}).sort("_id", 1):
            digest.update(repr(sorted(doc.items(), key=lambda kv: kv[0])).encode())
    summary = await (await _maybe_await(db.frames.aggregate([
        {"$group": {"_id": None, "n": {"$sum": 1}, "last": {"$max": "$_id"}, "first": {"$min": "$_id"},
                    "hidden": {"$sum": {"$size": {"$ifNull": ["$hidden_in", []]}}},
                    "etags": {"$addToSet": "$etag"}}},
        {"$project": {"n": 1, "last": 1, "first": 1, "hidden": 1, "etags": {"$size": "$etags"}}},
    ]))).to_list(length=1)
    digest.update(repr(summary).encode())
    return digest.hexdigest()


async def _maybe_await(value: Any) -> Any:
    return await value if hasattr(value, "__await__") else value


async def expect_error(call: Awaitable[Any], code: grpc.StatusCode) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return caught.value


async def expect_invalid(db: Database, call: Awaitable[Any], field: str) -> aio.AioRpcError:
    """The call fails with INVALID_ARGUMENT naming ``field`` and changes nothing."""
    before = await database_state(db)
    error = await expect_error(call, grpc.StatusCode.INVALID_ARGUMENT)
    assert field in violated_fields(error), (field, violated_fields(error))
    assert await database_state(db) == before
    return error


async def expect_unchanged(db: Database, call: Awaitable[Any], code: grpc.StatusCode) -> aio.AioRpcError:
    before = await database_state(db)
    error = await expect_error(call, code)
    assert await database_state(db) == before
    return error


__all__ = ["error_details", "resource_info", "violated_fields"]
