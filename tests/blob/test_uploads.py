"""WriteBlob / QueryWriteStatus against the real S3 server: verification, dedup, resume, bad input."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc import aio

from framevault.api.blob_client import BlobClient
from framevault.api.digests import BlobDigest
from framevault.blob.keys import cas_key
from framevault.blob.storage import S3BlobStorage
from framevault.blob.uploads import BlobWriter, WriteChunk
from framevault.common.config import Settings
from framevault.v1 import blob_pb2, blob_pb2_grpc

if TYPE_CHECKING:
    from framevault.blob.storage import TaggedBytes

from .helpers import (
    MIB,
    SMALL_PART,
    HeldParts,
    channel_to,
    random_blob,
    rpc_error,
    start_blob_service,
    violated_fields,
)


def upload_name(digest: BlobDigest, upload_id: str | None = None) -> str:
    return f"uploads/{upload_id or uuid.uuid4()}/blobs/{digest.hash}/{digest.size}"


def chunked(name: str, data: bytes, start: int = 0, chunk: int = MIB,
            finish: bool = True) -> list[blob_pb2.WriteBlobRequest]:
    messages = []
    for offset in range(start, len(data), chunk):
        piece = data[offset:offset + chunk]
        messages.append(blob_pb2.WriteBlobRequest(
            resource_name=name if offset == start else "", write_offset=offset, data=piece,
            finish_write=finish and offset + len(piece) == len(data)))
    return messages


async def write(stub: blob_pb2_grpc.BlobServiceStub,
                messages: Sequence[blob_pb2.WriteBlobRequest]) -> blob_pb2.WriteBlobResponse:
    async def stream() -> AsyncIterator[blob_pb2.WriteBlobRequest]:
        for message in messages:
            yield message

    return await stub.WriteBlob(stream())


async def committed(stub: blob_pb2_grpc.BlobServiceStub, name: str) -> blob_pb2.QueryWriteStatusResponse:
    return await stub.QueryWriteStatus(blob_pb2.QueryWriteStatusRequest(resource_name=name))


async def wait_for_committed(stub: blob_pb2_grpc.BlobServiceStub, name: str, at_least: int,
                             timeout: float = 30.0) -> int:
    async with asyncio.timeout(timeout):
        while True:
            size = (await committed(stub, name)).committed_size
            if size >= at_least:
                return size
            await asyncio.sleep(0.05)


async def nothing_pending(s3: S3BlobStorage, digest: BlobDigest) -> bool:
    """No multipart upload and no upload state of the blob is left."""
    pending = [u async for u in s3.list_multipart_uploads(cas_key(digest))]
    states = [o async for o in s3.list_objects("uploads/") if digest.hash in o.key]
    return not pending and not states


async def nothing_stored(s3: S3BlobStorage, digest: BlobDigest) -> bool:
    return await s3.stat(cas_key(digest)) is None and await nothing_pending(s3, digest)


def as_chunks(messages: Sequence[blob_pb2.WriteBlobRequest]) -> list[WriteChunk]:
    return [WriteChunk(m.resource_name, m.write_offset, m.data, m.finish_write) for m in messages]


class Feed:
    """A WriteBlob stream a test feeds message by message; it stays open until ``close``."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[WriteChunk | None] = asyncio.Queue()

    def send(self, messages: Sequence[blob_pb2.WriteBlobRequest]) -> None:
        for chunk in as_chunks(messages):
            self._queue.put_nowait(chunk)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def chunks(self) -> AsyncIterator[WriteChunk]:
        while (chunk := await self._queue.get()) is not None:
            yield chunk


async def test_large_blob_is_written_in_parts_and_reads_back(small_parts_stub: blob_pb2_grpc.BlobServiceStub,
                                                             s3: S3BlobStorage) -> None:
    data, digest = random_blob(2 * SMALL_PART + 3 * MIB + 5)
    name = upload_name(digest)
    response = await write(small_parts_stub, chunked(name, data))
    assert response.committed_size == digest.size and not response.already_existed
    assert await s3.get(cas_key(digest)) == data
    assert [u async for u in s3.list_multipart_uploads(cas_key(digest))] == []
    assert (await committed(small_parts_stub, name)).complete


