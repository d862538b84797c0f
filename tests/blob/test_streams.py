"""The byte streams of WriteBlob / ReadBlob: messages encoded by hand, reads ahead of the caller."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import random
import threading
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

import psutil
import pytest
from minio import Minio

from framevault.api.digests import BlobDigest
from framevault.blob import wire
from framevault.blob.hashing import Sha256
from framevault.blob.keys import cas_key
from framevault.blob.storage import PartInfo, S3BlobStorage
from framevault.blob.uploads import BlobWriter, WriteChunk
from framevault.common.config import Settings
from framevault.common.request_decoding import UndecodableRequest
from framevault.common.server import RunningService
from framevault.v1 import blob_pb2, blob_pb2_grpc

from .helpers import MIB, SMALL_PART, channel_to, random_blob, start_blob_service

POOL_THREAD_PREFIX = "s3_"
READ_AHEAD_THREAD = "s3-read-ahead"


@pytest.mark.parametrize("offset", [0, 1, 127, 128, 300, 2**31, 2**63 - 1])
@pytest.mark.parametrize("size", [0, 1, 127, 128, 16384, MIB])
def test_read_response_decodes_as_the_message(offset: int, size: int) -> None:
    data = os.urandom(size)
    encoded = wire.read_response(offset, data)
    decoded = blob_pb2.ReadBlobResponse.FromString(encoded)
    assert (decoded.offset, decoded.data) == (offset, data)
    # As long as protobuf's own encoding (the same fields, in another order).
    assert len(encoded) == blob_pb2.ReadBlobResponse(offset=offset, data=data).ByteSize()


def _storage_threads(read_ahead: bool) -> set[threading.Thread]:
    """Threads of the storages' S3 pools (their names start with the pool's prefix), or their
    read-ahead threads."""
    return {t for t in threading.enumerate()
            if (t.name == READ_AHEAD_THREAD if read_ahead else t.name.startswith(POOL_THREAD_PREFIX))}


def _store_connections(settings: Settings) -> set[tuple[str, int]]:
    """Local addresses of this process's TCP connections to the S3 server."""
    port = int(settings.s3_endpoint.rsplit(":", 1)[1])
    return {(c.laddr.ip, c.laddr.port) for c in psutil.Process().net_connections("tcp")
            if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED}


async def test_read_range_stopped_early_ends_its_reading_and_lets_go_of_the_connection(
        s3: S3BlobStorage, settings: Settings) -> None:
    key = f"tests/streams/{uuid.uuid4().hex}"
    data = os.urandom(12 * MIB + 5)
    await s3.put(key, data)
    before = _storage_threads(True)
    try:
        # More readers than the HTTP pool keeps connections and than the thread pool has threads: each
        # lets go of its slot, so the next one gets one.
        for _ in range(settings.s3_max_concurrency + 8):
            stream = cast(AsyncGenerator[bytes, None], s3.read_range(key, 0, len(data), MIB))
            assert await anext(stream) == data[:MIB]
            await stream.aclose()
        for thread in _storage_threads(True) - before:
            await asyncio.to_thread(thread.join, 60)
            assert not thread.is_alive()
        chunks = [c async for c in s3.read_range(key, 3, len(data) - 3, MIB)]
        assert [len(c) for c in chunks] == [MIB] * 12 + [2]
        assert b"".join(chunks) == data[3:]
    finally:
        await s3.delete(key)


