"""Moving raw bytes to and from the blob service.

Uploads follow the content-addressed protocol: hash locally (sha256 + size),
ask ``FindMissingBlobs`` first so nothing the store has is sent again, then
send what is missing — small blobs many per ``BatchUpdateBlobs`` call, large
ones through the chunked ``WriteBlob`` stream, which resumes after a broken
connection from the offset ``QueryWriteStatus`` reports (whole parts of the
advertised ``resumable_part_size_bytes``; a blob of one part is sent again
from the start). Downloads verify the digest of what they wrote before the
file appears under its final name.

Blobs of at least the service's ``direct_transfer_min_size_bytes`` move
straight between this process and the object store when the service offers
``direct_transfers``: parallel part PUTs to presigned URLs (the service
verifies and publishes them) and parallel ranged GETs. When the store cannot
be reached from here, the same transfer goes over the service's streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
from tqdm import tqdm

from framevault.api.blob_client import (
    BlobClient,
    BufferTarget,
    ContentMismatch,
    DirectTransfers,
    FileTarget,
    ReadTarget,
    find_missing,
)
from framevault.api.digests import (
    BLOB_URI_PREFIX,
    BlobDigest,
    BlobUriError,
    digest_to_proto,
    file_digest,
    parse_blob_uri,
)
from framevault.sdk.client import FramevaultClient, retry_policy
from framevault.sdk.errors import FramevaultError
from framevault.sdk.progress import LazyBar, progress_bar
from framevault.sdk.settings import ClientSettings
from framevault.v1 import blob_pb2

DEFAULT_CHUNK_BYTES = 1024 * 1024
# Batch limits of a blob service that advertises none (its own defaults).
DEFAULT_MAX_BATCH_BLOBS = 1000
DEFAULT_MAX_BATCH_TOTAL_BYTES = 4 * 1024 * 1024
# Protobuf framing per blob in a batch (digest + field tags), kept out of the data budget.
BATCH_OVERHEAD_BYTES = 256
_RETRYABLE_STREAM_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED)


def parse_digest(text: str) -> BlobDigest:
    """Parses ``blob:sha256/{hash}/{size}``, ``sha256/{hash}/{size}`` or ``{hash}/{size}``.

    Raises:
        ValueError: not one of these forms.
    """
    rest = text.strip().lower().removeprefix("blob:").removeprefix("sha256/")
    hash_hex, _, size = rest.partition("/") if "/" in rest else rest.partition(":")
    try:
        # The services' parser: the same canonical sizes are accepted everywhere.
        return parse_blob_uri(f"{BLOB_URI_PREFIX}{hash_hex}/{size}")
    except BlobUriError:
        raise ValueError(f"not a blob digest: {text!r} (expected blob:sha256/<64 hex>/<size>)") from None


class _DigestCache:
    """Digests of files already hashed in this process, keyed by path, size and mtime."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, int, int], BlobDigest] = OrderedDict()

    def get(self, key: tuple[str, int, int]) -> BlobDigest | None:
        digest = self._entries.get(key)
        if digest is not None:
            self._entries.move_to_end(key)
        return digest

    def put(self, key: tuple[str, int, int], digest: BlobDigest) -> None:
        self._entries[key] = digest
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


_digest_cache = _DigestCache()


