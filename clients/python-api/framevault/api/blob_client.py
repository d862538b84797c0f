"""A BlobService client that uploads only what is missing and resumes broken writes.

Used by the SDK, tests and benchmarks. ``upload`` checks FindMissingBlobs first
(no bytes move for a blob the store has), then follows the resume protocol of
``QueryWriteStatusResponse``: ask QueryWriteStatus, write from the committed
size it answers, and after a broken stream (or ABORTED: the upload changed or
started over) ask again. The service keeps whole parts of
``resumable_part_size_bytes``, so a broken stream or a restarted service costs
at most the part being filled; a blob of at most one part is sent again whole.

With ``direct`` options (the SDK passes them), large blobs skip the service's
byte streams when it advertises ``direct_transfers``: uploads PUT their parts
in parallel to presigned URLs (StartDirectUpload), then CompleteDirectUpload
has the service verify and publish them; reads GET ranges of a presigned
download URL in parallel. When the store cannot be reached from here (refused
connection, timeout), the transfer goes on over WriteBlob / ReadBlob, and
direct transfers rest for ``DirectTransfers.retry_after_seconds``.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import ssl
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
from grpc import aio

from framevault.api.digests import BlobDigest, digest_from_proto, digest_of, digest_to_proto, file_digest
from framevault.api.retry import RetryPolicy, codes, server_retry_delay
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


@dataclass(frozen=True)
class DirectTransfers:
    """How a client moves large blobs straight to and from the object store."""

    # Parts or ranges in flight at once.
    concurrency: int = 4
    # Size of the ranges a direct read GETs.
    read_range_bytes: int = 8 * 1024 * 1024
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


class DirectRefused(Exception):
    """The object store answered a presigned URL with an error status (expired URL, busy store ...)."""

    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status


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
                 capabilities: Callable[[], Awaitable[blob_pb2.GetCapabilitiesResponse]] | None = None):
        """``direct``: move large blobs straight to and from the store (off when None).
        ``capabilities``: how to ask GetCapabilities (default: once, on ``stub``)."""
        self._stub = stub
        self._chunk_size = chunk_size
        self._timeout = timeout
        self._retry = replace(UPLOAD_RETRY, max_attempts=max_attempts)
        self._direct = direct
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

        return await self.upload(digest, read_at, upload_id=upload_id)

    async def upload(self, digest: BlobDigest, read_at: ReadAt, *, upload_id: str | None = None) -> UploadResult:
        """Uploads unless present (direct when worth it and reachable); resumes after broken streams with backoff."""
        if not await self.missing([digest]):
            return UploadResult(digest, 0, True, 0)
        name = self.upload_name(digest, upload_id)
        if await self.goes_direct(digest.size, write=True):
            try:
                result = await self._upload_direct(name, digest, read_at)
                self.direct_transfers += 1
                return result
            except DirectUnreachable:
                self.note_unreachable()
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

    async def _upload_direct(self, name: str, digest: BlobDigest, read_at: ReadAt) -> UploadResult:
        """Parts PUT in parallel to presigned URLs, then verified and published by the service.

        Asks StartDirectUpload until no part is missing (it answers what landed, so a cut upload
        resumes with the parts still missing), then CompleteDirectUpload. Raises DirectUnreachable
        when the store does not answer from here.
        """
        assert self._direct is not None
        options = self._direct
        sent = 0
        failures = 0
        request = blob_pb2.StartDirectUploadRequest(resource_name=name)
        gate = asyncio.Semaphore(max(1, options.concurrency))
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
                    data = await read_at(part.offset, part.size_bytes)
                    await asyncio.to_thread(_http_exchange, "PUT", part.url, data, {}, options)
                    return len(data)

            outcomes = await asyncio.gather(*(put(p) for p in plan.parts), return_exceptions=True)
            sent += sum(o for o in outcomes if isinstance(o, int))
            errors = [o for o in outcomes if isinstance(o, BaseException)]
            unreachable = [e for e in errors if isinstance(e, DirectUnreachable)]
            if unreachable:
                raise unreachable[0]
            all_sent = not errors and len(plan.uploaded_part_numbers) + len(plan.parts) == plan.part_count
            if errors:
                other = [e for e in errors if not isinstance(e, DirectRefused)]
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
                    response = await self._stub.WriteBlob(
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
                        counter: _Counter) -> AsyncIterator[blob_pb2.WriteBlobRequest]:
        offset = start
        while True:
            data = await read_at(offset, min(self._chunk_size, size - offset)) if offset < size else b""
            last = offset + len(data) >= size
            counter.bytes += len(data)
            yield blob_pb2.WriteBlobRequest(resource_name=name if offset == start else "", write_offset=offset,
                                            data=data, finish_write=last)
            offset += len(data)
            if last:
                return

    async def read(self, digest: BlobDigest, offset: int = 0, limit: int = 0) -> bytes:
        if limit == 0 and offset < digest.size and await self.goes_direct(digest.size - offset):
            return b"".join([piece async for piece in self.chunks(digest, offset)])
        pieces = [message.data async for message in self._stub.ReadBlob(
            blob_pb2.ReadBlobRequest(digest=digest_to_proto(digest), offset=offset, limit=limit), timeout=self._timeout)]
        return b"".join(pieces)

    async def download_file(self, digest: BlobDigest, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        with target.open("wb") as out:
            async for piece in self.chunks(digest):
                await asyncio.to_thread(out.write, piece)

    async def chunks(self, digest: BlobDigest, offset: int = 0) -> AsyncIterator[bytes | bytearray]:
        """The blob's bytes from ``offset`` in order: direct ranges when worth it, else (or once the
        store proves unreachable, from where the direct read got to) the ReadBlob stream."""
        if offset < digest.size and await self.goes_direct(digest.size - offset):
            try:
                async for piece in self.direct_chunks(digest, offset):
                    offset += len(piece)
                    yield piece
                self.direct_transfers += 1
                return
            except DirectUnreachable:
                self.note_unreachable()
        async for message in self._stub.ReadBlob(blob_pb2.ReadBlobRequest(digest=digest_to_proto(digest),
                                                                         offset=offset), timeout=self._timeout):
            yield message.data

    async def direct_chunks(self, digest: BlobDigest, offset: int = 0, *,
                            reuse_buffers: bool = False) -> AsyncIterator[bytearray | bytes]:
        """Ranges of a presigned download URL, ``concurrency`` fetched ahead, yielded in order.

        ``reuse_buffers``: a yielded range's buffer receives a later range once the iteration goes
        on, so the caller must be done with it (hashed, written) before asking for the next. Fresh
        buffers of tens of MiB cost page faults and zeroing on every range; reused ones made reads
        about a third faster on the 2-core dev machine.

        Raises DirectUnreachable when the store does not answer from here; an expired or refused
        URL is asked for again (up to the retry policy's attempts).
        """
        assert self._direct is not None
        options = self._direct
        url_request = blob_pb2.GetDownloadUrlRequest(digest=digest_to_proto(digest))
        url = [(await self._stub.GetDownloadUrl(url_request, timeout=self._timeout)).url]
        step = max(1, options.read_range_bytes)
        starts = list(range(offset, digest.size, step))
        # Buffers of full ranges the caller is done with (reuse_buffers).
        free: list[bytearray] = []

        async def fetch(start: int) -> bytes | bytearray:
            end = min(start + step, digest.size) - 1
            into = free.pop() if free and end + 1 - start == step else None
            for attempt in range(1, self._retry.max_attempts + 1):
                try:
                    return await asyncio.to_thread(_http_exchange, "GET", url[0], None,
                                                   {"Range": f"bytes={start}-{end}"}, options, into)
                except DirectRefused:
                    if attempt == self._retry.max_attempts:
                        raise DirectUnreachable(f"the store refused ranges of {digest}") from None
                    await asyncio.sleep(self._retry.delay(attempt, None))
                    url[0] = (await self._stub.GetDownloadUrl(url_request, timeout=self._timeout)).url
            raise AssertionError("unreachable")

        fetches: dict[int, asyncio.Task[bytes | bytearray]] = {}
        try:
            for index, start in enumerate(starts):
                for ahead in starts[index:index + max(1, options.concurrency)]:
                    if ahead not in fetches:
                        fetches[ahead] = asyncio.ensure_future(fetch(ahead))
                data = await fetches.pop(start)
                if len(data) != min(step, digest.size - start):
                    raise DirectUnreachable(f"a range of {digest} arrived with {len(data)} bytes")
                yield data
                if reuse_buffers and isinstance(data, bytearray) and len(data) == step:
                    free.append(data)
        finally:
            for task in fetches.values():
                task.cancel()


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




@dataclass
class _Counter:
    bytes: int = 0


def _http_exchange(method: str, url: str, body: bytes | None, headers: dict[str, str],
                   options: DirectTransfers, into: bytearray | None = None) -> bytes | bytearray:
    """One HTTP request to a presigned URL (blocking: run in a thread); returns the response body
    (in ``into`` when the body has exactly its length).

    Raises DirectUnreachable when no connection could be made or the exchange broke, DirectRefused
    for an error status.
    """
    parts = urllib.parse.urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.netloc, timeout=options.connect_timeout_seconds,
                                                 context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(parts.netloc, timeout=options.connect_timeout_seconds)
    try:
        try:
            connection.connect()
        except OSError as exc:
            raise DirectUnreachable(f"cannot connect to {parts.netloc}: {exc}") from exc
        if connection.sock is not None:
            connection.sock.settimeout(options.transfer_timeout_seconds)
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            data = _read_body(response, into)
        except (OSError, http.client.HTTPException) as exc:
            raise DirectUnreachable(f"{method} to {parts.netloc} broke: {exc}") from exc
        if response.status >= 300:
            raise DirectRefused(response.status, bytes(data))
        return data
    finally:
        connection.close()


def _read_body(response: http.client.HTTPResponse, into: bytearray | None = None) -> bytes | bytearray:
    """The whole body, read straight into one buffer when its length is known (``read()`` copies
    it piece by piece, markedly slower for ranges of tens of MiB): ``into`` when it has that
    length, else a new one. The buffer itself is returned: copying it into ``bytes`` once more
    cost about a third of a range's time."""
    length = response.length
    if not length:
        return response.read()
    buffer = into if into is not None and len(into) == length else bytearray(length)
    with memoryview(buffer) as view:
        received = 0
        while received < length:
            count = response.readinto(view[received:])
            if not count:
                break
            received += count
    del buffer[received:]
    return buffer


def _read_file_at(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(size)
