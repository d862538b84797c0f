"""Racing publishes, snapshots and merges: exactly one caller wins, the
others get ABORTED or FAILED_PRECONDITION, nothing is half done."""

from __future__ import annotations

import asyncio

import grpc
from grpc import aio

from framevault.v1 import dataset_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import by_id, child_of, dataset_ref, make_frame, new_dataset, publish, unique_name, write_frames

ROUNDS = 5
LOSING_CODES = {grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION}


def split(results: list[object]) -> tuple[list[object], list[aio.AioRpcError]]:
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, aio.AioRpcError) for e in lost), lost
    return won, lost  # type: ignore[return-value]


async def test_concurrent_publishes_of_one_draft(metadata_stub, db):
    for _ in range(ROUNDS):
        _, current = await new_dataset(metadata_stub)
        results = await asyncio.gather(*(publish(metadata_stub, current.id) for _ in range(3)), return_exceptions=True)
        won, lost = split(results)
        assert len(won) == 1 and len(lost) == 2
        assert {e.code() for e in lost} <= LOSING_CODES
        stored = await db.versions.find_one({"_id": current.id})
        assert stored["status"] == "published" and stored["publish_time"] is not None


async def test_concurrent_snapshots_of_one_draft(metadata_stub, db):
    for _ in range(ROUNDS):
        dataset, current = await new_dataset(metadata_stub)
        await write_frames(metadata_stub, current.id, [make_frame("a"), make_frame("b")])
        results = await asyncio.gather(*(
            metadata_stub.SnapshotVersion(ms.SnapshotVersionRequest(version=by_id(current.id),
                                                                    snapshot_name=f"snap {i}"))
            for i in range(3)), return_exceptions=True)
        won, lost = split(results)
        assert len(won) == 1 and {e.code() for e in lost} <= LOSING_CODES and len(lost) == 2
        versions = await db.versions.find({"dataset_id": dataset.id}).to_list(length=None)
        # The former draft, now the snapshot, and one new `Current`: nothing more.
        assert sorted((v["name"], v["status"]) for v in versions) == sorted([
            (won[0].snapshot.name, "published"), ("Current", "draft")])
        assert won[0].draft.frame_count == 2


async def test_publish_racing_a_snapshot(metadata_stub, db):
    for _ in range(ROUNDS):
        dataset, current = await new_dataset(metadata_stub)
        results = await asyncio.gather(
            publish(metadata_stub, current.id),
            metadata_stub.SnapshotVersion(ms.SnapshotVersionRequest(version=by_id(current.id))),
            return_exceptions=True)
        won, lost = split(results)
        assert len(won) == 1 and len(lost) == 1 and lost[0].code() in LOSING_CODES
        expected = 2 if isinstance(won[0], ms.SnapshotVersionResponse) else 1
        assert await db.versions.count_documents({"dataset_id": dataset.id}) == expected


async def test_concurrent_merges_into_one_version(metadata_stub, db):
    _, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [make_frame(f"f{i}") for i in range(20)])
    base = await publish(metadata_stub, current.id)
    sides = []
    for tag in ("ours", "theirs"):
        child = await child_of(metadata_stub, base)
        await write_frames(metadata_stub, child.id, [make_frame(f"f{i}", note=f"#{tag}") for i in range(
            0 if tag == "ours" else 10, 10 if tag == "ours" else 20)] + [make_frame(f"{tag}-{i}") for i in range(50)])
        sides.append(await publish(metadata_stub, child.id))
    ours, theirs = sides
    for _ in range(ROUNDS):
        name = unique_name("merged")
        request = ms.MergeVersionsRequest(ours=by_id(ours.id), theirs=by_id(theirs.id),
                                          version=dataset_pb2.Version(name=name))
        results = await asyncio.gather(*(metadata_stub.MergeVersions(request) for _ in range(3)),
                                       return_exceptions=True)
        won, lost = split(results)
        assert len(won) == 1 and len(lost) == 2
        # A merge that lost the race is ABORTED; one that started after the
        # winner finished finds the name taken.
        assert {e.code() for e in lost} <= LOSING_CODES | {grpc.StatusCode.ALREADY_EXISTS}
        merged = won[0].version
        assert merged.frame_count == 20 + 100 and won[0].applied_changes == 60
        # The losers' revisions are gone: every revision of the dataset
        # belongs to an existing version.
        existing = {v["_id"] async for v in db.versions.find({"dataset_id": base.dataset_id}, {"_id": 1})}
        writers = set(await db.frames.distinct("version_id", {"dataset_id": base.dataset_id}))
        assert writers <= existing
        markers = set(await db.frames.distinct("hidden_in", {"dataset_id": base.dataset_id}))
        assert markers <= existing


async def test_version_creation_racing_dataset_deletion(metadata_stub, db):
    for _ in range(ROUNDS):
        dataset, current = await new_dataset(metadata_stub)
        parent = await publish(metadata_stub, current.id)
        results = await asyncio.gather(
            metadata_stub.DeleteDataset(ms.DeleteDatasetRequest(dataset=dataset_ref(dataset.id), force=True)),
            child_of(metadata_stub, parent),
            return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                assert isinstance(result, aio.AioRpcError)
                assert result.code() in {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ABORTED}
        # Never a version whose dataset is gone.
        if await db.datasets.find_one({"_id": dataset.id}) is None:
            assert await db.versions.count_documents({"dataset_id": dataset.id}) == 0
