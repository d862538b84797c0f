"""An upload stream cut into many batches, on a metadata service of its own
whose batches are a few frames each: results come in stream order and are
counted once, frames of one id are written in stream order across batches,
a resend is unchanged and a refused frame fails alone."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from support import channel_to, start_metadata_service

from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.metadata.db import Database
from framevault.v1 import frame_pb2, metadata_service_pb2_grpc

from .helpers import (
    CREATED,
    FAILED,
    UNCHANGED,
    UPDATED,
    get_frame,
    image_frame,
    items,
    new_draft,
    revision_count,
    upload,
    visible_count,
)

pytestmark = pytest.mark.usefixtures("frames_db")

BATCH_FRAMES = 4


@pytest.fixture
async def small_batches(settings: Settings, blob_service: RunningService) -> AsyncIterator[Any]:
    """A stub of a metadata service on the session's database whose batches are a few frames each."""
    small = dataclasses.replace(settings, metadata_address="127.0.0.1:0", blob_target=f"127.0.0.1:{blob_service.port}",
                                upload_batch_frames=BATCH_FRAMES, upload_window_frames=16 * BATCH_FRAMES)
    service = await start_metadata_service(small)
    try:
        async with channel_to(service.port) as channel:
            yield metadata_service_pb2_grpc.MetadataServiceStub(channel)
    finally:
        await service.stop(grace=1)


async def test_results_of_many_batches_come_in_stream_order(small_batches, frames_db: Database):
    version = await new_draft(small_batches)
    frames = [image_frame(f"f{i:03d}", timestamp=i) for i in range(120)]
    run = await upload(small_batches, version.id, items(frames), per_message=3 * BATCH_FRAMES)
    assert [r.index for r in run.results] == list(range(120))
    assert [r.frame_id for r in run.results] == [f"f{i:03d}" for i in range(120)]
    assert run.outcomes() == [CREATED] * 120
    assert run.summary is not None and run.summary.created == 120 and run.summary.failed == 0
    assert await visible_count(frames_db, version.id) == 120


async def test_a_frame_id_in_several_batches_is_written_in_stream_order(small_batches, frames_db: Database):
    version = await new_draft(small_batches)
    # "same" recurs every few batches, between frames of their own; the last one wins.
    frames = [image_frame("same", labels=[f"v{i}"]) if i % 7 == 3 else image_frame(f"own{i}") for i in range(60)]
    run = await upload(small_batches, version.id, items(frames), per_message=2 * BATCH_FRAMES)
    outcomes = run.outcomes()
    same = [outcomes[i] for i in range(60) if i % 7 == 3]
    assert same == [CREATED] + [UPDATED] * (len(same) - 1)
    assert all(outcomes[i] == CREATED for i in range(60) if i % 7 != 3)
    last = max(i for i in range(60) if i % 7 == 3)
    assert list((await get_frame(small_batches, version.id, "same")).rois[0].labels) == [f"v{last}"]
    assert await revision_count(frames_db, version.id) == 60 - len(same) + 1


async def test_a_resend_in_many_batches_is_unchanged_and_a_failure_stays_alone(small_batches,
                                                                                  frames_db: Database):
    version = await new_draft(small_batches)
    frames = [image_frame(f"r{i:02d}") for i in range(40)]
    await upload(small_batches, version.id, items(frames))
    broken = list(frames)
    broken[17] = frame_pb2.Frame(id="r17")  # no source: refused by validation, alone
    run = await upload(small_batches, version.id, items(broken), per_message=BATCH_FRAMES)
    outcomes = run.outcomes()
    assert outcomes[17] == FAILED
    assert outcomes[:17] + outcomes[18:] == [UNCHANGED] * 39
    assert run.summary is not None and run.summary.unchanged == 39 and run.summary.failed == 1
    assert list(run.summary.failed_frame_ids) == ["r17"]
    assert await visible_count(frames_db, version.id) == 40
