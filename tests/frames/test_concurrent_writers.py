"""Many upload streams into one draft at once: writers of different frames do
not conflict, every frame lands, and every count is exact."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from support import frame_to_document

from framevault.metadata.db import Database
from framevault.metadata.transactions import transaction
from framevault.v1 import dataset_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import (
    CREATED,
    FAILED,
    UNCHANGED,
    UPDATED,
    UploadRun,
    by_id,
    code_of,
    count_frames,
    image_frame,
    items,
    new_draft,
    publish,
    revision_count,
    upload,
    visible_count,
)

pytestmark = pytest.mark.usefixtures("frames_db")

STREAMS = 8
FRAMES_PER_STREAM = 1500


class RollBack(Exception):
    """Ends a transaction of the test without committing it."""


async def exact_counts(stub, frames_db: Database, version_id: str) -> set[int]:
    """Every way of asking how many frames the version has."""
    version = await stub.GetVersion(ms.GetVersionRequest(version=by_id(version_id)))
    listed = await stub.ListVersions(ms.ListVersionsRequest(dataset=dataset_pb2.DatasetRef(id=version.dataset_id)))
    statistics = await stub.GetVersionStatistics(ms.GetVersionStatisticsRequest(version=by_id(version_id)))
    return {
        await count_frames(stub, version_id),
        version.frame_count,
        next(v.frame_count for v in listed.versions if v.id == version_id),
        statistics.frame_count,
        await visible_count(frames_db, version_id),
    }


async def test_eight_streams_into_one_draft_all_land_with_exact_counts(metadata_stub, frames_db: Database):
    version = await new_draft(metadata_stub)
    streams = [[image_frame(f"s{s}-f{i:05d}", context=f"s{s}", timestamp=i) for i in range(FRAMES_PER_STREAM)]
               for s in range(STREAMS)]
    runs = await asyncio.gather(*(upload(metadata_stub, version.id, items(frames), per_message=100)
                                  for frames in streams))  # default retries (3)
    for run in runs:
        assert run.summary is not None
        assert (run.summary.created, run.summary.failed) == (FRAMES_PER_STREAM, 0)
        assert all(r.outcome == CREATED for r in run.results)
    total = STREAMS * FRAMES_PER_STREAM
    assert await exact_counts(metadata_stub, frames_db, version.id) == {total}
    assert await revision_count(frames_db, version.id) == total

    # Resent at once: nothing changes, nothing is written, the counts stay.
    again = await asyncio.gather(*(upload(metadata_stub, version.id, items(frames), per_message=100)
                                   for frames in streams))
    assert all(run.summary is not None and run.summary.unchanged == FRAMES_PER_STREAM for run in again)
    assert await exact_counts(metadata_stub, frames_db, version.id) == {total}

    published = await publish(metadata_stub, version.id)
    assert published.frame_count == total
    assert await exact_counts(metadata_stub, frames_db, version.id) == {total}


async def test_streams_writing_the_same_frames_resolve_their_conflicts(metadata_stub, frames_db: Database):
    version = await new_draft(metadata_stub)
    shared = 600

    def frames(label: str) -> list:
        return [image_frame(f"f{i:04d}", labels=[label]) for i in range(shared)]

    runs = await asyncio.gather(*(upload(metadata_stub, version.id, items(frames(f"w{w}")), per_message=100,
                                         retries=10) for w in range(4)))
    outcomes = [r.outcome for run in runs for r in run.results]
    assert set(outcomes) <= {CREATED, UPDATED, UNCHANGED}
    assert outcomes.count(CREATED) == shared  # each frame appeared exactly once
    assert await exact_counts(metadata_stub, frames_db, version.id) == {shared}
    assert await revision_count(frames_db, version.id) == shared


async def test_a_frame_held_by_another_transaction_costs_only_itself(metadata_stub, frames_db: Database):
    version = await new_draft(metadata_stub)
    frames = [image_frame(f"f{i:03d}") for i in range(200)]
    held = frames[137]
    # Another writer's transaction has written this frame and stays open (then rolls back).
    with pytest.raises(RollBack):
        async with transaction(frames_db) as session:
            await frames_db.frames.insert_one(frame_to_document(
                held, dataset_id=version.dataset_id, version_id=version.id, saved_ms=0), session=session)
            run = await upload(metadata_stub, version.id, items(frames), per_message=200, retries=2)
            raise RollBack
    by_outcome = {r.frame_id: r.outcome for r in run.results}
    assert by_outcome.pop(held.id) == FAILED
    assert code_of(run.results[137].error) == grpc.StatusCode.ABORTED
    assert run.results[137].attempts == 3
    assert set(by_outcome.values()) == {CREATED}
    again = await upload(metadata_stub, version.id, items([held]))
    assert again.outcomes() == [CREATED]
    assert await exact_counts(metadata_stub, frames_db, version.id) == {200}


async def test_a_publish_amid_eight_streams_splits_them_cleanly(metadata_stub, frames_db: Database):
    version = await new_draft(metadata_stub)
    runs = [UploadRun() for _ in range(STREAMS)]
    streams = [asyncio.create_task(upload(
        metadata_stub, version.id, items(image_frame(f"s{s}-f{i:05d}") for i in range(20_000)),
        per_message=100, run=run)) for s, run in enumerate(runs)]
    while sum(len(run.results) for run in runs) < 2000:
        await asyncio.sleep(0.01)
    published = await publish(metadata_stub, version.id)
    await asyncio.gather(*streams)

    written = 0
    for run in runs:
        outcomes = [r.outcome for r in run.results]
        # Every frame landed before the publish or was refused after it, in stream order.
        landed = outcomes.count(CREATED)
        assert outcomes == [CREATED] * landed + [FAILED] * (len(outcomes) - landed)
        assert all(code_of(r.error) == grpc.StatusCode.FAILED_PRECONDITION for r in run.results[landed:])
        written += landed
    assert published.frame_count == written
    assert await exact_counts(metadata_stub, frames_db, version.id) == {written}
