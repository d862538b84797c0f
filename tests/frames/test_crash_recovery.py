"""kill -9 of the metadata service while it is inside a write transaction:
the dead transaction lives on in MongoDB until its lifetime ends, and holds
what it wrote. A restarted service must write into the same draft at once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import psutil
import pymongo
import pytest
from support import channel_to, free_port, security_env

from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.metadata.db import Database
from framevault.stack.services import ServiceProcess
from framevault.v1 import metadata_service_pb2 as ms
from framevault.v1 import metadata_service_pb2_grpc

from .helpers import CREATED, UploadRun, by_id, count_frames, image_frame, items, new_draft, upload, visible_count

pytestmark = pytest.mark.usefixtures("frames_db")

ROUNDS = 8
# Frames per doomed stream: far more than are written before the kill.
DOOMED_FRAMES = 50_000
FRESH_FRAMES = 600
# The service's credit window (upload_window_frames): frames sent but unanswered at most.
WINDOW = Settings().upload_window_frames
# How long to wait for an open transaction before killing anyway.
TRANSACTION_WAIT_SECONDS = 2.0


@dataclass
class MetadataProcess:
    """``python -m framevault.metadata`` against this session's database, on a fixed address."""

    env: dict[str, str]
    port: int
    mongodb_port: int
    process: ServiceProcess | None = None

    def start(self) -> None:
        self.process = ServiceProcess.start("metadata", self.env)
        self.process.wait_serving()

    def mongodb_client_ports(self) -> set[int]:
        """Local ports of the process's connections to MongoDB."""
        assert self.process is not None
        return {c.laddr.port for c in psutil.Process(self.process.pid).net_connections(kind="tcp")
                if c.raddr and c.raddr.port == self.mongodb_port}

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()


@pytest.fixture
def metadata_process(settings: Settings, stack_env: dict[str, str], blob_service: RunningService
                     ) -> Iterator[MetadataProcess]:
    port = free_port()
    env = {
        **os.environ, **stack_env, **security_env(settings),
        "FRAMEVAULT_MONGODB_DATABASE": settings.mongodb_database,
        "FRAMEVAULT_S3_BUCKET": settings.s3_bucket,
        "FRAMEVAULT_METADATA_ADDRESS": f"127.0.0.1:{port}",
        "FRAMEVAULT_BLOB_TARGET": f"127.0.0.1:{blob_service.port}",
        "FRAMEVAULT_METADATA_METRICS_ADDRESS": "",
        "FRAMEVAULT_LOG_LEVEL": "WARNING",
    }
    service = MetadataProcess(env, port, urlsplit(settings.mongodb_uri.get_secret_value()).port or 27017)
    try:
        yield service
    finally:
        if service.process is not None:
            service.process.stop()


@pytest.fixture
async def process_stub(metadata_process: MetadataProcess
                       ) -> AsyncIterator[metadata_service_pb2_grpc.MetadataServiceStub]:
    await asyncio.to_thread(metadata_process.start)
    async with channel_to(metadata_process.port) as channel:
        yield metadata_service_pb2_grpc.MetadataServiceStub(channel)


def open_transactions(client: pymongo.MongoClient[Any], client_ports: set[int]) -> int:
    """Transactions (running or idle) that connections from ``client_ports`` opened."""
    ops = client.admin.aggregate([
        {"$currentOp": {"allUsers": True, "idleSessions": True}},
        {"$match": {"transaction": {"$exists": True}}},
    ])
    return sum(1 for op in ops if int(str(op.get("client", ":0")).rsplit(":", 1)[1]) in client_ports)


async def kill_inside_a_transaction(service: MetadataProcess, mongo: pymongo.MongoClient[Any],
                                    streaming: asyncio.Task[Any]) -> bool:
    """SIGKILLs the service once it holds an open transaction (or after
    ``TRANSACTION_WAIT_SECONDS``, so the stream is always cut while live);
    whether a transaction outlived it (one may commit in the last instant).

    The process's connections are read on every poll: its pool opens new
    ones mid-stream, and a transaction on one read later would go unseen."""
    deadline = asyncio.get_running_loop().time() + TRANSACTION_WAIT_SECONDS
    ports = service.mongodb_client_ports()
    while not await asyncio.to_thread(open_transactions, mongo, ports):
        assert not streaming.done(), "the stream ended before the kill"
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.001)
        ports = service.mongodb_client_ports()
    service.kill()
    return await asyncio.to_thread(open_transactions, mongo, ports) > 0


async def test_a_restarted_service_writes_into_the_draft_at_once(
        metadata_process: MetadataProcess, process_stub, settings: Settings, frames_db: Database):
    version = await new_draft(process_stub)
    created = 0
    dead_transactions = 0
    with pymongo.MongoClient(settings.mongodb_uri.get_secret_value()) as mongo:
        for round_no in range(ROUNDS):
            doomed = UploadRun()
            doomed_frames = [image_frame(f"r{round_no}-doomed-{i:06d}") for i in range(DOOMED_FRAMES)]
            streaming = asyncio.create_task(upload(process_stub, version.id, items(doomed_frames), run=doomed))
            # Well into the stream, so its writes are in full flow.
            while len(doomed.results) < 500 and not streaming.done():
                await asyncio.sleep(0.005)
            assert not streaming.done(), "the stream ended before the kill"
            dead_transactions += await kill_inside_a_transaction(metadata_process, mongo, streaming)
            with pytest.raises(Exception):  # noqa: B017 - the stream is cut, however the client reports it
                await streaming

            await asyncio.to_thread(metadata_process.start)
            # The resend: every frame the dead stream had sent (at most a window beyond its results),
            # including those its dead transaction was writing.
            resent = await upload(process_stub, version.id, items(doomed_frames[:len(doomed.results) + WINDOW]))
            assert resent.summary is not None and resent.summary.failed == 0, \
                {r.frame_id: r.error.message for r in resent.results if r.error.code}
            created += len(resent.results)
            fresh = await upload(process_stub, version.id, items(
                image_frame(f"r{round_no}-fresh-{i:04d}") for i in range(FRESH_FRAMES)))  # default retries
            assert fresh.summary is not None
            assert [r.outcome for r in fresh.results] == [CREATED] * FRESH_FRAMES, \
                {ms.FrameResult.Outcome.Name(r.outcome): r.error.message for r in fresh.results if r.error.code}
            created += FRESH_FRAMES
            # A unary write of a frame the dead transaction did not touch.
            kept = doomed.results[0].frame_id
            updated = await process_stub.UpdateFrame(ms.UpdateFrameRequest(
                version=by_id(version.id), frame=image_frame(kept, labels=["after the crash"])))
            assert list(updated.rois[0].labels) == ["after the crash"]
    # The crash really left transactions behind (kills just after a commit leave none).
    assert dead_transactions >= ROUNDS // 2
    assert await count_frames(process_stub, version.id) == created == await visible_count(frames_db, version.id)
    published = await process_stub.PublishVersion(ms.PublishVersionRequest(version=by_id(version.id)))
    assert published.frame_count == created

