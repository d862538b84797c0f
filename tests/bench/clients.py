"""Client processes of the benchmark: ``python clients.py JOB '<json params>'``.

Every job measures one thing from its own process and prints one JSON line.
Service jobs talk to the services through the generated gRPC stubs (never
the SDK), so what is measured is the service; raw jobs talk to MongoDB or
S3 directly with the same documents or bytes. Data is built before the clock
starts, except where a job says otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import psutil
import workload
from client_channels import async_channel
from grpc import aio
from pymongo import MongoClient
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from framevault.api.blob_client import write_blob_encoded, write_request
from framevault.metadata.db import FRAMES, INDEXES
from framevault.v1 import (
    blob_pb2,
    blob_pb2_grpc,
    dataset_pb2,
    metadata_service_pb2_grpc,
    view_pb2,
)
from framevault.v1 import (
    metadata_service_pb2 as ms,
)

UPLOAD_METHOD = "/framevault.v1.MetadataService/UploadFrames"
CALL_TIMEOUT_S = 3600.0
SEQUENTIAL_SORT = [("dataset_id", 1), ("context_id", 1), ("timestamp", 1), ("frame_id", 1)]
RAW_FRAMES_COLLECTION = "raw_frames"


def _version(version_id: str) -> dataset_pb2.VersionRef:
    return dataset_pb2.VersionRef(id=version_id)


def _mongo(uri: str) -> MongoClient[dict[str, Any]]:
    return MongoClient(uri, w="majority", tz_aware=True)


# --- P1: ingest ---------------------------------------------------------------


class _FrameCredit:
    """The upload window: frames sent and not yet answered stay within ``limit``."""

    def __init__(self, limit: int):
        self.limit = limit
        self.in_flight = 0
        self._changed = asyncio.Condition()

    async def take(self, frames: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight + frames <= self.limit)
            self.in_flight += frames

    async def give_back(self, frames: int) -> None:
        async with self._changed:
            self.in_flight -= frames
            self._changed.notify_all()


def _upload_payloads(prefix: str, start: int, count: int, per_message: int,
                     revision: int) -> Iterator[tuple[bytes, int]]:
    """Serialized UploadFramesRequest messages of ``per_message`` frames each."""
    for first in range(start, start + count, per_message):
        size = min(per_message, start + count - first)
        request = ms.UploadFramesRequest(
            items=[ms.UploadItem(frame=f) for f in workload.frames(prefix, size, first, revision)])
        yield request.SerializeToString(), size


async def _upload(target: str, version_id: str, payloads: Iterator[tuple[bytes, int]] | list[tuple[bytes, int]],
                  retries: int) -> dict[str, Any]:
    outcomes = {"created": 0, "updated": 0, "failed": 0}
    errors: list[str] = []
    summary: ms.UploadSummary | None = None
    options = ms.UploadFramesRequest(options=ms.UploadOptions(version=_version(version_id), upload_retries=retries))
    async with async_channel(target) as channel:
        # Requests are sent as prepared bytes so the client's own encoding is not on the clock.
        open_stream = channel.stream_stream(UPLOAD_METHOD, request_serializer=None,
                                            response_deserializer=ms.UploadFramesResponse.FromString)
        started_at = time.time()
        started = time.perf_counter()
        call = open_stream(timeout=CALL_TIMEOUT_S)
        await call.write(options.SerializeToString())
        first = await call.read()
        if first is aio.EOF or not first.HasField("started"):
            raise RuntimeError(f"upload stream did not start: {first}")
        credit = _FrameCredit(first.started.max_unacknowledged_frames)

        async def read_results() -> None:
            nonlocal summary
            while True:
                response = await call.read()
                if response is aio.EOF:
                    return
                kind = response.WhichOneof("message")
                if kind == "results":
                    for result in response.results.results:
                        name = ms.FrameResult.Outcome.Name(result.outcome).removeprefix("OUTCOME_").lower()
                        outcomes[name] = outcomes.get(name, 0) + 1
                        if result.outcome == ms.FrameResult.OUTCOME_FAILED and len(errors) < 5:
                            errors.append(f"{result.frame_id}: {result.error.message}")
                    await credit.give_back(len(response.results.results))
                elif kind == "summary":
                    summary = response.summary

        reader = asyncio.create_task(read_results())
        messages = 0
        for payload, frames in payloads:
            await credit.take(min(frames, credit.limit))
            await call.write(payload)
            messages += 1
        await call.done_writing()
        await reader
        if await call.code() != grpc.StatusCode.OK:
            raise RuntimeError(f"upload stream failed: {await call.code()} {await call.details()}")
        seconds = time.perf_counter() - started
    frames_total = sum(outcomes.values())
    # Wall-clock start and end, so the harness can time concurrent client processes together.
    return {"frames": frames_total, "seconds": seconds, "frames_per_s": frames_total / seconds,
            "started_at": started_at, "finished_at": started_at + seconds,
            "messages": messages, "window": credit.limit, "errors": errors,
            "summary": {"created": summary.created, "updated": summary.updated, "failed": summary.failed}
            if summary else None, **outcomes}


def upload(target: str, version_id: str, prefix: str, count: int, start: int = 0,
           frames_per_message: int = 500, prebuild: bool = True, retries: int = 3,
           revision: int = 0) -> dict[str, Any]:
    """Streams ``count`` frames into a draft through UploadFrames.

    With ``prebuild`` every request is encoded before the clock starts;
    without it (the memory row, whose frame counts do not fit in memory)
    frames are built as they are sent.
    """
    payloads = _upload_payloads(prefix, start, count, frames_per_message, revision)
    prepared = list(payloads) if prebuild else payloads
    cpu_before = time.process_time()
    result = asyncio.run(_upload(target, version_id, prepared, retries))
    # With prebuilt requests this is the client's streaming cost alone (all its threads).
    result["client_cpu_us_per_frame"] = (time.process_time() - cpu_before) * 1e6 / max(1, result["frames"])
    result["frames_per_message"] = frames_per_message
    return result


def raw_insert(mongodb_uri: str, database: str, prefix: str, count: int, batch: int,
               dataset_id: str, version_id: str) -> dict[str, Any]:
    """``insert_many(ordered=False)`` of the same documents into a collection with the same indexes."""
    client = _mongo(mongodb_uri)
    db = client.get_database(database, write_concern=WriteConcern(w="majority"))
    db.drop_collection(RAW_FRAMES_COLLECTION)
    collection = db[RAW_FRAMES_COLLECTION]
    collection.create_indexes(INDEXES[FRAMES])
    docs = [workload.frame_document(f, dataset_id=dataset_id, version_id=version_id)
            for f in workload.frames(prefix, count)]
    started = time.perf_counter()
    for first in range(0, count, batch):
        collection.insert_many(docs[first:first + batch], ordered=False)
    seconds = time.perf_counter() - started
    db.drop_collection(RAW_FRAMES_COLLECTION)
    client.close()
    return {"frames": count, "seconds": seconds, "frames_per_s": count / seconds, "batch": batch}


# --- P2 / P4: ordered iteration -------------------------------------------------


def iterate(target: str, version_id: str, frames_per_message: int = 0, max_frames: int = 0) -> dict[str, Any]:
    """Reads a version in sequential order through IterateFrames."""
    view = view_pb2.View(selections=[view_pb2.ViewSelection(version=_version(version_id))],
                         order=view_pb2.ITERATION_ORDER_SEQUENTIAL, max_frames=max_frames)
    request = ms.IterateFramesRequest(view=view, frames_per_message=frames_per_message)

    async def run() -> dict[str, Any]:
        async with async_channel(target) as channel:
            stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
            frames = messages = 0
            started_at = time.time()
            started = time.perf_counter()
            async for response in stub.IterateFrames(request, timeout=CALL_TIMEOUT_S):
                frames += len(response.frames)
                messages += 1
            seconds = time.perf_counter() - started
        return {"frames": frames, "messages": messages, "seconds": seconds, "frames_per_s": frames / seconds,
                "started_at": started_at, "finished_at": started_at + seconds}

    return asyncio.run(run())


def raw_cursor(mongodb_uri: str, database: str, dataset_id: str, version_id: str, limit: int = 0) -> dict[str, Any]:
    """The same frames through a sorted pymongo cursor on the service's own index."""
    client = _mongo(mongodb_uri)
    frames = client.get_database(database, read_concern=ReadConcern("majority"))[FRAMES]
    cursor = (frames.find({"dataset_id": dataset_id, "version_id": version_id})
              .sort(SEQUENTIAL_SORT).hint("sequential_order").limit(limit))
    started = time.perf_counter()
    count = sum(1 for _ in cursor)
    seconds = time.perf_counter() - started
    client.close()
    return {"frames": count, "seconds": seconds, "frames_per_s": count / seconds}


