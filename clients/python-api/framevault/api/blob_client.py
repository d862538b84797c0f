"""A BlobService client that uploads only what is missing and resumes broken writes.

Used by the SDK, tests and benchmarks. ``upload`` checks FindMissingBlobs first
(no bytes move for a blob the store has; a direct upload learns it from
StartDirectUpload instead), then follows the resume protocol of
``QueryWriteStatusResponse``: ask QueryWriteStatus, write from the committed
size it answers, and after a broken stream (or ABORTED: the upload changed or
started over) ask again. The service keeps whole parts of
``resumable_part_size_bytes``, so a broken stream or a restarted service costs
at most the part being filled; a blob of at most one part is sent again whole.

With ``direct`` options (the SDK passes them), large blobs skip the service's
byte streams when it advertises ``direct_transfers``: uploads PUT their parts
in parallel to presigned URLs (StartDirectUpload), then CompleteDirectUpload
has the service verify and publish them; reads GET ranges of a presigned
download URL in parallel (``direct_read_verified``). When the store cannot be
reached from here (refused connection, timeout), the transfer goes on over
WriteBlob / ReadBlob, and direct transfers rest for
``DirectTransfers.retry_after_seconds``; a read goes on from the bytes it has.
A whole blob read (``read_into``, ``read``) is checked against its sha256 and
size before it is handed on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import http.client
import os
import socket
import ssl
import threading
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import grpc
from grpc import aio

from framevault.api.digests import (
    S3_CHECKSUM_HEADER,
    BlobDigest,
    digest_from_proto,
    digest_of,
    digest_to_proto,
    file_digest,
    s3_checksum_headers,
)
from framevault.api.retry import RetryPolicy, codes, server_retry_delay
from framevault.api.wire import LENGTH_DELIMITED, VARINT, varint
from framevault.v1 import blob_pb2, blob_pb2_grpc

DEFAULT_CHUNK_SIZE = 1024 * 1024
# An upload attempt asks QueryWriteStatus first, so any of these is safe to try again.
UPLOAD_RETRY = RetryPolicy(
    max_attempts=8, initial_backoff_seconds=0.1, max_backoff_seconds=2.0,
    retryable_codes=codes(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                          grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED,
                          grpc.StatusCode.CANCELLED),
)

# Reads ``size`` bytes at ``offset`` of the content being uploaded.
ReadAt = Callable[[int, int], Awaitable[bytes]]
# WriteBlob taking its requests already encoded (``write_blob_encoded``): a stub's WriteBlob would
# copy each chunk into a message and again when serializing it.
WriteBlobEncoded = Callable[..., Awaitable[blob_pb2.WriteBlobResponse]]
# A direct upload part larger than this (a whole blob in one PUT) is read as it is sent, in chunks
# of STREAMED_CHUNK_BYTES, rather than held in memory whole.
STREAMED_PART_BYTES = 64 * 1024 * 1024
STREAMED_CHUNK_BYTES = 8 * 1024 * 1024
# A PUT from a file hands the socket this much of it per sendfile call (and reports it as sent).
SENDFILE_STEP_BYTES = 16 * 1024 * 1024
# Told ``end`` (bytes of the content from 0 that left for the store) from the sending thread.
SentUpTo = Callable[[int], None]
# A verified direct read receives each range in pieces of this size and hands each piece on as it
# lands, so the hashing follows the bytes arriving instead of waiting for whole ranges.
READ_PIECE_BYTES = 1024 * 1024
# Pieces a fetching worker keeps in memory for the hashing thread; once all of them wait to be
# hashed, its further pieces are hashed from where they were written (read back from the target).
PIECES_HELD_PER_WORKER = 4
# ReadBlob pieces from this size on are hashed and written in a thread rather than on the event loop.
OFF_LOOP_BYTES = 1024 * 1024


@dataclass(frozen=True)
class DirectTransfers:
    """How a client moves large blobs straight to and from the object store."""

    # Parts or ranges in flight at once, each on a keep-alive connection of its own.
    concurrency: int = 4
    # Size of the ranges a direct read GETs.
    read_range_bytes: int = 8 * 1024 * 1024
    # Attempts of one part or range whose exchange broke after connecting (reset, cut body), each on
    # a fresh connection, before the transfer goes on over the service's streams.
    exchange_attempts: int = 3
    # Seconds to wait for the store to accept a connection before falling back to the service.
    connect_timeout_seconds: float = 5.0
    # Seconds one part or range may take to move, once connected.
    transfer_timeout_seconds: float = 300.0
    # After the store proved unreachable, this client uses the service's streams for this long.
    retry_after_seconds: float = 60.0
    # Blobs from this size on go direct; None = what the service advertises.
    min_size_bytes: int | None = None
    # Writes go direct too. A direct write ends with the service reading the blob back from the store
    # to verify it while the store copies it, so where client, service and store share a host and
    # its cores, WriteBlob is as fast or faster (services/framevault/blob/README.md has numbers).
    writes: bool = True


class DirectUnreachable(Exception):
    """The object store did not answer a presigned URL from this client."""


class DirectBroken(DirectUnreachable):
    """An exchange with the store broke after the connection was made (reset, cut or short body):
    worth another attempt on a fresh connection before falling back to the service's streams."""


