"""A child of a 100k-frame parent: no frame written, same frames read, and
a diff that reads only what changed."""

from __future__ import annotations

import random
import time

import grpc
from grpc import aio
from support import frame_to_document

from framevault.metadata.catalog.diff import ADDED, CHANGED, REMOVED, differences
from framevault.metadata.catalog.mongo_store import MongoCatalogStore
from framevault.metadata.catalog.revisions import ReadCounter
from framevault.metadata.lineage import visible_filter
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import (
    by_id,
    child_of,
    dataset_ref,
    delete_frames,
    make_frame,
    new_dataset,
    publish,
    version_handle,
    write_frames,
)

PARENT_FRAMES = 100_000
INSERT_BATCH = 10_000


async def _fill(db, version_id: str, dataset_id: str, count: int) -> None:
    """Bulk-loads ``count`` revisions into a fresh draft (a fixture, not the write path)."""
    saved = int(time.time() * 1000)
    for start in range(0, count, INSERT_BATCH):
        docs = [frame_to_document(make_frame(f"frame-{i:06d}", labels=["car"] if i % 3 == 0 else [],
                                             context=f"ctx-{i // 100:04d}", timestamp=(i % 100) * 33),
                                  dataset_id=dataset_id, version_id=version_id, saved_ms=saved)
                for i in range(start, min(start + INSERT_BATCH, count))]
        await db.frames.insert_many(docs, ordered=False)
    await db.versions.update_one({"_id": version_id}, {"$inc": {"frame_count": count}})


async def _count_frames_rpc(stub, version_id: str) -> int | None:
    try:
        return (await stub.CountFrames(ms.CountFramesRequest(version=by_id(version_id)))).count
    except aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            return None
        raise


async def _explain(db, query: dict, hint: str) -> dict:
    command = {"find": "frames", "filter": query, "sort": {"frame_id": 1}, "projection": {"_id": 0, "frame_id": 1},
               "hint": hint}
    return await db.db.command("explain", command, verbosity="executionStats")


async def test_child_of_a_100k_parent_is_copy_free_and_diff_reads_only_the_change(metadata_stub, db):
    dataset, current = await new_dataset(metadata_stub)
    await _fill(db, current.id, dataset.id, PARENT_FRAMES)
    parent = await publish(metadata_stub, current.id)
    assert parent.frame_count == PARENT_FRAMES

    frames_before = await db.frames.count_documents({})
    last_before = await db.frames.find_one({}, {"_id": 1}, sort=[("_id", -1)])
    child = await child_of(metadata_stub, parent)
    assert await db.frames.count_documents({}) == frames_before
    assert await db.frames.find_one({}, {"_id": 1}, sort=[("_id", -1)]) == last_before

    assert child.frame_count == PARENT_FRAMES
    child_handle, parent_handle = await version_handle(db, child.id), await version_handle(db, parent.id)
    assert await db.frames.count_documents(visible_filter(child_handle)) == PARENT_FRAMES
    for version_id in (parent.id, child.id):
        counted = await _count_frames_rpc(metadata_stub, version_id)
        assert counted in (None, PARENT_FRAMES)
    sample = [f"frame-{i:06d}" for i in random.Random(7).sample(range(PARENT_FRAMES), 300)]
    in_child = {d["frame_id"]: d["_id"] async for d in db.frames.find(
        {**visible_filter(child_handle), "frame_id": {"$in": sample}}, {"frame_id": 1})}
    in_parent = {d["frame_id"]: d["_id"] async for d in db.frames.find(
        {**visible_filter(parent_handle), "frame_id": {"$in": sample}}, {"frame_id": 1})}
    assert in_child == in_parent and len(in_child) == len(sample)

    # A small change in the child: the diff reads its index keys only.
    await write_frames(metadata_stub, child.id, [make_frame("frame-000010", note="#edit"), make_frame("zz-new-1"),
                                      make_frame("zz-new-2")])
    await delete_frames(metadata_stub, child.id, ["frame-000020", "frame-000030"])
    counter = ReadCounter()
    changes = [c async for batch in differences(MongoCatalogStore(db), dataset.id, parent_handle.lineage, child_handle.lineage,
                                                counter=counter) for c in batch]
    assert [(c.frame_id, c.kind) for c in changes] == [
        ("frame-000010", CHANGED), ("frame-000020", REMOVED), ("frame-000030", REMOVED),
        ("zz-new-1", ADDED), ("zz-new-2", ADDED)]
    # 3 revisions written + 3 hidden by the child; resolving the 5 frames
    # reads their revisions: 2 for the edited frame, 1 for each other.
    assert counter.change_keys == 6
    assert counter.resolved == 6
    for query, hint in (({"version_id": child.id}, "revision_unique"), ({"hidden_in": child.id}, "hidden_frames")):
        stats = (await _explain(db, query, hint))["executionStats"]
        assert stats["nReturned"] == 3 and stats["totalKeysExamined"] <= 4 and stats["totalDocsExamined"] <= 3

    served = [c async for m in metadata_stub.DiffVersions(ms.DiffVersionsRequest(base=by_id(parent.id),
                                                                                  target=by_id(child.id)))
              for c in m.changes]
    assert [(c.frame_id, c.kind) for c in served] == [(c.frame_id, c.kind) for c in changes]

    deleted = await metadata_stub.DeleteDataset(ms.DeleteDatasetRequest(dataset=dataset_ref(dataset.id), force=True))
    assert (deleted.deleted_versions, deleted.deleted_frames) == (2, PARENT_FRAMES + 3)