class PeakUse:
    """Samples, while its block runs, how many S3 pool threads, read-ahead threads and S3 connections
    this process has beyond those it had when this was made; keeps the largest numbers."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._before = _storage_threads(False), _storage_threads(True), _store_connections(settings)
        self.pool_threads = self.read_ahead_threads = self.connections = 0

    async def _watch(self) -> None:
        pool, read_ahead, connections = self._before
        while True:
            self.pool_threads = max(self.pool_threads, len(_storage_threads(False) - pool))
            self.read_ahead_threads = max(self.read_ahead_threads, len(_storage_threads(True) - read_ahead))
            self.connections = max(self.connections, len(_store_connections(self._settings) - connections))
            await asyncio.sleep(0.005)

    async def __aenter__(self) -> PeakUse:
        self._watcher = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._watcher.cancel()


async def _slow_concurrent_reads(bounded: Settings, readers: int) -> tuple[int, PeakUse]:
    """``readers`` callers slower than the store read one blob at once; returns how many read at
    the same time at most, and the peak use of threads and connections."""
    # Counted from before the storage's first request: its every thread and connection.
    peak = PeakUse(bounded)
    storage = S3BlobStorage(bounded)
    key = f"tests/streams/{uuid.uuid4().hex}"
    data = os.urandom(6 * MIB + 1)
    await storage.put(key, data)
    reading = most_reading = 0

    async def slow_reader() -> bytes:
        nonlocal reading, most_reading
        pieces = []
        async for chunk in storage.read_range(key, 0, len(data), MIB):
            if not pieces:
                reading += 1
                most_reading = max(most_reading, reading)
            pieces.append(chunk)
            # A caller slower than the store: the read-ahead fills up and waits for it.
            await asyncio.sleep(0.02)
        reading -= 1
        return b"".join(pieces)

    try:
        async with peak:
            results = await asyncio.gather(*(slow_reader() for _ in range(readers)))
    finally:
        await storage.delete(key)
        await storage.close()
    assert results == [data] * readers
    return most_reading, peak


async def test_concurrent_reads_stay_within_blob_max_open_reads_threads_and_connections(settings: Settings) -> None:
    bounded = Settings(**{**settings.__dict__, "s3_max_concurrency": 3, "blob_max_open_reads": 3})
    most_reading, peak = await _slow_concurrent_reads(bounded, readers=12)
    assert most_reading == 3
    assert 1 <= peak.pool_threads <= 3 and 1 <= peak.read_ahead_threads <= 3
    assert 1 <= peak.connections <= 3


async def test_slow_readers_do_not_take_the_s3_call_threads(settings: Settings) -> None:
    """A stream holds its GET while its caller reads, so the bound on open reads is its own: more
    slow readers than S3 call threads all read at once, up to blob_max_open_reads."""
    bounded = Settings(**{**settings.__dict__, "s3_max_concurrency": 1, "blob_max_open_reads": 4})
    most_reading, peak = await _slow_concurrent_reads(bounded, readers=6)
    assert most_reading == 4
    assert peak.pool_threads <= 1 and 1 <= peak.read_ahead_threads <= 4


async def test_read_blob_streams_beyond_blob_max_open_reads_all_arrive_whole(
        settings: Settings, blob_service: RunningService) -> None:
    """Through the service: more ReadBlob streams at once than it may hold GETs; they take turns."""
    bounded = Settings(**{**settings.__dict__, "s3_max_concurrency": 2, "blob_max_open_reads": 2})
    data, digest = random_blob(5 * MIB + 17)
    blob = blob_pb2.Digest(hash=digest.hash, size_bytes=digest.size)
    peak = PeakUse(bounded)
    running = await start_blob_service(bounded)
    try:
        async with channel_to(running.port) as channel:
            stub = blob_pb2_grpc.BlobServiceStub(channel)
            name = f"uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size}"
            await stub.WriteBlob(iter([
                blob_pb2.WriteBlobRequest(resource_name=name, data=data[:3 * MIB]),
                blob_pb2.WriteBlobRequest(write_offset=3 * MIB, data=data[3 * MIB:], finish_write=True)]))

            async def read(offset: int) -> bytes:
                return b"".join([r.data async for r in stub.ReadBlob(blob_pb2.ReadBlobRequest(digest=blob,
                                                                                               offset=offset))])

            offsets = [0, 1, MIB, 3 * MIB + 5, 0, 7, 2 * MIB, 5 * MIB]
            async with peak:
                assert await asyncio.gather(*(read(o) for o in offsets)) == [data[o:] for o in offsets]
            # Counted from before the service started: its every thread and connection.
            assert 1 <= peak.pool_threads <= 2 and 1 <= peak.read_ahead_threads <= 2
            assert 1 <= peak.connections <= 2
            await stub.DeleteBlobs(blob_pb2.DeleteBlobsRequest(digests=[blob]))
    finally:
        await running.stop(grace=1)


async def test_objects_read_as_stored_whatever_their_content_encoding(s3: S3BlobStorage, settings: Settings) -> None:
    key = f"tests/streams/{uuid.uuid4().hex}"
    stored = gzip.compress(os.urandom(3 * MIB // 2))
    # A header a direct upload's PUT could carry: the store serves it back with the object.
    Minio(settings.s3_endpoint, access_key=settings.s3_access_key, secure=settings.s3_secure,
          secret_key=settings.s3_secret_key.get_secret_value(), region=settings.s3_region).put_object(
        settings.s3_bucket, key, io.BytesIO(stored), len(stored), metadata={"Content-Encoding": "gzip"})
    try:
        assert b"".join([c async for c in s3.read_range(key, 0, len(stored), MIB)]) == stored
        assert await s3.get(key) == stored
        assert (await s3.get_tagged(key, len(stored))).data == stored
    finally:
        await s3.delete(key)


async def test_read_range_hands_over_a_broken_body_as_an_error(s3: S3BlobStorage) -> None:
    key = f"tests/streams/{uuid.uuid4().hex}"
    await s3.put(key, os.urandom(2 * MIB))
    try:
        # Asking past the end: the store sends what it has, and the reader says the body ended early.
        with pytest.raises(ConnectionError, match="ended"):
            async for _ in s3.read_range(key, MIB, 4 * MIB, MIB):
                pass
    finally:
        await s3.delete(key)


class RecordedParts(S3BlobStorage):
    """The real bucket, remembering what each part upload was handed."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.bodies: list[bytes | memoryview] = []

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes | memoryview) -> PartInfo:
        self.bodies.append(data)
        return await super().upload_part(key, upload_id, number, data)