# --- P3: blobs ------------------------------------------------------------------


def _minio(endpoint: str, access_key: str, secret_key: str, region: str) -> Any:
    from minio import Minio

    return Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=False, region=region)


WARMUP_BLOB_BYTES = 64 * 1024


def _fresh_blob(size: int) -> tuple[bytes, blob_pb2.Digest]:
    data = os.urandom(size)
    return data, blob_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=size)


async def _service_write(channel: aio.Channel, data: bytes, digest: blob_pb2.Digest, chunk_size: int) -> float:
    view = memoryview(data)
    size = len(data)
    resource = f"uploads/{uuid.uuid4()}/blobs/{digest.hash}/{size}"
    # Requests written around each chunk (one copy), as the SDK sends them.
    write = write_blob_encoded(channel)

    async def chunks() -> AsyncIterator[bytes]:
        offset = 0
        while True:
            piece = view[offset:offset + chunk_size]
            last = offset + len(piece) >= size
            yield write_request(resource if offset == 0 else "", offset, piece, last)
            offset += len(piece)
            if last:
                return

    started = time.perf_counter()
    reply = await write(chunks(), timeout=CALL_TIMEOUT_S)
    seconds = time.perf_counter() - started
    if reply.committed_size != size or reply.already_existed:
        raise RuntimeError(f"unexpected WriteBlob reply {reply}")
    return seconds


