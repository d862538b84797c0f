"""The upload stream's retry path under a real fault: a 3-node replica set of
its own whose primary crashes (SIGKILL) in the middle of a write transaction
while frames stream in."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support import admin_token_of, channel_to, own_admin_key_file

from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.metadata.app import build_service
from framevault.metadata.db import Database
from framevault.stack.mongo import MongoReplicaSet
from framevault.stack.supervision import port_open, wait_until
from framevault.v1 import metadata_service_pb2 as ms
from framevault.v1 import metadata_service_pb2_grpc

from .helpers import CREATED, UNCHANGED, UploadRun, count_frames, image_frame, new_draft, upload, visible_count

pytestmark = pytest.mark.failover

# Small batches and many of them: the stream is in a transaction most of the time.
BATCH_FRAMES = 50
# The first fault comes once this many frames are in...
FRAMES_BEFORE_FAULTS = 500
# ...and the stream goes on until the faults are over plus this many frames...
FRAMES_AFTER_FAULTS = 500
# ...but never beyond this.
MAX_FRAMES = 30_000
MAX_CRASHES = 3


def free_port_run(count: int) -> int:
    """A base port with ``count`` free consecutive ports after it."""
    for _ in range(200):
        base = random.randrange(28000, 32000)
        if not any(port_open(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free port range for the replica set")


def crash_primary_during_a_transaction(rs: MongoReplicaSet) -> int:
    """Waits until the primary holds an open transaction, then SIGKILLs it:
    the transaction dies with it, so the frames it was writing must be
    retried against the next primary. Returns the killed port. Blocking: run
    it in a thread."""
    primary = rs.primary_port()
    with rs.node_client(primary) as client:
        wait_until(lambda: _has_open_transaction(client), 60, "an open transaction",
                         interval=0.002, max_interval=0.01)
        rs.kill_node(primary)
    return primary


def _has_open_transaction(client: Any) -> bool:
    ops = client.admin.aggregate([
        {"$currentOp": {"allUsers": True, "idleSessions": True}},
        {"$match": {"transaction": {"$exists": True}}},
    ])
    return any(True for _ in ops)


@pytest.fixture
async def replica_set(tmp_path: Path) -> AsyncIterator[MongoReplicaSet]:
    rs = MongoReplicaSet(base_port=free_port_run(3), nodes=3, data_dir=tmp_path / "rs",
                               name=f"fvfailover{uuid.uuid4().hex[:6]}")
    try:
        await asyncio.to_thread(rs.start)
        yield rs
    finally:
        await asyncio.to_thread(rs.stop)
        await asyncio.to_thread(rs.purge)


async def test_frames_survive_a_primary_crash(settings: Settings, blob_service: RunningService,
                                                   replica_set: MongoReplicaSet):
    rs_settings = own_admin_key_file(replace(
        settings, mongodb_uri=replica_set.uri, mongodb_database=f"fvfailover_{uuid.uuid4().hex[:8]}",
        blob_target=f"127.0.0.1:{blob_service.port}", metadata_address="127.0.0.1:0",
        upload_batch_frames=BATCH_FRAMES, upload_window_frames=8 * BATCH_FRAMES,
    ))
    database = Database(rs_settings)
    await database.prepare()
    service = RunningService(build_service(rs_settings), rs_settings)
    try:
        await service.start()
        async with channel_to(service.port, token=admin_token_of(rs_settings)) as channel:
            stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
            version = await new_draft(stub)
            run = UploadRun()

            async def crash_primaries_while_streaming() -> int:
                crashes = 0
                killed: int | None = None
                while len(run.results) < FRAMES_BEFORE_FAULTS:
                    await asyncio.sleep(0.01)
                while crashes < MAX_CRASHES and not any(r.attempts > 1 for r in run.results):
                    if killed is not None:
                        await asyncio.to_thread(replica_set.restart_node, killed)  # keep a majority for the next
                    killed = await asyncio.to_thread(crash_primary_during_a_transaction, replica_set)
                    crashes += 1
                    await asyncio.to_thread(replica_set.primary_port)
                    # Frames caught in flight report their extra attempts once retried.
                    seen = len(run.results)
                    while len(run.results) < seen + 4 * BATCH_FRAMES:
                        await asyncio.sleep(0.01)
                return crashes

            crasher = asyncio.create_task(crash_primaries_while_streaming())

            def frames_until_the_faults_are_over() -> Iterator[ms.UploadItem]:
                stop_at = MAX_FRAMES
                for i in range(MAX_FRAMES):
                    if crasher.done():
                        stop_at = min(stop_at, i + FRAMES_AFTER_FAULTS)
                    if i >= stop_at:
                        return
                    yield ms.UploadItem(frame=image_frame(f"f{i:05d}", context=f"c{i % 11}", timestamp=i))

            await upload(stub, version.id, frames_until_the_faults_are_over(), retries=10, per_message=BATCH_FRAMES,
                         run=run)
            crashes = await crasher

            sent = len(run.results)
            assert crashes >= 1 and sent < MAX_FRAMES
            assert run.summary is not None and run.summary.failed == 0, list(run.summary.failed_frame_ids)[:5]
            assert {r.outcome for r in run.results} <= {CREATED, UNCHANGED}
            assert [r.index for r in run.results] == list(range(sent))
            assert any(r.attempts > 1 for r in run.results), "the crashes never hit a write in flight"
            # A retried unit whose commit did land finds its frames stored: unchanged; either way each is there once.
            assert run.summary.created + run.summary.unchanged == sent
            assert await count_frames(stub, version.id) == sent
            assert await visible_count(database, version.id) == sent
            assert await database.frames.count_documents({"version_id": version.id}) == sent
    finally:
        await service.stop(grace=1)
        await database.close()