async def _chunks(digest: BlobDigest, data: bytes, sizes: list[int]) -> AsyncIterator[WriteChunk]:
    name = f"uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size}"
    offset, turn = 0, 0
    while offset < len(data):
        piece = data[offset:offset + sizes[turn % len(sizes)]]
        yield WriteChunk(name if offset == 0 else "", offset, piece, offset + len(piece) == len(data))
        offset += len(piece)
        turn += 1


async def test_parts_go_up_from_one_reused_buffer_and_store_the_exact_bytes(small_parts_settings: Settings,
                                                                            s3: S3BlobStorage) -> None:
    # Chunk sizes that do not divide the part size: chunks straddle part boundaries.
    data, digest = random_blob(3 * SMALL_PART + 5 * MIB + 3)
    storage = RecordedParts(small_parts_settings)
    try:
        result = await BlobWriter(storage, small_parts_settings).write(
            _chunks(digest, data, [1, 3 * MIB + 7, 4 * MIB, 12345, MIB]))
        assert result.committed_size == digest.size
        assert await s3.get(cas_key(digest)) == data
        assert [len(b) for b in storage.bodies] == [SMALL_PART] * 3 + [5 * MIB + 3]
        # Every part was copied into the same buffer, none into a part-sized allocation of its own.
        buffers = {id(b.obj) for b in storage.bodies if isinstance(b, memoryview)}
        assert len(buffers) == 1 and all(isinstance(b, memoryview) for b in storage.bodies)
    finally:
        await s3.delete(cas_key(digest))
        await storage.close()


async def test_a_whole_blob_in_one_chunk_is_stored_from_that_chunk(settings: Settings, s3: S3BlobStorage) -> None:
    data, digest = random_blob(3 * MIB + 1)
    chunk = WriteChunk(f"uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size}", 0, data, True)

    async def one() -> AsyncIterator[WriteChunk]:
        yield chunk

    try:
        assert (await BlobWriter(s3, settings).write(one())).committed_size == digest.size
        assert await s3.get(cas_key(digest)) == data
    finally:
        await s3.delete(cas_key(digest))


async def test_put_and_parts_take_memoryviews(s3: S3BlobStorage) -> None:
    key = f"tests/streams/{uuid.uuid4().hex}"
    data = bytearray(os.urandom(6 * MIB + 9))
    try:
        await s3.put(key, memoryview(data)[9:])
        assert await s3.get(key) == data[9:]
        upload_id = await s3.create_multipart(key)
        parts = [await s3.upload_part(key, upload_id, 1, memoryview(data)[:5 * MIB]),
                 await s3.upload_part(key, upload_id, 2, memoryview(data)[5 * MIB:])]
        await s3.complete_multipart(key, upload_id, parts)
        assert await s3.get(key) == data
    finally:
        await s3.delete(key)