async def _service_read(stub: blob_pb2_grpc.BlobServiceStub, digest: blob_pb2.Digest) -> float:
    received = 0
    started = time.perf_counter()
    async for response in stub.ReadBlob(blob_pb2.ReadBlobRequest(digest=digest), timeout=CALL_TIMEOUT_S):
        received += len(response.data)
    seconds = time.perf_counter() - started
    if received != digest.size_bytes:
        raise RuntimeError(f"ReadBlob returned {received} of {digest.size_bytes} bytes")
    return seconds


def _raw_put_get(client: Any, bucket: str, data: bytes, chunk_size: int, part_size: int,
                 meter: _CpuMeter | None = None) -> tuple[float, float]:
    key = f"bench-raw/{uuid.uuid4()}"
    with meter.phase("raw_write") if meter else contextlib.nullcontext():
        started = time.perf_counter()
        client.put_object(bucket, key, io.BytesIO(data), len(data), part_size=part_size)
        write_s = time.perf_counter() - started
    received = 0
    with meter.phase("raw_read") if meter else contextlib.nullcontext():
        started = time.perf_counter()
        response = client.get_object(bucket, key)
        try:
            for piece in response.stream(chunk_size):
                received += len(piece)
        finally:
            response.close()
            response.release_conn()
        read_s = time.perf_counter() - started
    if received != len(data):
        raise RuntimeError(f"get_object returned {received} of {len(data)} bytes")
    client.remove_object(bucket, key)
    return write_s, read_s


class _CpuMeter:
    """CPU seconds of this process and of other processes (the blob service, the S3 server's
    processes), summed per phase of a round trip."""

    PHASES = ("service_write", "service_read", "raw_write", "raw_read")

    def __init__(self, service_pids: list[int], store_pids: list[int]):
        self._service = [psutil.Process(p) for p in service_pids]
        self._store = [psutil.Process(p) for p in store_pids]
        self.seconds = {f"{phase}_{who}": 0.0 for phase in self.PHASES for who in ("client", "service", "store")}

    @staticmethod
    def _cpu(processes: list[psutil.Process]) -> float:
        total = 0.0
        for process in processes:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def _now(self) -> tuple[float, float, float]:
        return time.process_time(), self._cpu(self._service), self._cpu(self._store)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        before = self._now()
        yield
        for who, start, end in zip(("client", "service", "store"), before, self._now(), strict=True):
            self.seconds[f"{name}_{who}"] += end - start


def blob_round_trip(target: str, endpoint: str, access_key: str, secret_key: str, region: str, bucket: str,
                    size: int, rounds: int, chunk_size: int, part_size: int, service_first: bool,
                    service_pids: list[int] | None = None, store_pids: list[int] | None = None) -> dict[str, Any]:
    """Writes and reads fresh random bytes through the blob service and directly with ``minio``.

    Both sides first move one small blob (connections, pools and threads
    warm), then ``rounds`` blobs of ``size`` each; times are summed per side
    and direction. Every round's bytes are new, so content addressing never
    skips a write. CPU time of this process, of the blob service
    (``service_pids``) and of the S3 server (``store_pids``) is summed per
    side and direction the same way (``cpu_s``).
    """
    blobs = [_fresh_blob(size) for _ in range(rounds)]
    timings = {"service_write_s": 0.0, "service_read_s": 0.0, "raw_write_s": 0.0, "raw_read_s": 0.0}
    meter = _CpuMeter(service_pids or [], store_pids or [])

    async def service_side() -> None:
        async with async_channel(target) as channel:
            stub = blob_pb2_grpc.BlobServiceStub(channel)
            warm, warm_digest = _fresh_blob(WARMUP_BLOB_BYTES)
            await _service_write(channel, warm, warm_digest, chunk_size)
            await _service_read(stub, warm_digest)
            written = [warm_digest]
            for data, digest in blobs:
                with meter.phase("service_write"):
                    timings["service_write_s"] += await _service_write(channel, data, digest, chunk_size)
                with meter.phase("service_read"):
                    timings["service_read_s"] += await _service_read(stub, digest)
                written.append(digest)
            await stub.DeleteBlobs(blob_pb2.DeleteBlobsRequest(digests=written), timeout=60)

    def raw_side() -> None:
        client = _minio(endpoint, access_key, secret_key, region)
        _raw_put_get(client, bucket, os.urandom(WARMUP_BLOB_BYTES), chunk_size, part_size)
        for data, _ in blobs:
            write_s, read_s = _raw_put_get(client, bucket, data, chunk_size, part_size, meter)
            timings["raw_write_s"] += write_s
            timings["raw_read_s"] += read_s

    if service_first:
        asyncio.run(service_side())
        raw_side()
    else:
        raw_side()
        asyncio.run(service_side())
    return {"size": size, "rounds": rounds, **timings, "cpu_s": meter.seconds}