class OrderedDigest:
    """sha256 of a blob's bytes fed in order, and how many bytes it has seen: a direct read that
    had to stop says through it how far its bytes are complete and checked."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self.sha.update(data)
        self.size += len(data)

    def matches(self, digest: BlobDigest) -> bool:
        return self.size == digest.size and self.sha.hexdigest() == digest.hash


class ReadTarget(Protocol):
    """Where a verified direct read puts a blob's bytes, each at its offset from the blob's start."""

    def write_at(self, offset: int, data: memoryview) -> None: ...

    def read_at(self, offset: int, into: memoryview) -> None:
        """Fills ``into`` with the bytes written at ``offset``."""
        ...


class FileTarget:
    """A ReadTarget writing into an open file descriptor (positioned writes: no seek, any order)."""

    def __init__(self, fd: int):
        self._fd = fd

    def write_at(self, offset: int, data: memoryview) -> None:
        while data:
            written = os.pwrite(self._fd, data, offset)
            data, offset = data[written:], offset + written

    def read_at(self, offset: int, into: memoryview) -> None:
        filled = 0
        while filled < len(into):
            count = os.preadv(self._fd, [into[filled:]], offset + filled)
            if not count:
                raise OSError(f"the file ends before byte {offset + len(into)} written to it")
            filled += count


class BufferTarget:
    """A ReadTarget filling a buffer of the blob's whole length."""

    def __init__(self, buffer: bytearray):
        self._buffer = buffer

    def write_at(self, offset: int, data: memoryview) -> None:
        self._buffer[offset:offset + len(data)] = data

    def read_at(self, offset: int, into: memoryview) -> None:
        with memoryview(self._buffer) as view:
            into[:] = view[offset:offset + len(into)]


class ContentMismatch(Exception):
    """The bytes read for a blob are not the ones its digest names."""

    def __init__(self, digest: BlobDigest, actual_hash: str, actual_size: int):
        super().__init__(f"blob {digest.uri} arrived as sha256 {actual_hash} with {actual_size} bytes")
        self.digest, self.actual_hash, self.actual_size = digest, actual_hash, actual_size


class DirectRefused(Exception):
    """The object store answered a presigned URL with an error status (expired URL, busy store ...)."""

    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status


@dataclass(frozen=True)
class _DirectRetry:
    """How a direct transfer tries again, with the client's backoff: an exchange that broke after
    connecting, on a fresh connection, up to ``DirectTransfers.exchange_attempts``; a URL the store
    refused (expired, busy store), asked for again, up to the client's attempts."""

    breaks: RetryPolicy
    refusals: RetryPolicy


@dataclass(frozen=True)
class UploadResult:
    digest: BlobDigest
    # Bytes sent over the wire (0 when the store already had the blob).
    bytes_sent: int
    already_existed: bool
    attempts: int