def test_sha256_reads_bytes_buffers_and_views_alike() -> None:
    data = os.urandom(3 * MIB + 11)
    running = Sha256()
    running.update(data[:10])
    running.update(memoryview(bytearray(data))[10:MIB])  # writable: read in place
    running.update(memoryview(data)[MIB:2 * MIB])  # read-only view of bytes
    running.update(bytearray(data[2 * MIB:]))
    running.update(memoryview(bytearray()))
    assert running.hexdigest() == hashlib.sha256(data).hexdigest()


def _write_request_variants() -> list[bytes]:
    """Encoded WriteBlobRequests, and the same bytes cut, altered and extended (deterministically)."""
    whole = [blob_pb2.WriteBlobRequest(resource_name=name, write_offset=offset, data=data,
                                       finish_write=finish).SerializeToString()
             for name in ("", "uploads/u/blobs/ab/5", "é")
             for offset in (0, 1, 2**31, 2**63 - 1, -1, -(2**63))
             for data in (b"", b"x", bytes(range(256)) * 2)
             for finish in (False, True)]
    rng = random.Random(14)
    variants = list(whole)
    for _ in range(2000):
        altered = bytearray(rng.choice(whole))
        for _ in range(rng.randint(1, 3)):
            roll = rng.random()
            if roll < 0.4 and altered:
                altered[rng.randrange(len(altered))] = rng.randrange(256)
            elif roll < 0.7:
                del altered[rng.randrange(len(altered) + 1):]
            else:
                altered += rng.randbytes(rng.randint(1, 5))
        variants.append(bytes(altered))
    # Repeated fields, an unknown field, another wire type, an overlong varint, a bool of 2, bad UTF-8.
    variants += [b"\x10\x01\x10\x02", b"\x28\x01", b"\x08\x01", b"\x10" + b"\xff" * 10 + b"\x01", b"\x20\x02",
                 b"\x0a\x01\xff", b"\x1a\x05ab"]
    return variants


def test_write_requests_decode_as_protobuf_decodes_them() -> None:
    decoded_by_hand = 0
    for message in _write_request_variants():
        ours = wire.write_request(message)
        try:
            theirs = blob_pb2.WriteBlobRequest.FromString(message)
        except Exception:  # noqa: BLE001 - whatever protobuf raises, the bytes do not decode
            assert isinstance(ours, UndecodableRequest)
            continue
        assert not isinstance(ours, UndecodableRequest)
        assert (ours.resource_name, ours.write_offset, bytes(ours.data), ours.finish_write) == (
            theirs.resource_name, theirs.write_offset, theirs.data, theirs.finish_write)
        decoded_by_hand += isinstance(ours, wire.WriteRequest)
    assert decoded_by_hand >= 216  # every message as clients send it, at least


class RecordedPuts(S3BlobStorage):
    """The real bucket, remembering what each one-PUT write was handed."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.bodies: list[bytes | memoryview] = []

    async def put(self, key: str, data: bytes | memoryview, *, content_type: str = "application/octet-stream") -> None:
        self.bodies.append(data)
        await super().put(key, data, content_type=content_type)


async def test_write_blob_stores_a_chunk_from_the_received_message(settings: Settings, s3: S3BlobStorage) -> None:
    data, digest = random_blob(MIB + 3)
    storage = RecordedPuts(settings)
    running = await start_blob_service(settings, storage=storage)
    try:
        async with channel_to(running.port) as channel:
            stub = blob_pb2_grpc.BlobServiceStub(channel)
            reply = await stub.WriteBlob(iter([blob_pb2.WriteBlobRequest(
                resource_name=f"uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size}", data=data,
                finish_write=True)]))
            assert reply.committed_size == digest.size
        assert await s3.get(cas_key(digest)) == data
        # Stored from a view into the message gRPC handed over, never copied out of it.
        [body] = storage.bodies
        assert isinstance(body, memoryview) and isinstance(body.obj, bytes) and len(body.obj) > len(data)
    finally:
        await running.stop(grace=1)
        await s3.delete(cas_key(digest))