async def test_small_blob_is_one_put(blob_stub: blob_pb2_grpc.BlobServiceStub, s3: S3BlobStorage) -> None:
    data, digest = random_blob(3 * MIB + 1)
    response = await write(blob_stub, chunked(upload_name(digest), data, chunk=MIB // 2))
    assert response.committed_size == digest.size
    assert await s3.get(cas_key(digest)) == data


async def test_second_upload_of_the_same_bytes_sends_no_data(blob_stub: blob_pb2_grpc.BlobServiceStub,
                                                             blob_client: BlobClient) -> None:
    data, digest = random_blob(2 * MIB)
    first = await blob_client.upload_bytes(data)
    assert first.bytes_sent == digest.size and not first.already_existed
    again = await blob_client.upload_bytes(data)
    assert again.bytes_sent == 0 and again.already_existed

    # A raw WriteBlob ends after its first message, which carries no data.
    asked_for_more = asyncio.Event()

    async def header_then_data() -> AsyncIterator[blob_pb2.WriteBlobRequest]:
        yield blob_pb2.WriteBlobRequest(resource_name=upload_name(digest), write_offset=0)
        asked_for_more.set()
        await asyncio.Event().wait()  # never sends data

    response = await blob_stub.WriteBlob(header_then_data())
    assert response.already_existed and response.committed_size == digest.size


async def test_digest_mismatch_leaves_nothing(small_parts_stub: blob_pb2_grpc.BlobServiceStub,
                                              blob_stub: blob_pb2_grpc.BlobServiceStub, s3: S3BlobStorage) -> None:
    for stub, size in ((small_parts_stub, SMALL_PART * 2 + 100), (blob_stub, 1000)):
        data, digest = random_blob(size)
        tampered = data[:-1] + bytes([data[-1] ^ 0xFF])
        error = await rpc_error(write(stub, chunked(upload_name(digest), tampered)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(error) == ["resource_name"]
        assert "sha256" in (error.details() or "")
        assert await nothing_stored(s3, digest)


async def test_resume_after_the_client_cut_the_stream(small_parts_stub: blob_pb2_grpc.BlobServiceStub,
                                                      s3: S3BlobStorage) -> None:
    data, digest = random_blob(3 * SMALL_PART + 2 * MIB)
    name = upload_name(digest)
    sent = SMALL_PART + 6 * MIB  # one whole part and a 6 MiB tail
    call = small_parts_stub.WriteBlob()
    for message in chunked(name, data[:sent], finish=False):
        await call.write(message)
    await wait_for_committed(small_parts_stub, name, SMALL_PART)
    call.cancel()

    # Only whole parts count: the committed size is a multiple of the advertised part size.
    status = await committed(small_parts_stub, name)
    assert status.committed_size == SMALL_PART and not status.complete

    for offset in (SMALL_PART // 2, SMALL_PART + MIB):  # not a part boundary: never answered
        error = await rpc_error(write(small_parts_stub, chunked(name, data, start=offset)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(error) == ["write_offset"]
        assert f"committed size {SMALL_PART}" in (error.details() or "")

    upload_id = name.split("/")[1]
    result = await BlobClient(small_parts_stub).upload_bytes(data, upload_id=upload_id)
    assert result.bytes_sent == digest.size - SMALL_PART
    assert await s3.get(cas_key(digest)) == data
    assert (await committed(small_parts_stub, name)).complete
    assert [o async for o in s3.list_objects(f"uploads/{upload_id}/")] == []


async def test_resume_at_an_answer_the_cut_stream_overtook(small_parts_settings: Settings,
                                                            s3: S3BlobStorage) -> None:
    """Cut with a part in flight, QueryWriteStatus answers before that part lands; the client continues there."""
    data, digest = random_blob(3 * SMALL_PART + 2 * MIB)
    name = upload_name(digest)
    storage = HeldParts(small_parts_settings, hold={1})
    running = await start_blob_service(small_parts_settings, storage=storage)
    try:
        async with channel_to(running.port) as channel:
            stub = blob_pb2_grpc.BlobServiceStub(channel)
            call = stub.WriteBlob()
            for message in chunked(name, data[:SMALL_PART + 2 * MIB], finish=False):
                await call.write(message)
            await storage.held.wait()
            call.cancel()
            first = await committed(stub, name)
            assert (first.committed_size, first.complete) == (0, False)
            storage.release.set()
            # The cut stream's part lands after the answer...
            assert await wait_for_committed(stub, name, SMALL_PART) == SMALL_PART
            # ...and the client, following the protocol, continues at the answer it got.
            response = await write(stub, chunked(name, data, start=first.committed_size))
            assert response.committed_size == digest.size and not response.already_existed
    finally:
        await running.stop(grace=1)
    assert await s3.get(cas_key(digest)) == data
    assert await nothing_pending(s3, digest)


async def test_resume_while_the_cut_stream_is_still_committing(small_parts_settings: Settings,
                                                               s3: S3BlobStorage) -> None:
    data, digest = random_blob(2 * SMALL_PART + 3 * MIB)
    name = upload_name(digest)
    storage = HeldParts(small_parts_settings, hold={2})
    running = await start_blob_service(small_parts_settings, storage=storage)
    try:
        async with channel_to(running.port) as channel:
            stub = blob_pb2_grpc.BlobServiceStub(channel)
            call = stub.WriteBlob()
            for message in chunked(name, data[:2 * SMALL_PART + MIB], finish=False):
                await call.write(message)
            await storage.held.wait()
            call.cancel()
            first = await committed(stub, name)
            assert first.committed_size == SMALL_PART
            resumed = asyncio.create_task(write(stub, chunked(name, data, start=first.committed_size)))
            storage.release.set()
            response = await resumed
            assert response.committed_size == digest.size and not response.already_existed
    finally:
        await running.stop(grace=1)
    assert await s3.get(cas_key(digest)) == data
    assert await nothing_pending(s3, digest)


async def test_cut_after_62_of_64_mib_resumes_at_the_first_answer(blob_stub: blob_pb2_grpc.BlobServiceStub,
                                                                  settings: Settings, s3: S3BlobStorage) -> None:
    data, digest = random_blob(64 * MIB)
    name = upload_name(digest)
    call = blob_stub.WriteBlob()
    for message in chunked(name, data[:62 * MIB], finish=False):
        await call.write(message)
    call.cancel()
    first = await committed(blob_stub, name)
    # Whole parts only: nothing, or the first part.
    assert first.committed_size in (0, settings.s3_part_size_bytes) and not first.complete
    response = await write(blob_stub, chunked(name, data, start=first.committed_size))
    assert response.committed_size == digest.size
    assert await s3.get(cas_key(digest)) == data
    assert await nothing_pending(s3, digest)


async def test_a_superseded_stream_cannot_undo_a_rewind(small_parts_settings: Settings, s3: S3BlobStorage) -> None:
    """Two replicas: the client resumes on the second while the cut stream on the first still commits a part."""
    data, digest = random_blob(3 * SMALL_PART + MIB)
    name = upload_name(digest)
    held = HeldParts(small_parts_settings, hold={2})
    other = S3BlobStorage(small_parts_settings)
    first_replica, second_replica = BlobWriter(held, small_parts_settings), BlobWriter(other, small_parts_settings)
    try:
        answer = await second_replica.query(name)
        assert answer.committed_size == 0
        cut = Feed()
        cut.send(chunked(name, data[:2 * SMALL_PART + MIB], finish=False))
        cut_stream = asyncio.create_task(first_replica.write(cut.chunks()))
        await held.held.wait()  # part 1 recorded, part 2 in flight
        assert (await second_replica.query(name)).committed_size == SMALL_PART

        resumed = Feed()
        resumed.send(chunked(name, data[:MIB], start=answer.committed_size, finish=False))
        resumed_stream = asyncio.create_task(second_replica.write(resumed.chunks()))
        async with asyncio.timeout(30):
            while (await second_replica.query(name)).committed_size != 0:  # the rewind is recorded
                await asyncio.sleep(0.05)

        cut_stream.cancel()
        held.release.set()
        with pytest.raises(asyncio.CancelledError):
            await cut_stream
        await first_replica.drain(timeout=30)
        # The cut stream's part landed after the rewind, but its record did not replace the newer one.
        assert (await second_replica.query(name)).committed_size == 0

        resumed.send(chunked(name, data, start=MIB))
        result = await resumed_stream
        assert result.committed_size == digest.size and not result.already_existed
    finally:
        await held.close()
        await other.close()
    assert await s3.get(cas_key(digest)) == data
    assert await nothing_pending(s3, digest)


async def test_an_upload_whose_parts_are_gone_starts_over(small_parts_stub: blob_pb2_grpc.BlobServiceStub,
                                                          s3: S3BlobStorage) -> None:
    data, digest = random_blob(2 * SMALL_PART + MIB)
    name = upload_name(digest)
    response = await write(small_parts_stub, chunked(name, data[:SMALL_PART], finish=False))
    assert response.committed_size == SMALL_PART
    # The parts go away behind the service's back (a lifecycle rule, an operator).
    for upload in [u async for u in s3.list_multipart_uploads(cas_key(digest))]:
        await s3.abort_multipart(upload.key, upload.upload_id)
    assert (await committed(small_parts_stub, name)).committed_size == SMALL_PART

    # The client did nothing wrong by continuing at the answer: it is told to ask again, not refused.
    error = await rpc_error(write(small_parts_stub, chunked(name, data, start=SMALL_PART)))
    assert error.code() == grpc.StatusCode.ABORTED
    assert (await committed(small_parts_stub, name)).committed_size == 0
    result = await BlobClient(small_parts_stub).upload_bytes(data, upload_id=name.split("/")[1])
    assert result.bytes_sent == digest.size
    assert await s3.get(cas_key(digest)) == data
    assert await nothing_pending(s3, digest)


async def test_resume_after_the_blob_service_restarted(small_parts_settings: Settings, s3: S3BlobStorage) -> None:
    data, digest = random_blob(3 * SMALL_PART + 1)
    name = upload_name(digest)
    first = await start_blob_service(small_parts_settings)
    async with channel_to(first.port) as channel:
        stub = blob_pb2_grpc.BlobServiceStub(channel)
        call = stub.WriteBlob()
        try:
            for message in chunked(name, data[:SMALL_PART + 2 * MIB], finish=False):
                await call.write(message)
            await wait_for_committed(stub, name, SMALL_PART)
        finally:
            # Stopped with the stream still open: its handler is cancelled mid-upload.
            await first.stop(grace=0.5)
        with pytest.raises(aio.AioRpcError):
            await call

    second = await start_blob_service(small_parts_settings)
    try:
        async with channel_to(second.port) as channel:
            stub = blob_pb2_grpc.BlobServiceStub(channel)
            status = await committed(stub, name)
            assert status.committed_size == SMALL_PART and not status.complete
            result = await BlobClient(stub).upload_bytes(data, upload_id=name.split("/")[1])
            assert result.bytes_sent == digest.size - SMALL_PART
    finally:
        await second.stop(grace=1)
    assert await s3.get(cas_key(digest)) == data


async def test_closing_without_finish_reports_what_was_committed(
        small_parts_stub: blob_pb2_grpc.BlobServiceStub) -> None:
    data, digest = random_blob(SMALL_PART * 2 + 10)
    name = upload_name(digest)
    response = await write(small_parts_stub, chunked(name, data[:SMALL_PART + MIB], finish=False))
    assert response.committed_size == SMALL_PART and not response.already_existed
    response = await write(small_parts_stub, chunked(name, data, start=SMALL_PART))
    assert response.committed_size == digest.size


async def test_query_write_status(blob_stub: blob_pb2_grpc.BlobServiceStub, blob_client: BlobClient) -> None:
    data, digest = random_blob(10)
    name = upload_name(digest)
    assert (await committed(blob_stub, name)).committed_size == 0
    await blob_client.upload_bytes(data)
    done = await committed(blob_stub, name)
    assert done.complete and done.committed_size == 10
    error = await rpc_error(blob_stub.QueryWriteStatus(blob_pb2.QueryWriteStatusRequest(resource_name="x")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["resource_name"]


_, _SOME = random_blob(8)
_UUID = "0b5f7a3e-8a43-4d55-9b5c-3f2d6f0e9a11"


@pytest.mark.parametrize("name", [
    "",
    f"uploads/{_UUID}/blobs/{_SOME.hash}/8/extra",
    f"uploads/../cas/sha256/{_SOME.hash[:2]}/blobs/{_SOME.hash}/8",
    f"uploads/{_UUID}/blobs/../../cas/8",
    f"uploads/{_UUID.upper()}/blobs/{_SOME.hash}/8",
    f"uploads/{_UUID.replace('-', '')}/blobs/{_SOME.hash}/8",
    f"uploads/{_UUID}/blobs/{_SOME.hash.upper()}/8",
    f"uploads/{_UUID}/blobs/{_SOME.hash}/08",
    f"uploads/{_UUID}/blobs/{_SOME.hash}/-8",
    f"uploads/{_UUID}/blobs/{_SOME.hash}/99999999999999999999",
    f"/uploads/{_UUID}/blobs/{_SOME.hash}/8",
    f"instance/uploads/{_UUID}/blobs/{_SOME.hash}/8",
])
async def test_malformed_resource_names_are_rejected(blob_stub: blob_pb2_grpc.BlobServiceStub, name: str) -> None:
    error = await rpc_error(write(blob_stub, [blob_pb2.WriteBlobRequest(resource_name=name, data=b"x" * 8,
                                                                         finish_write=True)]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["resource_name"]


async def test_bad_write_streams(blob_stub: blob_pb2_grpc.BlobServiceStub, settings: Settings,
                                 s3: S3BlobStorage) -> None:
    data, digest = random_blob(100)
    name = upload_name(digest)
    W = blob_pb2.WriteBlobRequest

    cases: list[tuple[list[blob_pb2.WriteBlobRequest], grpc.StatusCode, str]] = [
        ([W(resource_name=name, write_offset=5, data=data[5:])], grpc.StatusCode.INVALID_ARGUMENT, "write_offset"),
        ([W(resource_name=name, data=data[:50]), W(write_offset=60, data=data[60:], finish_write=True)],
         grpc.StatusCode.INVALID_ARGUMENT, "write_offset"),
        ([W(resource_name=name, data=data[:50]), W(write_offset=40, data=data[40:], finish_write=True)],
         grpc.StatusCode.INVALID_ARGUMENT, "write_offset"),
        ([W(resource_name=name, data=data + b"more")], grpc.StatusCode.OUT_OF_RANGE, "data"),
        ([W(resource_name=name, data=data[:99], finish_write=True)], grpc.StatusCode.INVALID_ARGUMENT,
         "finish_write"),
        ([W(resource_name=name, data=data[:50]), W(resource_name=upload_name(digest), write_offset=50,
                                                   data=data[50:], finish_write=True)],
         grpc.StatusCode.INVALID_ARGUMENT, "resource_name"),
        ([], grpc.StatusCode.INVALID_ARGUMENT, "resource_name"),
    ]
    for messages, code, field in cases:
        error = await rpc_error(write(blob_stub, messages))
        assert (error.code(), violated_fields(error)) == (code, [field]), messages
    assert await nothing_stored(s3, digest)

    big = settings.blob_max_chunk_size_bytes + 1
    _, big_digest = random_blob(big)
    error = await rpc_error(write(blob_stub, [W(resource_name=upload_name(big_digest), data=bytes(big))]))
    assert (error.code(), violated_fields(error)) == (grpc.StatusCode.INVALID_ARGUMENT, ["data"])


async def test_concurrent_streams_of_one_upload_both_succeed(small_parts_stub: blob_pb2_grpc.BlobServiceStub,
                                                             s3: S3BlobStorage) -> None:
    data, digest = random_blob(SMALL_PART + 3 * MIB)
    name = upload_name(digest)
    first, second = await asyncio.gather(write(small_parts_stub, chunked(name, data)),
                                         write(small_parts_stub, chunked(name, data)))
    assert first.committed_size == second.committed_size == digest.size
    assert [first.already_existed, second.already_existed].count(True) == 1
    assert await s3.get(cas_key(digest)) == data


class _KeysRead(S3BlobStorage):
    """The session bucket, remembering which keys were read whole."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.keys_read: list[str] = []

    async def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        self.keys_read.append(key)
        return await super().get(key, offset, length)

    async def get_tagged(self, key: str, max_bytes: int) -> TaggedBytes:
        self.keys_read.append(key)
        return await super().get_tagged(key, max_bytes)


@pytest.mark.parametrize("size", [SMALL_PART, SMALL_PART + 1])
async def test_only_blobs_that_could_have_parts_look_for_a_saved_upload(small_parts_settings: Settings,
                                                                        size: int) -> None:
    settings = small_parts_settings
    storage = _KeysRead(settings)
    try:
        data, digest = random_blob(size)
        name = upload_name(digest)

        async def chunks() -> AsyncIterator[WriteChunk]:
            for chunk in as_chunks(chunked(name, data)):
                yield chunk

        result = await BlobWriter(storage, settings).write(chunks())
        assert result.committed_size == size and await storage.get(cas_key(digest)) == data
        state_reads = [key for key in storage.keys_read if key.startswith("uploads/")]
        assert len(state_reads) == (0 if size <= SMALL_PART else 1)
    finally:
        await storage.close()
