"""Content-addressed blob operations: the domain behind BlobService.

Validates every input and enforces the advertised limits; talks to objects
only through ``BlobStorage``. Digests arrive as ``(hash, size)`` pairs so this
module knows nothing of protobuf.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from framevault.api.digests import BlobDigest
from framevault.blob.keys import cas_key
from framevault.blob.storage import BlobStorage, ObjectMissing
from framevault.blob.uploads import upload_limits
from framevault.common.config import Settings
from framevault.common.digests import checked_digest
from framevault.common.errors import FieldErrors, FramevaultError, InvalidArgument, NotFound, OutOfRange

T = TypeVar("T")
R = TypeVar("R")

RawDigest = tuple[str, int]

DEFAULT_DOWNLOAD_URL_SECONDS = 900
# SigV4 presigned URLs cannot live longer than seven days.
PRESIGN_MAX_SECONDS = 7 * 24 * 3600
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# What a download URL may be served as for a browser to show it in place: raster images and video
# carry no script. Anything else is served as DEFAULT_CONTENT_TYPE and as an attachment, so no
# stored bytes ever run as a page (HTML, SVG, XML, JavaScript) on the S3 origin.
INLINE_CONTENT_TYPES = frozenset({
    "image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/bmp", "image/tiff",
    "video/mp4", "video/webm",
})
BLOB_RESOURCE = "blob"
# Read chunks stay within what the API promises: 256 KiB to 1 MiB.
MIN_READ_CHUNK = 256 * 1024
MAX_READ_CHUNK = 1024 * 1024
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
                           r"(\s*;\s*[A-Za-z0-9_.-]{1,64}=[A-Za-z0-9_.+-]{1,64})*")


@dataclass(frozen=True)
class Capabilities:
    max_batch_total_size_bytes: int
    max_batch_blobs: int
    preferred_chunk_size_bytes: int
    max_chunk_size_bytes: int
    max_blob_size_bytes: int
    max_preview_edge: int
    max_download_url_seconds: int
    resumable_part_size_bytes: int
    direct_transfers: bool
    direct_transfer_min_size_bytes: int


@dataclass(frozen=True)
class BlobOutcome:
    """The result for one item of a batch: ``error`` is None when it succeeded."""

    digest: RawDigest
    error: FramevaultError | None = None
    data: bytes = b""


@dataclass(frozen=True)
class DownloadUrl:
    url: str
    expire_time: datetime


def not_found(digest: BlobDigest, field: str = "") -> NotFound:
    return NotFound(BLOB_RESOURCE, str(digest), field=field)


async def bounded_map(items: Sequence[T], fn: Callable[[T], Awaitable[R]], concurrency: int) -> list[R]:
    """``fn`` over ``items`` with at most ``concurrency`` running, results in input order."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def run(item: T) -> R:
        async with gate:
            return await fn(item)

    return list(await asyncio.gather(*(run(item) for item in items)))