class BlobClient:
    def __init__(self, stub: blob_pb2_grpc.BlobServiceStub, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 timeout: float | None = 300.0, max_attempts: int = UPLOAD_RETRY.max_attempts,
                 direct: DirectTransfers | None = None,
                 capabilities: Callable[[], Awaitable[blob_pb2.GetCapabilitiesResponse]] | None = None,
                 write_blob: WriteBlobEncoded | None = None):
        """``direct``: move large blobs straight to and from the store (off when None).
        ``capabilities``: how to ask GetCapabilities (default: once, on ``stub``).
        ``write_blob``: ``write_blob_encoded`` of the stub's channel (default: the stub's WriteBlob,
        each encoded request parsed back into its message, for stubs without their channel)."""
        self._stub = stub
        self._write_blob: WriteBlobEncoded = write_blob or _parsing_back(stub)
        self._chunk_size = chunk_size
        self._timeout = timeout
        self._retry = replace(UPLOAD_RETRY, max_attempts=max_attempts)
        self._direct = direct
        self._direct_retry = _DirectRetry(
            breaks=replace(self._retry, max_attempts=max(1, direct.exchange_attempts if direct else 1)),
            refusals=self._retry)
        self._ask_capabilities = capabilities
        self._capabilities: blob_pb2.GetCapabilitiesResponse | None = None
        # monotonic time until which the store counts as unreachable from here.
        self._direct_resting_until = 0.0
        # How many transfers fell back to the service's streams (for tests and diagnostics).
        self.fallbacks = 0
        self.direct_transfers = 0

    @staticmethod
    def upload_name(digest: BlobDigest, upload_id: str | None = None) -> str:
        return f"uploads/{upload_id or uuid.uuid4()}/blobs/{digest.hash}/{digest.size}"

    async def missing(self, digests: Sequence[BlobDigest], batch_size: int | None = None) -> set[BlobDigest]:
        """The ``digests`` the store lacks, asked ``batch_size`` at a time (the
        service's ``max_batch_blobs``; None sends them in one request)."""
        return await find_missing(self._stub.FindMissingBlobs, digests, batch_size, self._timeout)

    async def upload_bytes(self, data: bytes, *, upload_id: str | None = None) -> UploadResult:
        view = memoryview(data)

        async def read_at(offset: int, size: int) -> bytes:
            return bytes(view[offset:offset + size])

        return await self.upload(digest_of(data), read_at, upload_id=upload_id)

    async def upload_file(self, path: str | os.PathLike[str], *, upload_id: str | None = None) -> UploadResult:
        digest = await asyncio.to_thread(file_digest, Path(path))

        async def read_at(offset: int, size: int) -> bytes:
            return await asyncio.to_thread(_read_file_at, Path(path), offset, size)

        return await self.upload(digest, read_at, upload_id=upload_id, source=Path(path))

    async def upload(self, digest: BlobDigest, read_at: ReadAt, *, upload_id: str | None = None,
                     source: Path | None = None, sent_up_to: SentUpTo | None = None) -> UploadResult:
        """Uploads unless present (direct when worth it and reachable); resumes after broken streams with backoff.

        ``source``: the file holding the content, when there is one: a whole blob going in one PUT
        then moves from it to the socket by sendfile (no read into this process, no copy), and
        ``sent_up_to`` hears from the sending thread how far it got (``read_at`` is not called).
        """
        name = self.upload_name(digest, upload_id)
        # StartDirectUpload answers whether the store has the blob: a direct upload asks nothing before it.
        if await self.goes_direct(digest.size, write=True):
            try:
                result = await self._upload_direct(name, digest, read_at, source, sent_up_to)
                self.direct_transfers += 1
                return result
            except DirectUnreachable:
                self.note_unreachable()
        if not await self.missing([digest]):
            return UploadResult(digest, 0, True, 0)
        return await self._upload_streamed(name, digest, read_at)

    async def goes_direct(self, size: int, *, write: bool = False) -> bool:
        """Whether a blob of ``size`` bytes moves straight from (``write``: to) the store."""
        if self._direct is None or time.monotonic() < self._direct_resting_until:
            return False
        if write and not self._direct.writes:
            return False
        caps = await self.capabilities()
        threshold = self._direct.min_size_bytes
        if threshold is None:
            threshold = caps.direct_transfer_min_size_bytes
        return caps.direct_transfers and size > 0 and size >= threshold

    async def capabilities(self) -> blob_pb2.GetCapabilitiesResponse:
        if self._capabilities is None:
            if self._ask_capabilities is not None:
                self._capabilities = await self._ask_capabilities()
            else:
                self._capabilities = await self._stub.GetCapabilities(blob_pb2.GetCapabilitiesRequest(),
                                                                      timeout=self._timeout)
        return self._capabilities

    def note_unreachable(self) -> None:
        """The store did not answer from here: the service's streams carry transfers for a while."""
        assert self._direct is not None
        self.fallbacks += 1
        self._direct_resting_until = time.monotonic() + self._direct.retry_after_seconds

    async def _upload_direct(self, name: str, digest: BlobDigest, read_at: ReadAt, source: Path | None = None,
                             sent_up_to: SentUpTo | None = None) -> UploadResult:
        """Parts PUT in parallel to presigned URLs, then verified and published by the service.

        Asks StartDirectUpload until no part is missing (it answers what landed, so a cut upload
        resumes with the parts still missing), then CompleteDirectUpload. Raises DirectUnreachable
        when the store does not answer from here.
        """
        assert self._direct is not None
        connections = _ConnectionPool(self._direct)
        pool = ThreadPoolExecutor(max(1, self._direct.concurrency), thread_name_prefix="framevault-direct")
        try:
            return await self._send_parts(name, digest, read_at, connections, pool, source, sent_up_to)
        finally:
            connections.close()
            # Not waited for: a PUT still running (given up) reads its body through this event loop.
            pool.shutdown(wait=False)

    async def _send_parts(self, name: str, digest: BlobDigest, read_at: ReadAt, connections: _ConnectionPool,
                          pool: ThreadPoolExecutor, source: Path | None = None,
                          sent_up_to: SentUpTo | None = None) -> UploadResult:
        assert self._direct is not None
        options = self._direct
        gate = asyncio.Semaphore(max(1, options.concurrency))
        sent = 0
        failures = 0
        request = blob_pb2.StartDirectUploadRequest(resource_name=name)
        # Every part was accepted by the store: complete without asking for the parts again.
        all_sent = False
        while True:
            try:
                if not all_sent:
                    plan = await self._stub.StartDirectUpload(request, timeout=self._timeout)
                    if plan.already_existed:
                        return UploadResult(digest, sent, sent == 0, failures + 1)
                if all_sent or not plan.parts:
                    done = await self._stub.CompleteDirectUpload(
                        blob_pb2.CompleteDirectUploadRequest(resource_name=name), timeout=self._timeout)
                    return UploadResult(digest, sent, done.already_existed and sent == 0, failures + 1)
            except aio.AioRpcError as exc:
                # FAILED_PRECONDITION from completion: parts went missing; the next start lists them.
                all_sent = False
                if not (self._retryable(exc) or exc.code() == grpc.StatusCode.FAILED_PRECONDITION):
                    raise
                failures += 1
                if failures >= self._retry.max_attempts:
                    raise
                await asyncio.sleep(self._retry.delay(failures, server_retry_delay(exc)))
                continue

            async def put(part: blob_pb2.DirectUploadPart) -> int:
                async with gate:
                    body: bytes | _StreamedPart | _FileRegion
                    whole = (part.offset, part.size_bytes) == (0, digest.size)
                    if whole and source is not None:
                        body = _FileRegion(source, 0, part.size_bytes, sent_up_to)
                    elif part.size_bytes > STREAMED_PART_BYTES and whole:
                        # A whole blob in one PUT: read as it is sent, never held in memory whole.
                        body = _StreamedPart(read_at, part.offset, part.size_bytes, asyncio.get_running_loop(),
                                             options.transfer_timeout_seconds)
                    else:
                        body = await read_at(part.offset, part.size_bytes)
                    headers = {**_checksum_headers(part.url, digest), "Content-Length": str(part.size_bytes)}
                    with connections.lease() as connection:
                        await self._exchange(connection, pool, "PUT", part.url, body, headers)
                    return part.size_bytes

            outcomes = await asyncio.gather(*(put(p) for p in plan.parts), return_exceptions=True)
            sent += sum(o for o in outcomes if isinstance(o, int))
            errors = [o for o in outcomes if isinstance(o, BaseException)]
            # A part whose exchange kept breaking is asked for again like a refused one; a store that
            # takes no connection at all sends the upload over the streams at once.
            unreachable = [e for e in errors if isinstance(e, DirectUnreachable) and not isinstance(e, DirectBroken)]
            if unreachable:
                raise unreachable[0]
            all_sent = not errors and len(plan.uploaded_part_numbers) + len(plan.parts) == plan.part_count
            if errors:
                other = [e for e in errors if not isinstance(e, DirectRefused | DirectBroken)]
                if other:
                    raise other[0]
                failures += 1
                if failures >= self._retry.max_attempts:
                    # The store keeps refusing the URLs: the service's stream may still get through.
                    raise DirectUnreachable(str(errors[0]))
                await asyncio.sleep(self._retry.delay(failures, None))

    async def _upload_streamed(self, name: str, digest: BlobDigest, read_at: ReadAt) -> UploadResult:
        sent = 0
        for attempt in range(1, self._retry.max_attempts + 1):
            server_delay = None
            try:
                status = await self._stub.QueryWriteStatus(
                    blob_pb2.QueryWriteStatusRequest(resource_name=name), timeout=self._timeout)
                if status.complete:
                    return UploadResult(digest, sent, sent == 0, attempt)
                counter = _Counter()
                try:
                    response = await self._write_blob(
                        self._messages(name, digest.size, status.committed_size, read_at, counter),
                        timeout=self._timeout)
                finally:
                    sent += counter.bytes
                if response.committed_size == digest.size:
                    return UploadResult(digest, sent, response.already_existed, attempt)
            except aio.AioRpcError as exc:
                if not self._retryable(exc) or attempt == self._retry.max_attempts:
                    raise
                server_delay = server_retry_delay(exc)
            await asyncio.sleep(self._retry.delay(attempt, server_delay))
        raise RuntimeError(f"upload of {digest} did not complete after {self._retry.max_attempts} attempts")

    def _retryable(self, exc: aio.AioRpcError) -> bool:
        if self._retry.is_retryable(exc.code()):
            return True
        # grpcio's asyncio client reports INTERNAL when the server ended the stream while it was still
        # writing (grpc/grpc#36066); the next QueryWriteStatus and attempt learn what really happened.
        return exc.code() == grpc.StatusCode.INTERNAL and "execute_batch" in (exc.debug_error_string() or "")

    async def _messages(self, name: str, size: int, start: int, read_at: ReadAt,
                        counter: _Counter) -> AsyncIterator[bytes]:
        offset = start
        while True:
            data = await read_at(offset, min(self._chunk_size, size - offset)) if offset < size else b""
            last = offset + len(data) >= size
            counter.bytes += len(data)
            yield write_request(name if offset == start else "", offset, data, last)
            offset += len(data)
            if last:
                return

    async def read(self, digest: BlobDigest, offset: int = 0, limit: int = 0) -> bytes:
        """The blob's bytes from ``offset`` (``limit`` of them; 0: all). The whole blob is read as
        ``read_into`` reads it, checked against ``digest``; a part of it comes over ReadBlob.

        Raises:
            ContentMismatch: the bytes of the whole blob do not match ``digest``.
        """
        if offset == 0 and limit == 0:
            buffer = bytearray(digest.size)
            await self.read_into(digest, BufferTarget(buffer))
            return bytes(buffer)
        return b"".join([data async for data in self._read_stream(digest, offset, limit)])

    async def read_into(self, digest: BlobDigest, target: ReadTarget,
                        stream: Callable[[int], AsyncIterator[bytes]] | None = None) -> None:
        """Puts the whole blob into ``target`` and checks its sha256 and size against ``digest``:
        direct ranges when worth it (``direct_read_verified``), going on from wherever a direct read
        stopped over ``stream(offset)`` (default: one ReadBlob from ``offset``). Nothing may use the
        bytes in ``target`` unless this returned.

        Raises:
            ContentMismatch: the bytes do not match ``digest`` (or more arrived than its size).
        """
        seen = OrderedDigest()
        if await self.goes_direct(digest.size):
            try:
                await self.direct_read_verified(digest, target, seen)
                self.direct_transfers += 1
            except DirectUnreachable:
                # Goes on over ReadBlob from where the direct read got to.
                self.note_unreachable()
        if seen.size < digest.size:
            pieces = stream(seen.size) if stream is not None else self._read_stream(digest, seen.size)
            async for data in pieces:
                if seen.size + len(data) > digest.size:
                    raise ContentMismatch(digest, "(longer than its size)", seen.size + len(data))
                if len(data) < OFF_LOOP_BYTES:
                    _absorb(seen, target, data)
                else:
                    await asyncio.to_thread(_absorb, seen, target, data)
        if not seen.matches(digest):
            raise ContentMismatch(digest, seen.sha.hexdigest(), seen.size)

    async def _read_stream(self, digest: BlobDigest, offset: int, limit: int = 0) -> AsyncIterator[bytes]:
        request = blob_pb2.ReadBlobRequest(digest=digest_to_proto(digest), offset=offset, limit=limit)
        async for message in self._stub.ReadBlob(request, timeout=self._timeout):
            yield message.data

    async def direct_read_verified(self, digest: BlobDigest, target: ReadTarget, seen: OrderedDigest) -> None:
        """Fetches the blob from ``seen.size`` on into ``target`` and feeds ``seen`` its bytes in
        order, each piece as soon as it and every byte before it landed.

        ``concurrency`` workers, each on a keep-alive connection of its own, fetch ranges of
        ``read_range_bytes`` lowest first and write each piece (``READ_PIECE_BYTES``) at its offset
        as it arrives; one more thread hashes the pieces in order (hashlib lets go of the GIL), from
        the worker's buffer, or read back from ``target`` when the hashing fell behind. So sha256
        runs while later bytes arrive, and every byte ``seen`` counts is in ``target``. When this
        returns, ``seen`` has seen the whole blob; the caller compares it with the digest before it
        shows anyone the bytes.

        A range whose exchange breaks goes on from its last whole piece on a fresh connection
        (``exchange_attempts``); an expired or refused URL is asked for again (up to the retry
        policy's attempts). Raises DirectUnreachable when the store stops answering from here;
        ``seen.size`` then says how far ``target`` holds checked bytes, which a ReadBlob stream can
        go on from.
        """
        assert self._direct is not None
        url_request = blob_pb2.GetDownloadUrlRequest(digest=digest_to_proto(digest))

        async def download_url() -> str:
            return str((await self._stub.GetDownloadUrl(url_request, timeout=self._timeout)).url)

        if seen.size >= digest.size:
            return
        connections = _ConnectionPool(self._direct)
        read = _VerifiedRead(self._direct, self._direct_retry, connections, digest.size, target, seen,
                             await download_url(), download_url, asyncio.get_running_loop())
        try:
            with ThreadPoolExecutor(read.workers + 1, thread_name_prefix="framevault-direct") as pool:
                for _ in range(read.workers):
                    pool.submit(read.fetch)
                try:
                    await asyncio.wrap_future(pool.submit(read.hash))
                finally:
                    # Also when cancelled: the workers stop at once (their sockets are shut down),
                    # and the pool is waited for, so nothing writes into the target after this returns.
                    read.stop()
        finally:
            connections.close()
        read.raise_failure()

    async def _exchange(self, connection: _StoreConnection, pool: ThreadPoolExecutor, method: str, url: str,
                        body: bytes | Iterable[bytes] | _FileRegion | None, headers: dict[str, str]) -> None:
        """One exchange with the store on ``connection`` (in ``pool``), attempted again on a fresh
        connection while it breaks (``_DirectRetry.breaks``)."""
        loop = asyncio.get_running_loop()
        breaks = self._direct_retry.breaks
        attempt = 1
        while True:
            try:
                await loop.run_in_executor(pool, connection.exchange, method, url, body, headers)
                return
            except DirectBroken:
                if attempt >= breaks.max_attempts:
                    raise
                await asyncio.sleep(breaks.delay(attempt))
                attempt += 1


