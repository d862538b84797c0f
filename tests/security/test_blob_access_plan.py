"""CheckBlobAccess finds the frames that reference a blob through indexes:
a read's reference check costs index lookups, not a scan of every frame."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from framevault.api.digests import digest_of
from framevault.auth.credentials import ServiceTokenMinter
from framevault.auth.mongo_store import MongoAccessStore
from framevault.common.config import Settings
from framevault.metadata.db import Database
from framevault.v1 import access_pb2, blob_pb2, dataset_pb2, frame_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .conftest import World
from .helpers import unique


def _stages(node: Any) -> Iterator[dict[str, Any]]:
    """Every stage of a plan, however the stages nest (inputStage, inputStages, queryPlan...)."""
    if isinstance(node, dict):
        if "stage" in node:
            yield node
        for value in node.values():
            yield from _stages(value)
    elif isinstance(node, list):
        for value in node:
            yield from _stages(value)


@pytest.fixture
async def store(secure_settings: Settings, secure_metadata: Any) -> AsyncIterator[MongoAccessStore]:
    database = Database(secure_settings)
    yield MongoAccessStore(database)
    await database.close()


async def _frames_with_blobs(metadata: Any, admin: Any, world: World) -> list[bytes]:
    """Uploads a frame whose source, preview and mask are inline bytes (stored as blobs), and
    frames of external URIs beside it; the bytes of the three blobs."""
    source, preview, mask = (unique(kind).encode() for kind in ("source", "preview", "mask"))
    call = metadata.UploadFrames(metadata=admin)
    await call.write(ms.UploadFramesRequest(options=ms.UploadOptions(version=dataset_pb2.VersionRef(
        id=world.draft.id))))
    with_blobs = frame_pb2.Frame(id=unique("blobs"), sources=[frame_pb2.Source(
        inline_content=source, preview=frame_pb2.Preview(inline_content=preview),
        masks=[frame_pb2.Mask(id="m", inline_content=mask)])])
    external = [frame_pb2.Frame(id=unique("external"), sources=[frame_pb2.Source(
        uri=f"https://images.invalid/{i}.jpg")]) for i in range(20)]
    await call.write(ms.UploadFramesRequest(items=[ms.UploadItem(frame=frame) for frame in [with_blobs, *external]]))
    await call.done_writing()
    results = [response async for response in call]
    assert results[-1].summary.created == 21, results
    return [source, preview, mask]


async def test_check_blob_access_queries_use_an_index_for_every_uri_field(
        metadata: Any, access: Any, admin: Any, world: World, store: MongoAccessStore,
        secure_settings: Settings) -> None:
    blobs = await _frames_with_blobs(metadata, admin, world)
    uris = [digest_of(data).uri for data in blobs]
    uri_points = sorted(f'["{uri}", "{uri}"]' for uri in uris)
    for dataset_ids in ([world.target.id], None):
        plans = await store.explain_referenced_blob_uris(uris, dataset_ids)
        for plan, index in zip(plans, ("blob_source_uris", "blob_preview_uris", "blob_mask_uris"), strict=True):
            stages = list(_stages(plan["queryPlanner"]["winningPlan"]))
            assert [s["indexName"] for s in stages if s["stage"] == "IXSCAN"] == [index], stages
            assert not [s for s in stages if s["stage"] == "COLLSCAN"], stages
            # The frame that references the blob, not the external ones.
            assert plan["executionStats"]["totalDocsExamined"] == 1, plan["executionStats"]
            # No plan the planner weighs scans the blob index wider than the URIs asked about: one
            # bounded by blob: URIs in general reads every frame that references a blob, and wins
            # when there are few of them (the frames of the other tests of the run decide).
            for candidate in [plan["queryPlanner"]["winningPlan"], *plan["queryPlanner"]["rejectedPlans"]]:
                for scan in _stages(candidate):
                    if scan["stage"] == "IXSCAN" and scan["indexName"] == index:
                        assert sorted(next(iter(scan["indexBounds"].values()))) == uri_points, scan
    # The indexed queries answer as before: a viewer of the dataset may read all three.
    blob_service = ServiceTokenMinter(secure_settings, "blob", "metadata").call_metadata()
    answer = await access.CheckBlobAccess(access_pb2.CheckBlobAccessRequest(
        principal=world.principals["viewer"],
        digests=[blob_pb2.Digest(hash=d.hash, size_bytes=d.size) for d in map(digest_of, blobs)]),
        metadata=blob_service)
    assert list(answer.denied_digests) == []