class BlobStore:
    def __init__(self, storage: BlobStorage, settings: Settings):
        self._storage = storage
        self._settings = settings
        self._concurrency = settings.s3_max_concurrency

    def capabilities(self) -> Capabilities:
        s = self._settings
        uploads = upload_limits(s)
        return Capabilities(
            max_batch_total_size_bytes=s.blob_max_batch_total_size_bytes,
            max_batch_blobs=s.blob_max_batch_blobs,
            preferred_chunk_size_bytes=self.read_chunk_size,
            max_chunk_size_bytes=s.blob_max_chunk_size_bytes,
            max_blob_size_bytes=uploads.max_blob_size,
            max_preview_edge=s.blob_max_preview_edge,
            max_download_url_seconds=self.max_download_url_seconds,
            resumable_part_size_bytes=uploads.part_size,
            direct_transfers=s.blob_direct_transfers,
            direct_transfer_min_size_bytes=s.blob_direct_min_size_bytes,
        )

    @property
    def max_download_url_seconds(self) -> int:
        return max(1, min(self._settings.blob_max_download_url_seconds, PRESIGN_MAX_SECONDS))

    def url_lifetime(self, errors: FieldErrors, expires_in_seconds: int) -> timedelta:
        """The lifetime a presigned URL gets for ``expires_in_seconds`` (0 = the default), capped by
        ``blob_max_download_url_seconds``; out of range adds a violation of ``expires_in_seconds``."""
        limit = self.max_download_url_seconds
        default = min(DEFAULT_DOWNLOAD_URL_SECONDS, limit)
        if expires_in_seconds < 0 or expires_in_seconds > limit:
            errors.add("expires_in_seconds", f"must be 1..{limit} (0 means {default})")
            return timedelta(seconds=default)
        return timedelta(seconds=expires_in_seconds or default)

    @property
    def read_chunk_size(self) -> int:
        return min(max(self._settings.blob_chunk_size_bytes, MIN_READ_CHUNK), MAX_READ_CHUNK,
                   self._settings.blob_max_chunk_size_bytes)

    # ---- existence -----------------------------------------------------------------------------

    async def exists(self, digest: BlobDigest) -> bool:
        return digest.is_empty or await self._storage.stat(cas_key(digest)) is not None

    async def find_missing(self, raw: Sequence[RawDigest]) -> list[BlobDigest]:
        self._check_count(len(raw), "digests")
        digests = self._checked_all(raw, "digests")
        unique = list(dict.fromkeys(digests))
        present = await bounded_map(unique, self.exists, self._concurrency)
        return [d for d, found in zip(unique, present, strict=True) if not found]

    # ---- small blobs ---------------------------------------------------------------------------

    async def store(self, digest: BlobDigest, data: bytes) -> None:
        """Stores bytes already checked against ``digest``."""
        if not digest.is_empty:
            await self._storage.put(cas_key(digest), data)

    async def batch_update(self, requests: Sequence[tuple[RawDigest, bytes]]) -> list[BlobOutcome]:
        self._check_count(len(requests), "requests")
        total = sum(len(data) for _, data in requests)
        if total > self._settings.blob_max_batch_total_size_bytes:
            raise InvalidArgument.field(
                "requests", f"{total} bytes of data exceed max_batch_total_size_bytes "
                            f"{self._settings.blob_max_batch_total_size_bytes}; use WriteBlob")

        async def update(item: tuple[int, tuple[RawDigest, bytes]]) -> BlobOutcome:
            index, (raw, data) = item
            try:
                digest = checked_digest(raw[0], raw[1], f"requests[{index}].digest")
                await _check_content(digest, data, f"requests[{index}].data")
                await self.store(digest, data)
            except FramevaultError as error:
                return BlobOutcome(raw, error)
            return BlobOutcome(raw)

        return await bounded_map(list(enumerate(requests)), update, self._concurrency)

    async def batch_read(self, raw: Sequence[RawDigest]) -> list[BlobOutcome]:
        self._check_count(len(raw), "digests")
        total = sum(max(size, 0) for _, size in raw)
        if total > self._settings.blob_max_batch_total_size_bytes:
            raise InvalidArgument.field(
                "digests", f"{total} bytes requested exceed max_batch_total_size_bytes "
                           f"{self._settings.blob_max_batch_total_size_bytes}; use ReadBlob")

        async def read(item: tuple[int, RawDigest]) -> BlobOutcome:
            index, pair = item
            try:
                digest = checked_digest(pair[0], pair[1], f"digests[{index}]")
                data = b"" if digest.is_empty else await self._storage.get(cas_key(digest))
            except ObjectMissing:
                return BlobOutcome(pair, not_found(BlobDigest(*pair)))
            except FramevaultError as error:
                return BlobOutcome(pair, error)
            return BlobOutcome(pair, data=data)

        return await bounded_map(list(enumerate(raw)), read, self._concurrency)

    # ---- streamed read -------------------------------------------------------------------------

    async def read(self, raw: RawDigest, offset: int, limit: int) -> AsyncIterator[tuple[int, bytes]]:
        """Yields ``(offset, chunk)`` pairs of the requested range."""
        errors = FieldErrors()
        digest = checked_into(errors, raw, "digest")
        if offset < 0:
            errors.add("offset", "must be >= 0")
        if limit < 0:
            errors.add("limit", "must be >= 0 (0 reads to the end)")
        errors.raise_if_any()
        assert digest is not None
        if offset > digest.size:
            raise OutOfRange("offset", f"{offset} is past the end of the {digest.size}-byte blob")
        length = digest.size - offset if limit == 0 else min(limit, digest.size - offset)
        if length == 0:
            if not await self.exists(digest):
                raise not_found(digest, "digest")
            return
        position = offset
        try:
            async for chunk in self._storage.read_range(cas_key(digest), offset, length, self.read_chunk_size):
                yield position, chunk
                position += len(chunk)
        except ObjectMissing:
            raise not_found(digest, "digest") from None

    # ---- download URLs -------------------------------------------------------------------------

    async def download_url(self, raw: RawDigest, expires_in_seconds: int, content_type: str) -> DownloadUrl:
        errors = FieldErrors()
        digest = checked_into(errors, raw, "digest")
        lifetime = self.url_lifetime(errors, expires_in_seconds)
        if content_type and (len(content_type) > 255 or not _CONTENT_TYPE.fullmatch(content_type)):
            errors.add("content_type", "must be a MIME type like image/jpeg")
        errors.raise_if_any()
        assert digest is not None
        if digest.is_empty:
            # The empty blob is always present; give it an object so the URL serves it.
            await self._storage.put(cas_key(digest), b"")
        elif await self._storage.stat(cas_key(digest)) is None:
            raise not_found(digest, "digest")
        issued = datetime.now(UTC)
        served_type, disposition = served_headers(content_type)
        url = await self._storage.presign_get(cas_key(digest), lifetime, content_type=served_type,
                                              content_disposition=disposition)
        return DownloadUrl(url=url, expire_time=issued + lifetime)

    # ---- delete --------------------------------------------------------------------------------

    async def delete(self, raw: Sequence[RawDigest]) -> list[BlobOutcome]:
        self._check_count(len(raw), "digests")
        digests = self._checked_all(raw, "digests")

        async def delete_one(item: tuple[RawDigest, BlobDigest]) -> BlobOutcome:
            pair, digest = item
            if digest.is_empty:
                return BlobOutcome(pair)
            key = cas_key(digest)
            if await self._storage.stat(key) is None:
                return BlobOutcome(pair, not_found(digest))
            await self._storage.delete(key)
            return BlobOutcome(pair)

        return await bounded_map(list(zip(raw, digests, strict=True)), delete_one, self._concurrency)

    # ---- validation ----------------------------------------------------------------------------

    def _check_count(self, count: int, field: str) -> None:
        limit = self._settings.blob_max_batch_blobs
        if count > limit:
            raise InvalidArgument.field(field, f"{count} items exceed max_batch_blobs {limit}")

    @staticmethod
    def _checked_all(raw: Sequence[RawDigest], field: str) -> list[BlobDigest]:
        errors = FieldErrors()
        digests = [checked_into(errors, pair, f"{field}[{i}]") for i, pair in enumerate(raw)]
        errors.raise_if_any()
        return [d for d in digests if d is not None]


def served_headers(requested_type: str) -> tuple[str, str]:
    """Content-Type and Content-Disposition a download URL serves for the type a caller asked for."""
    media_type = requested_type.split(";", 1)[0].strip().lower()
    if media_type in INLINE_CONTENT_TYPES:
        return media_type, "inline"
    return DEFAULT_CONTENT_TYPE, "attachment"


def checked_into(errors: FieldErrors, raw: RawDigest, field: str) -> BlobDigest | None:
    """The digest, or None with its violations added to ``errors``."""
    try:
        return checked_digest(raw[0], raw[1], field)
    except InvalidArgument as exc:
        errors.violations.extend(exc.violations)
        return None


# Above this, hashing moves off the event loop.
_INLINE_HASH_BYTES = 256 * 1024


async def _check_content(digest: BlobDigest, data: bytes, field: str) -> None:
    if len(data) != digest.size:
        raise InvalidArgument.field(field, f"{len(data)} bytes, but the digest says {digest.size}")
    if len(data) > _INLINE_HASH_BYTES:
        actual = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
    else:
        actual = hashlib.sha256(data).hexdigest()
    if actual != digest.hash:
        raise InvalidArgument.field(field, f"sha256 is {actual}, but the digest says {digest.hash}")