def write_blob_encoded(channel: Any) -> WriteBlobEncoded:
    """WriteBlob on ``channel`` (asyncio) sending requests encoded by ``write_request`` as they are."""
    method = blob_pb2.DESCRIPTOR.services_by_name["BlobService"].methods_by_name["WriteBlob"]
    return channel.stream_unary(f"/{method.containing_service.full_name}/{method.name}", request_serializer=bytes,
                                response_deserializer=blob_pb2.WriteBlobResponse.FromString)


_FIELDS = blob_pb2.WriteBlobRequest.DESCRIPTOR.fields_by_name
_NAME_KEY = varint(_FIELDS["resource_name"].number << 3 | LENGTH_DELIMITED)
_OFFSET_KEY = varint(_FIELDS["write_offset"].number << 3 | VARINT)
_DATA_KEY = varint(_FIELDS["data"].number << 3 | LENGTH_DELIMITED)
_FINISH_TRUE = varint(_FIELDS["finish_write"].number << 3 | VARINT) + varint(1)


def write_request(resource_name: str, write_offset: int, data: bytes | memoryview, finish_write: bool) -> bytes:
    """The encoded ``WriteBlobRequest`` of these fields, byte for byte as protobuf writes it (fields
    in number order, proto3 leaving out empty ones); the chunk is copied once, into the result."""
    name = resource_name.encode()
    return b"".join((
        _NAME_KEY + varint(len(name)) + name if name else b"",
        _OFFSET_KEY + varint(write_offset) if write_offset else b"",
        _DATA_KEY + varint(len(data)) if data else b"",
        data,
        _FINISH_TRUE if finish_write else b"",
    ))