# --- P6: get-one latency --------------------------------------------------------


def _wait_until(wall_time: float) -> None:
    delay = wall_time - time.time()
    if delay > 0:
        time.sleep(delay)


def get_frame_latency(target: str, version_id: str, prefix: str, frame_count: int, concurrency: int,
                      start_at: float, warmup_s: float, measure_s: float, worker: int = 0) -> dict[str, Any]:
    """``concurrency`` closed-loop GetFrame callers (one channel each) for a fixed time."""
    _wait_until(start_at)

    calls = 0

    async def caller(n: int, latencies: list[float], stop_at: float, measure_from: float) -> None:
        nonlocal calls
        rng = random.Random(worker * 1000 + n)
        async with async_channel(target) as channel:
            stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
            while True:
                request = ms.GetFrameRequest(version=_version(version_id),
                                             frame_id=workload.frame_id(prefix, rng.randrange(frame_count)))
                began = time.perf_counter()
                if began >= stop_at:
                    return
                await stub.GetFrame(request, timeout=30)
                calls += 1
                if began >= measure_from:
                    latencies.append(time.perf_counter() - began)

    async def run() -> list[float]:
        latencies: list[float] = []
        now = time.perf_counter()
        await asyncio.gather(*(caller(n, latencies, now + warmup_s + measure_s, now + warmup_s)
                               for n in range(concurrency)))
        return latencies

    latencies = asyncio.run(run())
    # ``calls`` counts the warm-up too, as the service's CPU time over the run does.
    return {"latencies_ms": [round(s * 1000, 4) for s in latencies], "measure_s": measure_s, "calls": calls}


def raw_get_latency(mongodb_uri: str, database: str, dataset_id: str, version_id: str, prefix: str,
                    frame_count: int, concurrency: int, start_at: float, warmup_s: float, measure_s: float,
                    worker: int = 0) -> dict[str, Any]:
    """``concurrency`` closed-loop threads reading one frame document by id with pymongo."""
    client = _mongo(mongodb_uri)
    frames = client.get_database(database, read_concern=ReadConcern("majority"))[FRAMES]
    frames.find_one({"dataset_id": dataset_id})  # connect before the clock starts
    _wait_until(start_at)
    latencies: list[float] = []
    lock = threading.Lock()
    now = time.perf_counter()
    stop_at, measure_from = now + warmup_s + measure_s, now + warmup_s

    def caller(n: int) -> None:
        rng = random.Random(worker * 1000 + n)
        mine: list[float] = []
        while True:
            query = {"dataset_id": dataset_id, "frame_id": workload.frame_id(prefix, rng.randrange(frame_count)),
                     "version_id": version_id}
            began = time.perf_counter()
            if began >= stop_at:
                break
            if frames.find_one(query) is None:
                raise RuntimeError(f"frame missing: {query}")
            if began >= measure_from:
                mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    return {"latencies_ms": [round(s * 1000, 4) for s in latencies], "measure_s": measure_s}


JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    "upload": upload,
    "raw_insert": raw_insert,
    "iterate": iterate,
    "raw_cursor": raw_cursor,
    "blob_round_trip": blob_round_trip,
    "get_frame_latency": get_frame_latency,
    "raw_get_latency": raw_get_latency,
}


def main() -> None:
    job, params = sys.argv[1], json.loads(sys.argv[2])
    try:
        result = JOBS[job](**params)
    except grpc.RpcError as exc:
        raise SystemExit(f"{job}: {exc.code().name}: {exc.details()}") from exc
    print(json.dumps(result))


if __name__ == "__main__":
    main()