async def digest_file(path: str) -> BlobDigest:
    """sha256 and size of a file (hashed off the event loop, cached while unchanged).

    Raises:
        OSError: the file cannot be read.
    """
    stat = await asyncio.to_thread(os.stat, path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    cached = _digest_cache.get(key)
    if cached is not None:
        return cached
    digest = await asyncio.to_thread(file_digest, Path(path))
    _digest_cache.put(key, digest)
    return digest


def _read_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


@dataclass
class UploadOutcome:
    """Per path: its digest, or the error that kept it from the store."""

    digests: dict[str, BlobDigest]
    errors: dict[str, FramevaultError]


class BlobTransfer:
    """Uploads and downloads through one client; remembers what the store has."""

    _known_present_limit = 200_000

    def __init__(self, client: FramevaultClient, *, progress: bool | None = None, bar: LazyBar | None = None) -> None:
        """``progress`` shows a bar per upload; or pass one long-lived ``bar`` (bytes) to share."""
        self.client = client
        self.progress = progress
        self._shared_bar = bar
        self._known_present: set[BlobDigest] = set()
        self._bar: tqdm | None = None
        self._blob_client: BlobClient | None = None

    async def blob_client(self) -> BlobClient:
        """The one BlobClient of this transfer: it remembers when the store is unreachable from here."""
        if self._blob_client is None:
            caps = await self.client.capabilities()
            chunk = int(caps.preferred_chunk_size_bytes or DEFAULT_CHUNK_BYTES)
            if caps.max_chunk_size_bytes:
                chunk = min(chunk, int(caps.max_chunk_size_bytes))
            self._blob_client = BlobClient(
                self.client.blob, chunk_size=chunk, timeout=None,
                max_attempts=max(1, self.client.settings.stream_reconnect_attempts),
                direct=direct_transfers(self.client.settings),
                capabilities=self.client.capabilities, write_blob=self.client.write_blob_encoded)
        return self._blob_client

    # -- upload --

    async def upload_files(self, paths: Iterable[str]) -> UploadOutcome:
        """Makes sure the store has every file's content; returns each path's digest or error.

        Files are hashed first; only the digests ``FindMissingBlobs`` reports
        are sent. A file that cannot be read or stored gets an error instead of
        a digest, so one bad file does not stop the others.
        """
        outcome = UploadOutcome({}, {})
        unique = list(dict.fromkeys(paths))
        if not unique:
            return outcome
        concurrency = asyncio.Semaphore(max(1, self.client.settings.blob_upload_concurrency))

        async def hash_one(path: str) -> None:
            async with concurrency:
                try:
                    outcome.digests[path] = await digest_file(path)
                except OSError as exc:
                    outcome.errors[path] = FramevaultError.client_side(
                        grpc.StatusCode.INVALID_ARGUMENT, f"cannot read {path}: {exc.strerror or exc}",
                    )

        await asyncio.gather(*(hash_one(p) for p in unique))
        missing = await self.find_missing(outcome.digests.values())
        paths_by_digest: dict[BlobDigest, list[str]] = {}
        for path, digest in outcome.digests.items():
            if digest in missing:
                paths_by_digest.setdefault(digest, []).append(path)
        failures = await self._send_missing({d: ps[0] for d, ps in paths_by_digest.items()})
        for digest, error in failures.items():
            for path in paths_by_digest[digest]:
                outcome.errors[path] = error
                del outcome.digests[path]
        return outcome

    async def upload_file(self, path: str) -> BlobDigest:
        """Uploads one file (if the store lacks it) and returns its digest.

        Raises:
            FramevaultError: the file could not be read or stored.
        """
        outcome = await self.upload_files([path])
        if path in outcome.errors:
            raise outcome.errors[path]
        return outcome.digests[path]

    async def upload_bytes(self, data: bytes) -> BlobDigest:
        """Stores ``data`` (if the store lacks it) and returns its digest.

        Raises:
            FramevaultError: the store refused the bytes.
        """
        digest = BlobDigest(hashlib.sha256(data).hexdigest(), len(data))
        if await self.find_missing([digest]):
            await self._batch_update([(digest, data)])
        return digest

    async def find_missing(self, digests: Iterable[BlobDigest]) -> set[BlobDigest]:
        """The digests the store does not have (asked in batches of the advertised size)."""
        wanted = [d for d in dict.fromkeys(digests) if d not in self._known_present and d.size > 0]
        if not wanted:
            return set()
        limit = (await self.client.capabilities()).max_batch_blobs or DEFAULT_MAX_BATCH_BLOBS

        async def call(request: blob_pb2.FindMissingBlobsRequest,
                       timeout: float | None) -> blob_pb2.FindMissingBlobsResponse:
            return await self.client.unary(self.client.blob.FindMissingBlobs, request, idempotent=True)

        missing = await find_missing(call, wanted, limit, None)
        self._remember_present(d for d in wanted if d not in missing)
        return missing

    def _remember_present(self, digests: Iterable[BlobDigest]) -> None:
        if len(self._known_present) > self._known_present_limit:
            self._known_present.clear()
        self._known_present.update(digests)

    async def _send_missing(self, path_by_digest: dict[BlobDigest, str]) -> dict[BlobDigest, FramevaultError]:
        if not path_by_digest:
            return {}
        caps = await self.client.capabilities()
        budget = int(caps.max_batch_total_size_bytes or DEFAULT_MAX_BATCH_TOTAL_BYTES)
        threshold = min(self.client.settings.blob_batch_threshold_bytes, budget // 2)
        small = sorted((d for d in path_by_digest if d.size <= threshold), key=lambda d: d.size)
        large = [d for d in path_by_digest if d.size > threshold]
        failures: dict[BlobDigest, FramevaultError] = {}
        total = sum(d.size for d in path_by_digest)
        with contextlib.ExitStack() as stack:
            if self._shared_bar is not None:
                bar = self._shared_bar.get()
                bar.total = (bar.total or 0) + total
                bar.refresh()
            else:
                bar = stack.enter_context(progress_bar(self.progress, desc="uploading blobs", unit="B", total=total,
                                                       unit_scale=True, unit_divisor=1024))
            self._bar = bar
            try:
                for batch in _batches(small, budget, max(1, caps.max_batch_blobs or DEFAULT_MAX_BATCH_BLOBS)):
                    failures.update(await self._batch_update_files([(d, path_by_digest[d]) for d in batch]))
                concurrency = asyncio.Semaphore(max(1, self.client.settings.blob_upload_concurrency))

                async def write_one(digest: BlobDigest) -> None:
                    async with concurrency:
                        try:
                            await self.write_file(path_by_digest[digest], digest)
                        except FramevaultError as error:
                            failures[digest] = error
                        except OSError as exc:
                            failures[digest] = FramevaultError.client_side(
                                grpc.StatusCode.INVALID_ARGUMENT, f"cannot read {path_by_digest[digest]}: {exc}")

                await asyncio.gather(*(write_one(d) for d in large))
            finally:
                self._bar = None
        self._remember_present(d for d in path_by_digest if d not in failures)
        return failures

    async def _batch_update_files(self, items: list[tuple[BlobDigest, str]]) -> dict[BlobDigest, FramevaultError]:
        payload: list[tuple[BlobDigest, bytes]] = []
        failures: dict[BlobDigest, FramevaultError] = {}
        for digest, path in items:
            try:
                payload.append((digest, await asyncio.to_thread(_read_file, path)))
            except OSError as exc:
                failures[digest] = FramevaultError.client_side(
                    grpc.StatusCode.INVALID_ARGUMENT, f"cannot read {path}: {exc.strerror or exc}")
        failures.update(await self._batch_update(payload))
        return failures

    async def _batch_update(self, payload: list[tuple[BlobDigest, bytes]]) -> dict[BlobDigest, FramevaultError]:
        """Sends blobs in one BatchUpdateBlobs call; returns the per-blob failures."""
        if not payload:
            return {}
        request = blob_pb2.BatchUpdateBlobsRequest(requests=[
            blob_pb2.BatchUpdateBlobsRequest.Request(digest=digest_to_proto(d), data=data) for d, data in payload
        ])
        # Content-addressed writes are idempotent: resending the same bytes is harmless.
        response = await self.client.unary(self.client.blob.BatchUpdateBlobs, request, idempotent=True)
        failures: dict[BlobDigest, FramevaultError] = {}
        for (digest, data), result in zip(payload, response.responses, strict=False):
            if result.status.code != 0:
                failures[digest] = FramevaultError.from_status(result.status)
            if self._bar is not None:
                self._bar.update(len(data))
        return failures

    async def write_file(self, path: str, digest: BlobDigest) -> None:
        """Streams one file with WriteBlob, resuming from the committed offset after a broken stream.

        Raises:
            FramevaultError: the upload failed for good (e.g. the content no
                longer matches ``digest``).
            OSError: the file cannot be read.
        """
        writer = await self.blob_client()
        bar = self._bar
        counted: set[int] = set()
        total = [0]

        async def read_at(offset: int, size: int) -> bytes:
            data = await asyncio.to_thread(_read_file_at, path, offset, size)
            if bar is not None and offset not in counted:
                # Bytes resent after a resume are counted once (direct parts arrive in any order).
                counted.add(offset)
                grown = min(len(data), digest.size - total[0])
                bar.update(grown)
                total[0] += grown
            return data

        loop = asyncio.get_running_loop()

        def advance(end: int) -> None:
            if bar is not None and end > total[0]:
                bar.update(end - total[0])
                total[0] = end

        def sent_up_to(end: int) -> None:
            # Called by the thread sending the file.
            loop.call_soon_threadsafe(advance, end)

        try:
            await writer.upload(digest, read_at, source=Path(path), sent_up_to=sent_up_to)
        except grpc.RpcError as rpc_error:
            raise await self.client.call_error(rpc_error, self.client.blob.WriteBlob) from None
        if bar is not None and digest.size > total[0]:
            # Nothing is read when the store already had the blob.
            bar.update(digest.size - total[0])

    # -- download --

    async def read_bytes(self, digest: BlobDigest) -> bytes:
        """The content of a blob, read whole into memory (use :meth:`read_to_file` for large blobs).

        Raises:
            FramevaultError: NOT_FOUND, or the content did not match the digest.
        """
        buffer = bytearray(digest.size)
        await self._read_verified(digest, BufferTarget(buffer))
        return bytes(buffer)

    async def read_to_file(self, digest: BlobDigest, destination: str | os.PathLike[str]) -> Path:
        """Streams a blob into ``destination``; the file appears only once verified.

        The bytes go into a hidden file beside ``destination`` (each piece written at its offset as
        it arrives); it takes the final name only once sha256 and size matched.

        Raises:
            FramevaultError: NOT_FOUND, or the content did not match the digest.
        """
        target = Path(destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            try:
                await self._read_verified(digest, FileTarget(handle))
            finally:
                os.close(handle)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target

    async def _read_verified(self, digest: BlobDigest, target: ReadTarget) -> None:
        """Reads the blob into ``target`` and checks it against the digest (``BlobClient.read_into``),
        going on over ReadBlob, re-opened after a broken stream, from wherever a direct read stopped.

        Raises:
            FramevaultError: the read failed for good (e.g. NOT_FOUND), or the content did not
                match the digest (DATA_LOSS).
        """
        reader = await self.blob_client()
        try:
            await reader.read_into(digest, target, lambda offset: self._stream_chunks(digest, offset))
        except ContentMismatch as mismatch:
            raise FramevaultError.client_side(grpc.StatusCode.DATA_LOSS, str(mismatch)) from None
        except grpc.RpcError as rpc_error:
            # The ReadBlob stream raises FramevaultError: what fails here is asking for a download URL.
            raise await self.client.call_error(rpc_error, self.client.blob.GetDownloadUrl) from None

    async def _stream_chunks(self, digest: BlobDigest, offset: int) -> AsyncIterator[bytes]:
        """ReadBlob from ``offset``, re-opened at the next offset after a broken stream."""
        failures = 0
        while True:
            try:
                async for response in self.client.blob.ReadBlob(
                    blob_pb2.ReadBlobRequest(digest=digest_to_proto(digest), offset=offset)
                ):
                    if response.data:
                        failures = 0
                        offset += len(response.data)
                        yield response.data
                return
            except grpc.RpcError as rpc_error:
                error = await self.client.call_error(rpc_error, self.client.blob.ReadBlob)
                failures += 1
                policy = retry_policy(self.client.settings, self.client.settings.stream_reconnect_attempts,
                                      _RETRYABLE_STREAM_CODES)
                if not policy.retries(error.code, failures):
                    raise error from None
                await asyncio.sleep(policy.delay(failures, error.retry_delay))


def direct_transfers(settings: ClientSettings) -> DirectTransfers:
    """How the SDK moves large blobs straight to and from the store, from its settings."""
    return DirectTransfers(concurrency=max(1, settings.blob_direct_concurrency),
                           read_range_bytes=max(1, settings.blob_direct_range_bytes),
                           writes=settings.blob_direct_writes)


def _read_file_at(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def _batches(digests: list[BlobDigest], budget: int, max_count: int) -> list[list[BlobDigest]]:
    """Groups small blobs so each group fits the batch byte budget and count limit."""
    groups: list[list[BlobDigest]] = []
    current: list[BlobDigest] = []
    used = 0
    for digest in digests:
        cost = digest.size + BATCH_OVERHEAD_BYTES
        if current and (used + cost > budget or len(current) >= max_count):
            groups.append(current)
            current, used = [], 0
        current.append(digest)
        used += cost
    if current:
        groups.append(current)
    return groups