def _parsing_back(stub: blob_pb2_grpc.BlobServiceStub) -> WriteBlobEncoded:
    """The stub's WriteBlob taking encoded requests: each is parsed back into its message."""

    def write_blob(requests: AsyncIterator[bytes], **kwargs: Any) -> Awaitable[blob_pb2.WriteBlobResponse]:
        async def messages() -> AsyncIterator[blob_pb2.WriteBlobRequest]:
            async for request in requests:
                yield blob_pb2.WriteBlobRequest.FromString(request)

        response: Awaitable[blob_pb2.WriteBlobResponse] = stub.WriteBlob(messages(), **kwargs)
        return response

    return write_blob


FindMissing = Callable[..., Awaitable[blob_pb2.FindMissingBlobsResponse]]


async def find_missing(call: FindMissing, digests: Sequence[BlobDigest], batch_size: int | None,
                       timeout: float | None) -> set[BlobDigest]:
    """FindMissingBlobs over ``digests`` (duplicates asked once), ``batch_size``
    digests per request; ``call`` is the stub method, or a wrapper of it."""
    wanted = list(dict.fromkeys(digests))
    step = max(1, batch_size) if batch_size is not None else max(1, len(wanted))
    missing: set[BlobDigest] = set()
    for start in range(0, len(wanted), step):
        request = blob_pb2.FindMissingBlobsRequest(digests=[digest_to_proto(d) for d in wanted[start:start + step]])
        response = await call(request, timeout=timeout)
        missing.update(digest_from_proto(d) for d in response.missing_digests)
    return missing




