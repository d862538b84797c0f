"""GetFrame by version id remembers the version it read (``frames.known_versions``):
later reads of that version are one query on the frames, and every answer stays
what reading the version again would give.

Through the service for what a caller sees (updates, deletes, deleted
versions); in-process over the real database for what is read and for a
deletion made through another replica, with a clock of the test's own.
"""

from __future__ import annotations

import dataclasses

import grpc
import pytest
from google.protobuf import field_mask_pb2
from grpc import aio
from support import resource_info

from framevault.api.metadata_values import dict_to_metadata
from framevault.metadata.db import Database
from framevault.metadata.frames.known_versions import KnownVersions
from framevault.metadata.frames.mongo_store import MongoFrameStore
from framevault.metadata.frames.revisions import find_version_with_revision
from framevault.v1 import dataset_pb2, frame_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import CREATED, by_id, get_frame, image_frame, items, new_draft, publish, upload

pytestmark = pytest.mark.usefixtures("frames_db")
TTL = 5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingFrameStore(MongoFrameStore):
    """The MongoDB frame store, counting the reads of a version together with a frame."""

    def __init__(self, db: Database, clock: Clock):
        super().__init__(db)
        self.known_versions = KnownVersions(
            dataclasses.replace(db.settings, frame_read_version_cache_seconds=TTL), clock)
        self.version_reads = 0

    async def version_with_revision(self, version_id: str, frame_id: str):  # type: ignore[no-untyped-def]
        self.version_reads += 1
        return await super().version_with_revision(version_id, frame_id)


async def draft_with(stub, *frame_ids: str):
    version = await new_draft(stub)
    run = await upload(stub, version.id, items(image_frame(f) for f in frame_ids))
    assert run.outcomes() == [CREATED] * len(frame_ids)
    return version


async def not_found(call) -> tuple[str, str]:
    with pytest.raises(aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND, caught.value.details()
    info = resource_info(caught.value)
    assert info is not None
    return info.resource_type, info.resource_name


async def test_a_known_version_is_read_once_and_its_frames_every_time(metadata_stub, frames_db: Database):
    clock = Clock()
    store = CountingFrameStore(frames_db, clock)
    version = await draft_with(metadata_stub, "a", "b")
    first = await find_version_with_revision(store, version.id, "a")
    assert first is not None and first[1] is not None and store.version_reads == 1
    again = await find_version_with_revision(store, version.id, "b")
    assert again is not None and again[1] is not None and again[1]["frame_id"] == "b"
    assert again[0] == first[0] and store.version_reads == 1
    # A frame the version does not have is answered with the version read again.
    assert await find_version_with_revision(store, version.id, "absent") == (first[0], None)
    assert store.version_reads == 2
    clock.now += TTL
    assert (await find_version_with_revision(store, version.id, "a")) is not None and store.version_reads == 3


async def test_nothing_is_remembered_with_a_ttl_of_zero(metadata_stub, frames_db: Database):
    store = CountingFrameStore(frames_db, Clock())
    store.known_versions = KnownVersions(dataclasses.replace(frames_db.settings, frame_read_version_cache_seconds=0))
    version = await draft_with(metadata_stub, "a")
    for _ in range(3):
        assert (await find_version_with_revision(store, version.id, "a")) is not None
    assert store.version_reads == 3


async def test_reads_of_a_known_draft_see_every_later_write(metadata_stub):
    version = await draft_with(metadata_stub, "kept", "updated", "deleted")
    for frame_id in ("kept", "updated", "deleted"):
        await get_frame(metadata_stub, version.id, frame_id)  # the version is now known
    current = await get_frame(metadata_stub, version.id, "updated")
    updated = await metadata_stub.UpdateFrame(ms.UpdateFrameRequest(
        version=by_id(version.id), frame=frame_pb2.Frame(id="updated", timestamp=77),
        update_mask=field_mask_pb2.FieldMask(paths=["timestamp"]), etag=current.etag))
    read = await get_frame(metadata_stub, version.id, "updated")
    assert (read.timestamp, read.etag) == (77, updated.etag) and read.etag != current.etag
    await metadata_stub.DeleteFrames(ms.DeleteFramesRequest(version=by_id(version.id), frame_ids=["deleted"]))
    assert await not_found(get_frame(metadata_stub, version.id, "deleted")) == ("frame", "deleted")
    await upload(metadata_stub, version.id, items([image_frame("added")]))
    assert (await get_frame(metadata_stub, version.id, "added")).id == "added"
    published = await publish(metadata_stub, version.id)
    assert (await get_frame(metadata_stub, published.id, "updated")).timestamp == 77


async def test_a_deleted_known_draft_is_not_found_at_once(metadata_stub):
    version = await draft_with(metadata_stub, "a")
    await get_frame(metadata_stub, version.id, "a")
    await metadata_stub.DeleteVersion(ms.DeleteVersionRequest(version=by_id(version.id)))
    assert await not_found(get_frame(metadata_stub, version.id, "a")) == ("version", version.id)


async def test_a_version_deleted_through_another_replica_is_forgotten_within_the_ttl(
        metadata_stub, frames_db: Database):
    """The version document is removed as another replica's interrupted delete
    leaves it (its revisions not purged yet): this process may serve the
    leftover frame only until what it knows of the version expires."""
    clock = Clock()
    store = CountingFrameStore(frames_db, clock)
    version = await draft_with(metadata_stub, "a", "b")
    assert (await find_version_with_revision(store, version.id, "a")) is not None
    await frames_db.versions.delete_one({"_id": version.id})
    # A frame of it not found is answered exactly at once.
    assert await find_version_with_revision(store, version.id, "absent") is None
    assert await find_version_with_revision(store, version.id, "b") is None  # forgotten with that answer
    # And without such a miss, once the TTL has passed.
    other = await draft_with(metadata_stub, "a")
    assert (await find_version_with_revision(store, other.id, "a")) is not None
    await frames_db.versions.delete_one({"_id": other.id})
    clock.now += TTL
    assert await find_version_with_revision(store, other.id, "a") is None
    await frames_db.frames.delete_many({"version_id": {"$in": [version.id, other.id]}})


async def test_a_frame_read_as_stored_is_the_frame_read_any_other_way(metadata_stub):
    """Once its version is known, GetFrame sends the codec's encoding of the stored BSON: the same
    frame as the first read (the version read with it), a read by version name and ListFrames."""
    frame = image_frame("rich", labels=["car", "truck"], confidence=0.5, timestamp=12)
    frame.meta.CopyFrom(dict_to_metadata({"weather": "rain", "score": 0.25, "tags": ["a", "b"]}))
    version = await new_draft(metadata_stub)
    assert (await upload(metadata_stub, version.id, items([frame]))).outcomes() == [CREATED]
    first = await get_frame(metadata_stub, version.id, "rich")
    again = await get_frame(metadata_stub, version.id, "rich")
    by_name = await metadata_stub.GetFrame(ms.GetFrameRequest(frame_id="rich", version=dataset_pb2.VersionRef(
        dataset=dataset_pb2.DatasetRef(id=version.dataset_id), name=version.name)))
    listed = await metadata_stub.ListFrames(ms.ListFramesRequest(version=by_id(version.id)))
    assert again == first == by_name == listed.frames[0]
    assert (again.id, again.timestamp, list(again.rois[0].labels), again.version_id) == (
        "rich", 12, ["car", "truck"], version.id)
