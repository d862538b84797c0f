"""A BlobService client that uploads only what is missing and resumes broken writes.

Used by the SDK, tests and benchmarks. ``upload`` checks FindMissingBlobs first
(no bytes move for a blob the store has), then follows the resume protocol of
``QueryWriteStatusResponse``: ask QueryWriteStatus, write from the committed
size it answers, and after a broken stream (or ABORTED: the upload changed or
started over) ask again. The service keeps whole parts of
``resumable_part_size_bytes``, so a broken stream or a restarted service costs
at most the part being filled; a blob of at most one part is sent again whole.
"""

from __future__ import annotations

import asyncio
import os
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
class UploadResult:
    digest: BlobDigest
    # Bytes sent over the wire (0 when the store already had the blob).
    bytes_sent: int
    already_existed: bool
    attempts: int


class BlobClient:
    def __init__(self, stub: blob_pb2_grpc.BlobServiceStub, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 timeout: float | None = 300.0, max_attempts: int = UPLOAD_RETRY.max_attempts):
        self._stub = stub
        self._chunk_size = chunk_size
        self._timeout = timeout
        self._retry = replace(UPLOAD_RETRY, max_attempts=max_attempts)

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
        """Uploads unless present; resumes after broken streams with backoff."""
        if not await self.missing([digest]):
            return UploadResult(digest, 0, True, 0)
        name = self.upload_name(digest, upload_id)
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
        pieces = [message.data async for message in self._stub.ReadBlob(
            blob_pb2.ReadBlobRequest(digest=digest_to_proto(digest), offset=offset, limit=limit), timeout=self._timeout)]
        return b"".join(pieces)

    async def download_file(self, digest: BlobDigest, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        with target.open("wb") as out:
            async for message in self._stub.ReadBlob(blob_pb2.ReadBlobRequest(digest=digest_to_proto(digest)),
                                                     timeout=self._timeout):
                await asyncio.to_thread(out.write, message.data)


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


def _read_file_at(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(size)