def _absorb(seen: OrderedDigest, target: ReadTarget, data: bytes) -> None:
    with memoryview(data) as view:
        target.write_at(seen.size, view)
    seen.update(data)


@dataclass
class _Counter:
    bytes: int = 0


def _checksum_headers(url: str, digest: BlobDigest) -> dict[str, str]:
    """The headers a part URL signs beyond its host: a URL that signs ``x-amz-checksum-sha256`` (the
    one PUT of a whole blob straight to its content address; the service signs it for no other part)
    must be sent the base64 of the blob's sha256 and ``x-amz-sdk-checksum-algorithm: SHA256``; the
    store refuses bytes of another hash."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    signed = set(";".join(query.get("X-Amz-SignedHeaders", [])).split(";"))
    return s3_checksum_headers(digest.hash) if S3_CHECKSUM_HEADER in signed else {}


class _StreamedPart:
    """A part's bytes as http.client sends an iterable body: read ``STREAMED_CHUNK_BYTES`` at a
    time through the transfer's ``read_at`` on the event loop, from the thread that sends them.
    Iterating again starts over (another attempt of the same PUT)."""

    def __init__(self, read_at: ReadAt, offset: int, size: int, loop: asyncio.AbstractEventLoop, timeout: float):
        self._read_at, self._offset, self._size, self._loop, self._timeout = read_at, offset, size, loop, timeout

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        while sent < self._size:
            wanted = min(STREAMED_CHUNK_BYTES, self._size - sent)
            chunk = asyncio.run_coroutine_threadsafe(self._read(self._offset + sent, wanted),
                                                     self._loop).result(self._timeout)
            if len(chunk) != wanted:
                raise OSError(f"the content being uploaded ended after {sent + len(chunk)} of {self._size} bytes")
            yield chunk
            sent += wanted

    async def _read(self, offset: int, size: int) -> bytes:
        return await self._read_at(offset, size)


@dataclass(frozen=True)
class _FileRegion:
    """A request body that is ``size`` bytes of a file from ``offset``, sent by sendfile; ``sent_up_to``
    hears how far it got."""

    path: Path
    offset: int
    size: int
    sent_up_to: SentUpTo | None = None


def _send_file_region(connection: http.client.HTTPConnection, method: str, target: str, headers: dict[str, str],
                      region: _FileRegion) -> None:
    """The request line and ``headers`` (Content-Length among them), then the region's bytes straight
    from the page cache to the socket: the bytes never enter this process."""
    connection.putrequest(method, target)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    assert connection.sock is not None
    with region.path.open("rb") as source:
        sent = 0
        while sent < region.size:
            count = connection.sock.sendfile(source, region.offset + sent, min(SENDFILE_STEP_BYTES, region.size - sent))
            if not count:
                raise OSError(f"the content being uploaded ended after {sent} of {region.size} bytes")
            sent += count
            if region.sent_up_to is not None:
                region.sent_up_to(region.offset + sent)


class _ConnectionPool:
    """The keep-alive connections of one direct transfer: one per part PUT or range worker in
    flight, reused by the next part or range. Leased from the event loop or from worker threads."""

    def __init__(self, options: DirectTransfers):
        self._options = options
        self._idle: list[_StoreConnection] = []
        self._busy: set[_StoreConnection] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def lease(self) -> Iterator[_StoreConnection]:
        with self._lock:
            connection = self._idle.pop() if self._idle else _StoreConnection(self._options)
            self._busy.add(connection)
        try:
            yield connection
        finally:
            with self._lock:
                self._busy.discard(connection)
                self._idle.append(connection)

    def abort(self) -> None:
        """Cuts the busy connections: exchanges blocked in other threads return at once."""
        with self._lock:
            busy = list(self._busy)
        for connection in busy:
            connection.abort()

    def close(self) -> None:
        """Cuts the busy connections (their exchanges are given up) and closes the idle ones."""
        self.abort()
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


@dataclass
class _PieceBuffers:
    """The buffers of one fetching worker of a verified read, made as they are needed (fresh pages
    cost a fault each when first written): up to PIECES_HELD_PER_WORKER handed to the hashing, and
    a spare one."""

    free: list[bytearray] = field(default_factory=list)
    made: int = 0
    spare: bytearray | None = None


class _VerifiedRead:
    """The threads of one ``BlobClient.direct_read_verified``: ``fetch`` (one per connection) and
    ``hash``, meeting under one condition."""

    def __init__(self, options: DirectTransfers, retry: _DirectRetry, connections: _ConnectionPool, size: int,
                 target: ReadTarget, seen: OrderedDigest, url: str,
                 download_url: Callable[[], Coroutine[Any, Any, str]], loop: asyncio.AbstractEventLoop):
        self._retry, self._connections, self._size, self._target, self._seen = retry, connections, size, target, seen
        self._url, self._download_url, self._loop = url, download_url, loop
        step = max(1, options.read_range_bytes)
        # Ranges not taken by a worker yet, lowest first.
        self._ranges = [(start, min(start + step, size)) for start in range(seen.size, size, step)][::-1]
        self.workers = min(max(1, options.concurrency), len(self._ranges))
        self._changed = threading.Condition()
        # Pieces landed in the target and not hashed yet, by offset: their length, and the buffer
        # holding them with the list it goes back to (None: read them back from the target).
        self._landed: dict[int, tuple[int, bytearray | None, list[bytearray]]] = {}
        # Set by a failure (the hashing still takes every piece landed before it) or by the caller.
        self._stopped = threading.Event()
        # Set by the caller: the read is over, also for the hashing.
        self._abandoned = False
        self._failure: BaseException | None = None

    def fetch(self) -> None:
        """Takes ranges until none is left, on one connection; a failure stops the whole read."""
        buffers = _PieceBuffers()
        try:
            with self._connections.lease() as connection:
                while not self._stopped.is_set():
                    with self._changed:
                        if not self._ranges:
                            return
                        start, end = self._ranges.pop()
                    self._fetch_range(connection, start, end, buffers)
        except BaseException as exc:  # noqa: BLE001 - raised to the caller by raise_failure
            with self._changed:
                if self._failure is None and not self._stopped.is_set():
                    self._failure = exc
                self._stopped.set()
                self._changed.notify_all()

    def _fetch_range(self, connection: _StoreConnection, start: int, end: int, buffers: _PieceBuffers) -> None:
        """Fetches ``[start, end)`` piece by piece, each into a buffer handed to the hashing with its
        piece (back in ``buffers.free`` once hashed) or, while all of them wait to be hashed, into
        the spare one, whose pieces the hashing reads back from the target."""
        free = buffers.free
        breaks = refusals = 0
        position = start
        while position < end and not self._stopped.is_set():
            url = self._url
            try:
                response = connection.get(url, {"Range": f"bytes={position}-{end - 1}"}, end - position)
                while position < end:
                    if self._stopped.is_set():
                        connection.close()
                        return
                    with self._changed:
                        buffer = free.pop() if free else None
                    if buffer is None and buffers.made < PIECES_HELD_PER_WORKER:
                        buffer, buffers.made = bytearray(READ_PIECE_BYTES), buffers.made + 1
                    if buffer is None and buffers.spare is None:
                        buffers.spare = bytearray(READ_PIECE_BYTES)
                    receiving = buffer if buffer is not None else buffers.spare
                    assert receiving is not None
                    size = min(READ_PIECE_BYTES, end - position)
                    with memoryview(receiving) as view:
                        try:
                            connection.read_into(response, view[:size])
                        except BaseException:
                            if buffer is not None:
                                with self._changed:
                                    free.append(buffer)
                            raise
                        self._target.write_at(position, view[:size])
                    with self._changed:
                        self._landed[position] = (size, buffer, free)
                        self._changed.notify_all()
                    position += size
                connection.done_with(response)
            except DirectRefused:
                refusals += 1
                if refusals >= self._retry.refusals.max_attempts:
                    raise DirectUnreachable(f"the store refused ranges from {position}") from None
                if self._stopped.wait(self._retry.refusals.delay(refusals)):
                    return
                if self._url == url:
                    self._url = self._fresh_url()
            except DirectBroken:
                breaks += 1
                if self._stopped.is_set() or breaks >= self._retry.breaks.max_attempts:
                    raise
                if self._stopped.wait(self._retry.breaks.delay(breaks)):
                    return

    def _fresh_url(self) -> str:
        asked: concurrent.futures.Future[str] = asyncio.run_coroutine_threadsafe(self._download_url(), self._loop)
        while True:
            try:
                return asked.result(timeout=0.1)
            except concurrent.futures.TimeoutError:
                # The event loop may be waiting for this thread to end (the read was given up).
                if self._stopped.is_set():
                    asked.cancel()
                    raise DirectUnreachable("the read was given up") from None

    def hash(self) -> None:
        """Feeds ``seen`` the landed pieces in order until the blob is whole or the read stopped."""
        seen = self._seen
        read_back: bytearray | None = None
        while seen.size < self._size:
            with self._changed:
                while seen.size not in self._landed and not self._stopped.is_set():
                    self._changed.wait()
                piece = None if self._abandoned else self._landed.pop(seen.size, None)
            if piece is None:
                return
            size, buffer, owner = piece
            if buffer is None:
                read_back = read_back if read_back is not None else bytearray(READ_PIECE_BYTES)
                with memoryview(read_back) as view:
                    self._target.read_at(seen.size, view[:size])
                    seen.update(view[:size])
            else:
                with memoryview(buffer) as view:
                    seen.update(view[:size])
                with self._changed:
                    owner.append(buffer)

    def stop(self) -> None:
        with self._changed:
            self._abandoned = True
            self._stopped.set()
            self._changed.notify_all()
        self._connections.abort()

    def raise_failure(self) -> None:
        """Raises what stopped the read early, if anything did."""
        if self._failure is not None and self._seen.size < self._size:
            raise self._failure


class _StoreConnection:
    """One keep-alive HTTP connection to the store, used by one transfer worker at a time (its
    calls block: run them in a thread). Reusing it spares a TCP handshake and the store's set-up of
    a connection on every part and range."""

    def __init__(self, options: DirectTransfers):
        self._options = options
        self._connection: http.client.HTTPConnection | None = None
        self._origin = ("", "")

    def exchange(self, method: str, url: str, body: bytes | Iterable[bytes] | _FileRegion | None,
                 headers: dict[str, str]) -> bytes:
        """One request to a presigned URL; returns the response body.

        Raises DirectUnreachable when no connection could be made, DirectBroken when the exchange
        broke after connecting, DirectRefused for an error status.
        """
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = self._connect(parts.scheme, parts.netloc)
        try:
            if isinstance(body, _FileRegion):
                _send_file_region(connection, method, target, headers, body)
            else:
                connection.request(method, target, body=body, headers=headers)
            response = self._answered(connection)
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise DirectBroken(f"{method} to {parts.netloc} broke: {exc}") from exc
        if response.will_close:
            self.close()
        return data

    def get(self, url: str, headers: dict[str, str], length: int) -> http.client.HTTPResponse:
        """Sends a GET and answers the response once its status and length say the body is the
        ``length`` bytes asked for; the caller reads the body with ``read_into``, then hands the
        response back with ``done_with``.

        Raises DirectUnreachable when no connection could be made (or the store answers another
        length), DirectBroken when the exchange broke after connecting, DirectRefused for an error
        status.
        """
        parts = urllib.parse.urlsplit(url)
        connection = self._connect(parts.scheme, parts.netloc)
        try:
            connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
            response = self._answered(connection)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise DirectBroken(f"GET from {parts.netloc} broke: {exc}") from exc
        if response.length is not None and response.length != length:
            self.close()
            raise DirectUnreachable(f"GET from {parts.netloc} answered {response.length} bytes where {length} "
                                    "were asked for")
        return response

    def _answered(self, connection: http.client.HTTPConnection) -> http.client.HTTPResponse:
        """The response to the request just sent; raises DirectRefused for an error status."""
        response = connection.getresponse()
        if response.status >= 300:
            data = response.read()
            if response.will_close:
                self.close()
            raise DirectRefused(response.status, data)
        return response

    def read_into(self, response: http.client.HTTPResponse, into: memoryview) -> None:
        """The next ``len(into)`` bytes of the body of ``response`` into ``into``; raises DirectBroken
        when the body broke or ended before."""
        try:
            received = _read_body_into(response, into)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise DirectBroken(f"a body from the store broke: {exc}") from exc
        if received != len(into):
            self.close()
            raise DirectBroken(f"a body from the store ended {len(into) - received} bytes early")

    def done_with(self, response: http.client.HTTPResponse) -> None:
        """The whole body of ``response`` was read: the connection serves the next request unless
        the store said it closes it (or sent more than it was asked for)."""
        if response.will_close or not response.isclosed():
            self.close()

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if self._connection is not None and self._origin == (scheme, netloc):
            return self._connection
        self.close()
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = http.client.HTTPSConnection(netloc, timeout=self._options.connect_timeout_seconds,
                                                     context=ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(netloc, timeout=self._options.connect_timeout_seconds)
        try:
            connection.connect()
        except OSError as exc:
            connection.close()
            raise DirectUnreachable(f"cannot connect to {netloc}: {exc}") from exc
        if connection.sock is not None:
            connection.sock.settimeout(self._options.transfer_timeout_seconds)
        self._connection, self._origin = connection, (scheme, netloc)
        return connection

    def abort(self) -> None:
        """Makes an exchange blocked in another thread return at once (the transfer is given up)."""
        connection = self._connection
        if connection is not None and connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _read_body_into(response: http.client.HTTPResponse, into: memoryview) -> int:
    """Reads the body straight into ``into`` (``read()`` would copy it piece by piece, markedly
    slower for ranges of MiBs); returns how many bytes arrived before it ended."""
    received = 0
    while received < len(into):
        count = response.readinto(into[received:])
        if not count:
            break
        received += count
    return received


def _read_file_at(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(size)
