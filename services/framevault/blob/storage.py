"""Object storage behind a small interface, and its S3 implementation.

The blob domain only needs a handful of object operations; keeping them
behind ``BlobStorage`` lets the conformance suite in ``tests/blob`` check
any backend the same way, and keeps SDK details (threads, pools, error
classes) out of the domain.

The ``minio`` SDK is synchronous: every call runs in a thread pool sized to
``s3_max_concurrency``, and the SDK's urllib3 pool gets the same size so no
thread ever waits for a connection. At most ``blob_max_open_reads`` streamed
reads hold a GET open at once, each with the one thread that reads it ahead.
Calls go through the SDK's public API where it has one; the few operations it offers only as private methods
(part-level multipart control, a PUT with conditional headers) go through
``minio_internals``, the one module allowed to touch them.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import itertools
import threading
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import urllib3
from minio import Minio
from minio.datatypes import ListMultipartUploadsResult
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from framevault.api.digests import s3_checksum_headers
from framevault.blob import minio_internals
from framevault.common.config import Settings

T = TypeVar("T")

# S3 answers these codes for a key or upload that does not exist.
_MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"})
_MISSING_UPLOAD_CODES = frozenset({"NoSuchUpload"})
# S3 answers these when a completion names a part it does not hold (with that ETag).
_CHANGED_PART_CODES = frozenset({"InvalidPart", "InvalidPartOrder"})
# A conditional PUT whose condition no longer holds: the object changed (412) or is gone (If-Match, 404).
_CONDITION_FAILED_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"}) | _MISSING_OBJECT_CODES
# Where the start-up probe of conditional writes puts (and removes) its object.
CONDITIONAL_WRITE_PROBE_PREFIX = "probes/conditional-writes/"
# An ETag no object has: the probe's If-Match must fail with it.
_NO_SUCH_ETAG = "0" * 32
# Where the start-up probe of checksum checks puts (and removes) its objects.
CHECKSUM_PROBE_PREFIX = "probes/checksums/"
# Objects pulled from a listing per trip to the thread pool.
_LIST_BATCH = 1000
# S3 deletes at most this many keys per DeleteObjects request.
_DELETE_BATCH = 1000
# Chunks a streamed read holds ahead of its caller (memory per read stream: this many read chunks).
READ_AHEAD_CHUNKS = 4


class ObjectMissing(Exception):
    """The key does not exist."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


class UploadMissing(Exception):
    """The multipart upload does not exist (completed, aborted or expired)."""

    def __init__(self, key: str, upload_id: str):
        super().__init__(f"{key} ({upload_id})")
        self.key = key
        self.upload_id = upload_id


class PartsChanged(Exception):
    """A completion named a part that S3 no longer holds as named (another writer replaced it)."""

    def __init__(self, key: str, upload_id: str):
        super().__init__(f"{key} ({upload_id})")
        self.key = key
        self.upload_id = upload_id


class WriteConflict(Exception):
    """A conditional write found the object changed or gone since the version it expected."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


class ConditionalWritesUnsupported(Exception):
    """The object store writes a PUT whose If-None-Match / If-Match condition does not hold."""


class DeleteFailed(Exception):
    """S3 refused to delete a key of a batch."""

    def __init__(self, key: str, code: str, message: str):
        super().__init__(f"{key}: {code} {message}")
        self.key = key
        self.code = code


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime | None
    etag: str = ""
    metadata: Mapping[str, str] | None = None


@dataclass(frozen=True)
class TaggedBytes:
    """An object's content and the ETag of exactly that version."""

    data: bytes
    etag: str


@dataclass(frozen=True)
class PartInfo:
    """One committed part of a multipart upload."""

    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class MultipartUploadInfo:
    key: str
    upload_id: str
    initiated: datetime | None


