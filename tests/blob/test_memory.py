"""Memory per WriteBlob stream of the blob service run as its own process (``python -m framevault.blob``).

The service's resident memory is sampled while a stream sends many parts' worth of data: what a stream
holds must be bounded by the part size, whatever size the caller declares.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import psutil
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support import channel_to, security_env

from framevault.common.config import Settings
from framevault.v1 import blob_pb2, blob_pb2_grpc

from .helpers import MIB, SMALL_PART, free_port, random_blob

TIB = 1024 * 1024 * MIB
START_TIMEOUT_S = 60.0
# What a stream may hold: the part being filled, the part in flight, and a copy of each on its way to S3.
PARTS_HELD = 4
# Memory outside the stream's own buffers that varies from run to run: HTTP client buffers, allocator
# slack. The same whatever the part size or the amount sent.
TRANSPORT_HEADROOM = 32 * MIB
# Sent per stream: far more than the bound, so a stream that buffers what it receives cannot pass.
SENT = 32 * SMALL_PART


@asynccontextmanager
async def blob_service_process(env: dict[str, str], log_path: Path) -> AsyncIterator[tuple[int, int]]:
    """The blob service as ``python -m framevault.blob``; yields its port and pid once it serves."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "framevault.blob"], stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **env, "FRAMEVAULT_BLOB_ADDRESS": address,
                                        "FRAMEVAULT_BLOB_METRICS_ADDRESS": ""})
    try:
        async with channel_to(port) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    assert process.poll() is None, log_path.read_text(errors="replace")
                    try:
                        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            break
                    except aio.AioRpcError:
                        pass
                    await asyncio.sleep(0.2)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def peak_rss_growth(pid: int) -> Iterator[list[int]]:
    """Samples the process's RSS until the block ends; the list then holds its peak growth in bytes."""
    process = psutil.Process(pid)
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    growth = [0]
    try:
        yield growth
    finally:
        done.set()
        sampler.join()
        growth[0] = max(peak[0], process.memory_info().rss) - before


async def send_without_finishing(stub: blob_pb2_grpc.BlobServiceStub, declared_size: int, data: bytes) -> int:
    """Streams ``data`` as the start of a blob of ``declared_size`` bytes, closes without finish_write."""
    digest_hash = os.urandom(32).hex()  # never finished, so never verified
    name = f"uploads/{uuid.uuid4()}/blobs/{digest_hash}/{declared_size}"

    async def messages() -> AsyncIterator[blob_pb2.WriteBlobRequest]:
        for offset in range(0, len(data), MIB):
            yield blob_pb2.WriteBlobRequest(resource_name=name if offset == 0 else "", write_offset=offset,
                                            data=data[offset:offset + MIB])

    response = await stub.WriteBlob(messages())
    return int(response.committed_size)


@pytest.mark.parametrize("declared", ["largest", "small"])
async def test_memory_per_write_stream_is_bounded_by_the_part_size(
        settings: Settings, stack_env: dict[str, str], tmp_path: Path, declared: str) -> None:
    env = {**stack_env, **security_env(settings), "FRAMEVAULT_S3_BUCKET": settings.s3_bucket, "FRAMEVAULT_LOG_LEVEL": "WARNING",
           "FRAMEVAULT_S3_PART_SIZE_BYTES": str(SMALL_PART), "FRAMEVAULT_S3_MAX_PART_SIZE_BYTES": str(SMALL_PART),
           # Far more than 10,000 parts of SMALL_PART hold: the part size must still not grow past its cap.
           "FRAMEVAULT_BLOB_MAX_SIZE_BYTES": str(5 * TIB),
           # What gRPC receives ahead of the handler: a fixed stream window (with gRPC's own window tuning
           # it grew to tens of MiB on loopback while a part went to the store, and the bound below failed).
           "FRAMEVAULT_GRPC_STREAM_WINDOW_BYTES": str(settings.grpc_stream_window_bytes)}
    sent = SENT
    data, _ = random_blob(sent)
    async with blob_service_process(env, tmp_path / "blob.log") as (port, pid):
        async with channel_to(port, options=[("grpc.max_send_message_length", 8 * MIB)]) as channel:
            stub = blob_pb2_grpc.BlobServiceStub(channel)
            caps = await stub.GetCapabilities(blob_pb2.GetCapabilitiesRequest())
            declared_size = caps.max_blob_size_bytes if declared == "largest" else sent + 1
            # Warm up (threads, connections, allocator) with a stream of a few parts first.
            await send_without_finishing(stub, 4 * SMALL_PART + 1, data[:4 * SMALL_PART])
            with peak_rss_growth(pid) as growth:
                committed = await send_without_finishing(stub, declared_size, data)
    # Every whole part was committed as it arrived...
    assert committed == sent
    # ...so the stream held a few parts, never what it sent.
    bound = PARTS_HELD * SMALL_PART + settings.grpc_stream_window_bytes + TRANSPORT_HEADROOM
    assert growth[0] <= bound, f"{growth[0] / MIB:.0f} MiB for parts of {SMALL_PART // MIB} MiB, {SENT // MIB} MiB sent"
