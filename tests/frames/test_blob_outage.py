"""The upload stream when the blob service is down (a real outage: nothing
listens where the metadata service expects it): frames needing it are
retried, then fail UNAVAILABLE; when it comes back, they go through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import pytest
from support import channel_to, free_port

from framevault.blob.app import build_service as build_blob_service
from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.metadata.app import build_service as build_metadata_service
from framevault.metadata.db import Database
from framevault.v1 import frame_pb2, metadata_service_pb2_grpc

from .helpers import (
    CREATED,
    FAILED,
    code_of,
    count_frames,
    image_frame,
    items,
    missing_digest,
    new_draft,
    revision_count,
    unique,
    upload,
)

pytestmark = pytest.mark.usefixtures("frames_db")



class Outage:
    """A metadata service whose blob service is down until ``restore``."""

    def __init__(self, settings: Settings):
        self.blob_port = free_port()
        self.settings = replace(settings, blob_target=f"127.0.0.1:{self.blob_port}",
                                metadata_address="127.0.0.1:0", upload_retry_base_delay_ms=100)
        self.metadata = RunningService(build_metadata_service(self.settings), self.settings)
        self.blob: RunningService | None = None

    async def restore(self) -> None:
        blob_settings = replace(self.settings, blob_address=f"127.0.0.1:{self.blob_port}")
        self.blob = RunningService(build_blob_service(blob_settings), blob_settings)
        await self.blob.start()


@pytest.fixture
async def outage(settings: Settings) -> AsyncIterator[Outage]:
    down = Outage(settings)
    await down.metadata.start()
    try:
        yield down
    finally:
        await down.metadata.stop(grace=1)
        if down.blob is not None:
            await down.blob.stop(grace=1)


@pytest.fixture
async def outage_stub(outage: Outage) -> AsyncIterator[metadata_service_pb2_grpc.MetadataServiceStub]:
    async with channel_to(outage.metadata.port) as channel:
        yield metadata_service_pb2_grpc.MetadataServiceStub(channel)


def inline_frame(frame_id: str) -> frame_pb2.Frame:
    return frame_pb2.Frame(id=frame_id, sources=[frame_pb2.Source(inline_content=unique("bytes").encode())])


async def test_frames_needing_the_blob_service_fail_unavailable_after_their_retries(
        outage_stub, frames_db: Database):
    version = await new_draft(outage_stub)
    run = await upload(outage_stub, version.id, items([inline_frame("inline"), image_frame("external")]), retries=1)
    assert run.outcomes() == [FAILED, CREATED]
    assert code_of(run.results[0].error) == grpc.StatusCode.UNAVAILABLE
    assert [r.attempts for r in run.results] == [2, 1]
    assert list(run.summary.failed_frame_ids) == ["inline"]
    assert await count_frames(outage_stub, version.id) == 1 == await revision_count(frames_db, version.id)


async def test_frames_without_blobs_are_written_while_the_blob_service_is_down(outage_stub, frames_db: Database):
    version = await new_draft(outage_stub)
    referencing = frame_pb2.Frame(id="referencing", sources=[frame_pb2.Source(uri=missing_digest().uri)])
    run = await upload(outage_stub, version.id, items([referencing, image_frame("plain")]), retries=1)
    assert run.outcomes() == [FAILED, CREATED]
    assert code_of(run.results[0].error) == grpc.StatusCode.UNAVAILABLE
    assert [r.attempts for r in run.results] == [2, 1]
    assert await count_frames(outage_stub, version.id) == 1 == await revision_count(frames_db, version.id)


async def test_frames_go_through_once_the_blob_service_is_back(outage: Outage, outage_stub):
    version = await new_draft(outage_stub)

    async def restore_soon() -> None:
        # Longer than one attempt (the gateway's own quick retries included),
        # so every frame has failed at least once by then.
        await asyncio.sleep(3.0)
        await outage.restore()

    restoring = asyncio.create_task(restore_soon())
    run = await upload(outage_stub, version.id, items([inline_frame(f"i{n}") for n in range(3)]), retries=10)
    await restoring
    assert run.outcomes() == [CREATED] * 3
    assert all(r.attempts > 1 for r in run.results)
    assert await count_frames(outage_stub, version.id) == 3