class BlobStorage(Protocol):
    """Object operations the blob service needs; keys are bucket-relative."""

    async def bucket_exists(self) -> bool: ...

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size and age of ``key``, or None when it does not exist."""
        ...

    async def put(self, key: str, data: bytes | memoryview, *, content_type: str = "application/octet-stream") -> None: ...

    async def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes ``[offset, offset+length)`` (to the end when length is None); raises ObjectMissing."""
        ...

    async def get_tagged(self, key: str, max_bytes: int) -> TaggedBytes:
        """Content (at most ``max_bytes + 1`` bytes of it) and ETag of the current version; raises ObjectMissing."""
        ...

    async def put_conditional(self, key: str, data: bytes, *, expected_etag: str | None,
                              content_type: str = "application/octet-stream") -> str:
        """Writes ``key`` only if it is still at ``expected_etag`` (None: only if it does not exist).

        Returns the new ETag; raises WriteConflict when the condition does not hold.
        """
        ...

    def read_range(self, key: str, offset: int, length: int, chunk_size: int) -> AsyncIterator[bytes]:
        """Streams ``length`` bytes from ``offset`` in chunks of at most ``chunk_size`` (one request).

        Raises ObjectMissing before the first chunk when the key does not exist.
        """
        ...

    async def delete(self, key: str) -> None:
        """Removes ``key``; removing a missing key is not an error."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> None: ...

    def list_objects(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every object under ``prefix``, recursively, in key order."""
        ...

    async def create_multipart(self, key: str) -> str:
        """Starts a multipart upload to ``key``; returns its upload id."""
        ...

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes | memoryview) -> PartInfo: ...

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """Committed parts in number order; raises UploadMissing."""
        ...

    async def complete_multipart(self, key: str, upload_id: str, parts: Sequence[PartInfo]) -> None:
        """Makes the object visible from exactly these parts; raises UploadMissing or PartsChanged."""
        ...

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drops the upload and its parts; aborting a missing upload is not an error."""
        ...

    def list_multipart_uploads(self, prefix: str) -> AsyncIterator[MultipartUploadInfo]: ...

    async def presign_get(self, key: str, expires: timedelta, *, content_type: str, content_disposition: str) -> str:
        """A GET URL whose response carries exactly this Content-Type and Content-Disposition."""
        ...

    async def presign_upload_part(self, key: str, upload_id: str, number: int, expires: timedelta) -> str:
        """A PUT URL for part ``number`` of the multipart upload ``upload_id`` of ``key``, and nothing else."""
        ...

    async def upload_part_copy(self, key: str, upload_id: str, number: int, source_key: str, source_etag: str,
                               offset: int, length: int) -> PartInfo:
        """Part ``number`` of the upload, copied inside the store from ``length`` bytes at ``offset`` of
        ``source_key`` while it is at ``source_etag``; raises WriteConflict when it is not (or is gone),
        UploadMissing when the upload is."""
        ...

    async def presign_put_checked(self, key: str, sha256_hex: str, expires: timedelta) -> str:
        """A PUT URL for ``key`` whose signed query names the sha256 (``s3_checksum_headers(sha256_hex)``
        as query parameters), so a store that checks it (``refuses_mismatched_checksums``) stores only
        bytes of that sha256; the request carries no checksum header of its own."""
        ...

    async def refuses_mismatched_checksums(self) -> bool:
        """Whether the store refuses a PUT through ``presign_put_checked`` URLs whose bytes do not
        have the signed sha256, also when the request adds headers naming another sha256 or checksum
        (probed with objects under ``CHECKSUM_PROBE_PREFIX``, removed again)."""
        ...

    async def close(self) -> None: ...


async def verify_conditional_writes(storage: BlobStorage) -> None:
    """Refuses a store that ignores PUT conditions: upload state across replicas depends on them.

    Writes one probe object under ``CONDITIONAL_WRITE_PROBE_PREFIX`` and removes it again.
    """
    key = f"{CONDITIONAL_WRITE_PROBE_PREFIX}{uuid.uuid4().hex}"
    ignored: list[str] = []
    # Outside the try: when the store is unreachable there is nothing to remove, and no removal to wait for.
    await storage.put_conditional(key, b"first", expected_etag=None)
    try:
        for header, expected_etag in (("If-None-Match: *", None), ("If-Match", _NO_SUCH_ETAG)):
            try:
                await storage.put_conditional(key, b"must not be written", expected_etag=expected_etag)
                ignored.append(header)
            except WriteConflict:
                pass
    finally:
        await storage.delete(key)
    if ignored:
        raise ConditionalWritesUnsupported(
            f"the object store ignores {' and '.join(ignored)} on PUT; the blob service needs conditional "
            "writes to keep resumable uploads consistent across replicas (AWS S3, SeaweedFS and versitygw have them)")


def http_pool(settings: Settings) -> urllib3.PoolManager:
    """The SDK's HTTP pool: one connection per worker thread, retries on transient S3 answers."""
    return urllib3.PoolManager(
        num_pools=4,
        maxsize=settings.s3_max_concurrency,
        block=False,
        timeout=urllib3.Timeout(connect=10.0, read=300.0),
        retries=urllib3.Retry(
            total=5,
            # A refused or dropped connection is retried briefly: a dead S3 must become UNAVAILABLE fast.
            connect=2,
            read=2,
            backoff_factor=0.2,
            backoff_jitter=0.1,
            status_forcelist=(408, 429, 500, 502, 503, 504),
            # PUT part/object and GET are idempotent; POST (create/complete multipart) is retried too
            # because S3 treats repeating them as harmless.
            allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE", "POST"}),
            raise_on_status=False,
        ),
    )


class S3BlobStorage:
    """``BlobStorage`` on an S3 bucket through the ``minio`` SDK."""

    def __init__(self, settings: Settings, *, bucket: str | None = None):
        self.bucket = bucket or settings.s3_bucket
        self._settings = settings
        self._pool = http_pool(settings)
        self._client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region,
            http_client=self._pool,
        )
        self._executor = ThreadPoolExecutor(max_workers=settings.s3_max_concurrency, thread_name_prefix="s3")
        # Each streamed read holds its GET's connection and its read-ahead thread from the first chunk
        # to the last; further reads wait for one to end, so neither grows with the number of readers.
        self._open_reads = asyncio.Semaphore(settings.blob_max_open_reads)
        # Signs URLs for the address clients reach the store at; signing needs no request to the store
        # because the region is given.
        public_host, public_secure = public_endpoint(settings)
        self._presigner = self._client if public_host == settings.s3_endpoint and public_secure == settings.s3_secure \
            else Minio(public_host, access_key=settings.s3_access_key,
                       secret_key=settings.s3_secret_key.get_secret_value(), secure=public_secure,
                       region=settings.s3_region, http_client=self._pool)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def bucket_exists(self) -> bool:
        return await self._run(self._client.bucket_exists, self.bucket)

    async def stat(self, key: str) -> ObjectInfo | None:
        def stat() -> ObjectInfo | None:
            try:
                found = self._client.stat_object(self.bucket, key)
            except S3Error as exc:
                if exc.code in _MISSING_OBJECT_CODES:
                    return None
                raise
            return ObjectInfo(key=key, size=found.size or 0, last_modified=found.last_modified,
                              etag=found.etag or "", metadata=dict(found.metadata or {}))

        return await self._run(stat)

    async def put(self, key: str, data: bytes | memoryview, *, content_type: str = "application/octet-stream") -> None:
        # One PUT whatever the size, sent from ``data`` itself (put_object would read a copy of it first).
        await self._run(minio_internals.put_with_headers, self._client, self.bucket, key, data,
                        {"Content-Type": content_type})

    async def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        return (await self._run(self._read, key, offset, length)).data

    async def get_tagged(self, key: str, max_bytes: int) -> TaggedBytes:
        return await self._run(self._read, key, 0, max_bytes + 1)

    def _read(self, key: str, offset: int, length: int | None) -> TaggedBytes:
        response = self._open(key, offset, length)
        try:
            return TaggedBytes(data=response.read(decode_content=False),
                               etag=(response.headers.get("ETag") or "").strip('"'))
        finally:
            response.close()
            response.release_conn()

    async def put_conditional(self, key: str, data: bytes, *, expected_etag: str | None,
                              content_type: str = "application/octet-stream") -> str:
        condition = {"If-Match": f'"{expected_etag}"'} if expected_etag is not None else {"If-None-Match": "*"}

        def put() -> str:
            try:
                return minio_internals.put_with_headers(self._client, self.bucket, key, data,
                                                        {"Content-Type": content_type, **condition})
            except S3Error as exc:
                if exc.code in _CONDITION_FAILED_CODES:
                    raise WriteConflict(key) from exc
                raise

        return await self._run(put)

    def _open(self, key: str, offset: int, length: int | None) -> urllib3.BaseHTTPResponse:
        """The GET's response; its body is read with ``decode_content=False``: an object's bytes as
        stored, whatever Content-Encoding it was stored with (a client's PUT may set one), and without
        urllib3's decoding buffer, which copied every piece once more."""
        try:
            return self._client.get_object(self.bucket, key, offset=offset, length=length or 0)
        except S3Error as exc:
            if exc.code in _MISSING_OBJECT_CODES:
                raise ObjectMissing(key) from exc
            raise

    async def read_range(self, key: str, offset: int, length: int, chunk_size: int) -> AsyncIterator[bytes]:
        async with self._open_reads:
            response = await self._run(self._open, key, offset, length)
            reader = _ReadAhead(key, response, length, chunk_size)
            try:
                while (chunk := await reader.next()) is not None:
                    yield chunk
            finally:
                reader.stop()

    async def delete(self, key: str) -> None:
        await self._run(self._client.remove_object, self.bucket, key)

    async def delete_many(self, keys: Sequence[str]) -> None:
        def delete_batch(batch: Sequence[str]) -> None:
            failures = list(self._client.remove_objects(self.bucket, [DeleteObject(k) for k in batch]))
            real = [f for f in failures if f.code not in _MISSING_OBJECT_CODES]
            if real:
                raise DeleteFailed(real[0].name or "", real[0].code or "", real[0].message or "")

        for start in range(0, len(keys), _DELETE_BATCH):
            await self._run(delete_batch, keys[start:start + _DELETE_BATCH])

    async def list_objects(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        listing = self._client.list_objects(self.bucket, prefix=prefix, recursive=True)

        def next_batch() -> list[ObjectInfo]:
            return [ObjectInfo(key=o.object_name or "", size=o.size or 0, last_modified=o.last_modified,
                               etag=o.etag or "")
                    for o in itertools.islice(listing, _LIST_BATCH) if not o.is_dir]

        while True:
            batch = await self._run(next_batch)
            if not batch:
                return
            for info in batch:
                yield info

    async def create_multipart(self, key: str) -> str:
        return await self._run(minio_internals.create_multipart_upload, self._client, self.bucket, key,
                               "application/octet-stream")

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes | memoryview) -> PartInfo:
        def upload() -> str:
            try:
                return minio_internals.upload_part(self._client, self.bucket, key, upload_id, number, data)
            except S3Error as exc:
                if exc.code in _MISSING_UPLOAD_CODES:
                    raise UploadMissing(key, upload_id) from exc
                raise

        etag = await self._run(upload)
        return PartInfo(number=number, etag=etag, size=len(data))

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        def list_all() -> list[PartInfo]:
            parts: list[PartInfo] = []
            marker: str | None = None
            while True:
                try:
                    page = minio_internals.list_parts_page(self._client, self.bucket, key, upload_id, marker)
                except S3Error as exc:
                    if exc.code in _MISSING_UPLOAD_CODES:
                        raise UploadMissing(key, upload_id) from exc
                    raise
                parts.extend(PartInfo(number=p.part_number, etag=(p.etag or "").strip('"'), size=p.size or 0)
                             for p in page.parts)
                if not page.is_truncated:
                    return sorted(parts, key=lambda p: p.number)
                marker = str(page.next_part_number_marker)

        return await self._run(list_all)

    async def complete_multipart(self, key: str, upload_id: str, parts: Sequence[PartInfo]) -> None:
        def complete() -> None:
            try:
                minio_internals.complete_multipart_upload(self._client, self.bucket, key, upload_id,
                                                          [(p.number, p.etag) for p in parts])
            except S3Error as exc:
                if exc.code in _MISSING_UPLOAD_CODES:
                    raise UploadMissing(key, upload_id) from exc
                if exc.code in _CHANGED_PART_CODES:
                    raise PartsChanged(key, upload_id) from exc
                raise

        await self._run(complete)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        def abort() -> None:
            try:
                minio_internals.abort_multipart_upload(self._client, self.bucket, key, upload_id)
            except S3Error as exc:
                if exc.code not in _MISSING_UPLOAD_CODES:
                    raise

        await self._run(abort)

    async def list_multipart_uploads(self, prefix: str) -> AsyncIterator[MultipartUploadInfo]:
        key_marker: str | None = None
        upload_id_marker: str | None = None
        while True:
            page = await self._run(self._list_uploads_page, prefix, key_marker, upload_id_marker)
            for upload in page.uploads:
                yield MultipartUploadInfo(key=upload.object_name or "", upload_id=upload.upload_id or "",
                                          initiated=upload.initiated_time)
            if not page.is_truncated or not page.uploads:
                return
            key_marker, upload_id_marker = page.next_key_marker, page.next_upload_id_marker

    def _list_uploads_page(self, prefix: str, key_marker: str | None,
                           upload_id_marker: str | None) -> ListMultipartUploadsResult:
        return minio_internals.list_multipart_uploads_page(self._client, self.bucket, prefix, key_marker,
                                                           upload_id_marker)

    async def presign_get(self, key: str, expires: timedelta, *, content_type: str, content_disposition: str) -> str:
        # Signed response overrides: whatever the object's metadata, the URL serves these headers.
        headers: dict[str, str | list[str] | tuple[str]] = {
            "response-content-type": content_type, "response-content-disposition": content_disposition}
        return await self._run(lambda: self._presigner.presigned_get_object(
            self.bucket, key, expires=expires, response_headers=headers))

    async def presign_upload_part(self, key: str, upload_id: str, number: int, expires: timedelta) -> str:
        # uploadId and partNumber are signed: the URL reaches this one part and no other key or upload.
        query: dict[str, str | list[str] | tuple[str]] = {"uploadId": upload_id, "partNumber": str(number)}
        return await self._run(lambda: self._presigner.get_presigned_url(
            "PUT", self.bucket, key, expires=expires, extra_query_params=query))

    async def upload_part_copy(self, key: str, upload_id: str, number: int, source_key: str, source_etag: str,
                               offset: int, length: int) -> PartInfo:
        def copy() -> str:
            try:
                return minio_internals.upload_part_copy(self._client, self.bucket, key, upload_id, number, source_key,
                                                        source_etag, offset, offset + length - 1)
            except S3Error as exc:
                if exc.code in _MISSING_UPLOAD_CODES:
                    raise UploadMissing(key, upload_id) from exc
                if exc.code in _CONDITION_FAILED_CODES:
                    raise WriteConflict(source_key) from exc
                raise

        return PartInfo(number=number, etag=await self._run(copy), size=length)

    async def presign_put_checked(self, key: str, sha256_hex: str, expires: timedelta) -> str:
        return await self._run(_checked_put_url, self._presigner, self.bucket, key, sha256_hex, expires)

    async def refuses_mismatched_checksums(self) -> bool:
        expected, forged = b"the bytes the URL names", b"other bytes, sent instead"
        forged_crc32 = base64.b64encode(zlib.crc32(forged).to_bytes(4, "big")).decode()
        # Forged bytes alone, and with headers that name their own sha256 or ask for another checksum
        # (one the forged bytes match) or a trailing one: each must be refused.
        attempts = [{}, s3_checksum_headers(hashlib.sha256(forged).hexdigest()),
                    {"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-crc32": forged_crc32},
                    {"x-amz-checksum-crc32": forged_crc32}, {"x-amz-trailer": "x-amz-checksum-crc32"}]

        def probe() -> bool:
            key = f"{CHECKSUM_PROBE_PREFIX}{uuid.uuid4().hex}"
            # Signed as clients' URLs are, for the address the service reaches the store at.
            url = _checked_put_url(self._client, self.bucket, key, hashlib.sha256(expected).hexdigest(),
                                  timedelta(minutes=5))
            try:
                for extra in attempts:
                    answer = self._pool.request("PUT", url, body=forged, headers=extra, retries=False)
                    if answer.status < 300 or self._exists(key):
                        return False
                # The same URL takes the right bytes.
                answer = self._pool.request("PUT", url, body=expected, retries=False)
                return answer.status < 300 and self._read(key, 0, None).data == expected
            finally:
                with contextlib.suppress(S3Error, urllib3.exceptions.HTTPError):
                    self._client.remove_object(self.bucket, key)

        try:
            return await self._run(probe)
        except (S3Error, urllib3.exceptions.HTTPError):
            return False

    def _exists(self, key: str) -> bool:
        try:
            self._client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING_OBJECT_CODES:
                return False
            raise
        return True

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._pool.clear()


def _checked_put_url(presigner: Minio, bucket: str, key: str, sha256_hex: str, expires: timedelta) -> str:
    """A presigned PUT of ``key`` whose query carries the checksum parameters of ``sha256_hex``: the
    SDK's presigning signs the whole query, so a request cannot change them, and a store that checks
    them refuses bytes of another sha256 before the object exists."""
    query: dict[str, str | list[str] | tuple[str]] = {**s3_checksum_headers(sha256_hex)}
    return presigner.get_presigned_url("PUT", bucket, key, expires=expires, extra_query_params=query)


def public_endpoint(settings: Settings) -> tuple[str, bool]:
    """``(host:port, https)`` of the store as clients reach it (``s3_public_endpoint``, else ``s3_endpoint``)."""
    value = settings.s3_public_endpoint.strip().rstrip("/")
    if not value:
        return settings.s3_endpoint, settings.s3_secure
    for scheme, secure in (("https://", True), ("http://", False)):
        if value.lower().startswith(scheme):
            return value[len(scheme):], secure
    return value, settings.s3_secure


class _ReadAhead:
    """The body of one GET, read in a thread of its own up to ``READ_AHEAD_CHUNKS`` chunks ahead of
    the consumer: the store keeps sending while the previous chunks go out to the caller, and no
    chunk costs a trip through the thread pool. The thread closes the response when it ends: at the
    end of the range, on an error (handed to the consumer), or soon after ``stop()``."""

    def __init__(self, key: str, response: urllib3.BaseHTTPResponse, length: int, chunk_size: int):
        self._loop = asyncio.get_running_loop()
        self._ready: collections.deque[bytes | BaseException | None] = collections.deque()
        self._room = threading.Semaphore(READ_AHEAD_CHUNKS)
        self._lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None
        self._stopped = False
        threading.Thread(target=self._pump, args=(key, response, length, chunk_size), name="s3-read-ahead",
                         daemon=True).start()

    def _pump(self, key: str, response: urllib3.BaseHTTPResponse, length: int, chunk_size: int) -> None:
        try:
            remaining = length
            while remaining > 0:
                self._room.acquire()
                if self._stopped:
                    return
                chunk = _read_exactly(response, min(chunk_size, remaining))
                if not chunk:
                    raise ConnectionError(f"object {key} ended {remaining} bytes early")
                remaining -= len(chunk)
                self._hand_over(chunk)
            self._hand_over(None)
        except BaseException as exc:  # noqa: BLE001 - raised again where the consumer waits
            self._hand_over(exc)
        finally:
            response.close()
            response.release_conn()

    def _hand_over(self, item: bytes | BaseException | None) -> None:
        with self._lock:
            self._ready.append(item)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)

    async def next(self) -> bytes | None:
        """The next chunk, None at the end of the range; raises what the reading raised."""
        with self._lock:
            waiter = None if self._ready else self._loop.create_future()
            self._waiter = waiter
        if waiter is not None:
            await waiter
        with self._lock:
            item = self._ready.popleft()
        self._room.release()
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        """Lets the thread end after the chunk it may be reading."""
        self._stopped = True
        self._room.release()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _read_exactly(response: urllib3.BaseHTTPResponse, size: int) -> bytes:
    """Reads ``size`` bytes unless the body ends first (urllib3 may return less per read)."""
    pieces: list[bytes] = []
    wanted = size
    while wanted > 0:
        piece = response.read(wanted, decode_content=False)
        if not piece:
            break
        pieces.append(piece)
        wanted -= len(piece)
    return b"".join(pieces) if len(pieces) != 1 else pieces[0]
