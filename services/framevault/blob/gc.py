"""Garbage collection of blobs no frame references.

References come from the metadata service (``ListReferencedBlobs``), behind
the small ``ReferenceSource`` interface. A blob is collected when it is not
referenced AND its object is older than the grace period, so a blob uploaded
just before its frame is registered survives.

Order of work, to keep the window between "looked unreferenced" and
"deleted" short: (1) load every reference; (2) list the CAS keys, counting
and picking old unreferenced candidates; (3) before deleting, load the
references again and drop candidates that became referenced meanwhile;
(4) delete in batches. A dry run stops after (2). Abandoned uploads (state
or multipart upload older than the grace period) are cleaned up too.

The preview records (``previews/`` index of a source, ``preview-sources/``
pairs of a preview and a source, see previews.py) go with the blob they
describe, just before its batch: a record of a preview and a source that
both stay is kept, so a preview made of several sources stays readable by
the readers of those left. Records go first because a collection stopped
halfway leaves the blobs for the next one to find again, while a record left
without its blob would never be looked at again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, cast

import grpc
import structlog
from grpc import aio

from framevault.api.digests import BlobDigest, digest_from_proto
from framevault.api.transport import TokenSource
from framevault.blob.keys import (
    CAS_PREFIX,
    PREVIEW_SOURCES_PREFIX,
    PREVIEWS_PREFIX,
    STAGING_PREFIX,
    UPLOADS_PREFIX,
    cas_key,
    digest_of_cas_key,
    digests_of_preview_source_key,
    source_of_preview_index_key,
    upload_name_of_staging_key,
    upload_name_of_state_key,
)
from framevault.blob.storage import BlobStorage, ObjectMissing
from framevault.blob.uploads import MAX_STATE_BYTES, UploadState
from framevault.common.channels import service_channel
from framevault.common.config import Settings
from framevault.common.errors import FailedPrecondition, FramevaultError, Internal, InvalidArgument, Unavailable
from framevault.v1 import metadata_service_pb2, metadata_service_pb2_grpc

log = structlog.get_logger("framevault.blob.gc")

METADATA_SERVICE = metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name
# Longest grace period a collection accepts: a hundred years keeps everything any store holds, and the
# cutoff it gives stays a valid time.
MAX_GRACE_PERIOD_SECONDS = 100 * 365 * 24 * 3600


class ReferenceSource(Protocol):
    async def referenced(self) -> set[BlobDigest]:
        """Every blob some frame of some version references."""
        ...

    async def close(self) -> None: ...


@dataclass
class GarbageTotals:
    scanned_blobs: int = 0
    referenced_blobs: int = 0
    collected_blobs: int = 0
    collected_bytes: int = 0
    dry_run: bool = False


@dataclass
class GarbageBatch:
    digests: list[BlobDigest] = field(default_factory=list)
    # Set on the last batch only.
    totals: GarbageTotals | None = None


class GarbageCollector:
    def __init__(self, storage: BlobStorage, references: ReferenceSource, settings: Settings):
        self._storage = storage
        self._references = references
        self._settings = settings
        # One collection at a time: two would double the load for the same result.
        self._running = asyncio.Lock()

    async def collect(self, *, dry_run: bool, grace_period_seconds: int) -> AsyncIterator[GarbageBatch]:
        if not 0 <= grace_period_seconds <= MAX_GRACE_PERIOD_SECONDS:
            raise InvalidArgument.field(
                "grace_period_seconds",
                f"must be 0..{MAX_GRACE_PERIOD_SECONDS} (100 years; 0 means the default of one day)")
        grace = timedelta(seconds=min(grace_period_seconds or self._settings.blob_gc_default_grace_seconds,
                                      MAX_GRACE_PERIOD_SECONDS))
        async with self._running:
            cutoff = datetime.now(UTC) - grace
            totals = GarbageTotals(dry_run=dry_run)
            referenced = await self._references.referenced()
            candidates: list[tuple[BlobDigest, int]] = []
            async for info in self._storage.list_objects(CAS_PREFIX):
                digest = digest_of_cas_key(info.key)
                if digest is None or digest.is_empty:
                    continue
                totals.scanned_blobs += 1
                if digest in referenced:
                    totals.referenced_blobs += 1
                elif info.last_modified is not None and info.last_modified < cutoff:
                    candidates.append((digest, info.size))
            del referenced
            records: dict[BlobDigest, list[str]] = {}
            if candidates and not dry_run:
                again = await self._references.referenced()
                candidates = [(d, size) for d, size in candidates if d not in again]
                records = await self._preview_records({d for d, _ in candidates})
            batch_blobs = self._settings.blob_gc_batch_blobs
            for start in range(0, len(candidates), batch_blobs):
                batch = candidates[start:start + batch_blobs]
                if not dry_run:
                    await self._storage.delete_many([key for d, _ in batch for key in records.pop(d, ())])
                    await self._storage.delete_many([cas_key(d) for d, _ in batch])
                totals.collected_blobs += len(batch)
                totals.collected_bytes += sum(size for _, size in batch)
                yield GarbageBatch(digests=[d for d, _ in batch])
            if not dry_run:
                await self._clean_abandoned_uploads(cutoff)
            log.info("garbage_collected", **totals.__dict__)
            yield GarbageBatch(totals=totals)

    async def _preview_records(self, collected: set[BlobDigest]) -> dict[BlobDigest, list[str]]:
        """The keys of the preview records that describe a blob of ``collected``, by that blob:
        a source's preview index, and each preview-source pair with the preview or the source
        collected (under the first of the two that is)."""
        records: dict[BlobDigest, list[str]] = {}
        async for info in self._storage.list_objects(PREVIEW_SOURCES_PREFIX):
            pair = digests_of_preview_source_key(info.key)
            described = next((d for d in pair or () if d in collected), None)
            if described is not None:
                records.setdefault(described, []).append(info.key)
        async for info in self._storage.list_objects(PREVIEWS_PREFIX):
            source = source_of_preview_index_key(info.key)
            if source in collected:
                records.setdefault(source, []).append(info.key)
        return records

    async def _clean_abandoned_uploads(self, cutoff: datetime) -> None:
        """Aborts uploads untouched for the grace period: their parts are invisible but cost space."""
        live_multipart_ids: set[str] = set()
        stale: list[str] = []
        async for info in self._storage.list_objects(UPLOADS_PREFIX):
            name = upload_name_of_state_key(info.key)
            if name is None:
                continue
            if info.last_modified is not None and info.last_modified >= cutoff:
                try:
                    stored = await self._storage.get_tagged(info.key, MAX_STATE_BYTES)
                    state = UploadState.from_json(name, stored.data)
                except ObjectMissing:
                    continue
                if state is not None:
                    live_multipart_ids.add(state.multipart_id)
            else:
                stale.append(info.key)
        aborted = 0
        async for upload in self._storage.list_multipart_uploads(CAS_PREFIX):
            if upload.upload_id in live_multipart_ids:
                continue
            if upload.initiated is not None and upload.initiated >= cutoff:
                continue
            await self._storage.abort_multipart(upload.key, upload.upload_id)
            aborted += 1
        await self._storage.delete_many(stale)
        if stale or aborted:
            log.info("abandoned_uploads_cleaned", states=len(stale), multipart_uploads=aborted)
        await self._clean_abandoned_direct_uploads(cutoff)

    async def _clean_abandoned_direct_uploads(self, cutoff: datetime) -> None:
        """Drops direct uploads started before the cutoff: their state, staged bytes and multipart
        upload. Their state is written once at the start, so the age counts from there."""
        stale = [info.key async for info in self._storage.list_objects(STAGING_PREFIX)
                 if upload_name_of_staging_key(info.key) is not None
                 and info.last_modified is not None and info.last_modified < cutoff]
        aborted = 0
        async for upload in self._storage.list_multipart_uploads(STAGING_PREFIX):
            if upload.initiated is not None and upload.initiated < cutoff:
                await self._storage.abort_multipart(upload.key, upload.upload_id)
                aborted += 1
        await self._storage.delete_many(stale)
        if stale or aborted:
            log.info("abandoned_direct_uploads_cleaned", objects=len(stale), multipart_uploads=aborted)


class MetadataReferences:
    """``ReferenceSource`` over the metadata service's ListReferencedBlobs stream."""

    def __init__(self, target: str, settings: Settings, token: TokenSource | None = None):
        self._timeout = settings.service_call_timeout_seconds
        self._batch_size = settings.blob_gc_reference_batch
        # token: the blob service's own identity (security on).
        self._channel = service_channel(target, settings, [METADATA_SERVICE], token=token)
        self._stub = cast("metadata_service_pb2_grpc.MetadataServiceAsyncStub",
                          metadata_service_pb2_grpc.MetadataServiceStub(self._channel))

    async def referenced(self) -> set[BlobDigest]:
        call = self._stub.ListReferencedBlobs(metadata_service_pb2.ListReferencedBlobsRequest(
            batch_size=self._batch_size))
        found: set[BlobDigest] = set()
        try:
            while True:
                # A deadline on progress rather than on the whole stream, which grows with the data.
                message = await asyncio.wait_for(call.read(), timeout=self._timeout)
                if message is aio.EOF:
                    return found
                found.update(digest_from_proto(d) for d in message.digests)
        except TimeoutError:
            call.cancel()
            raise Unavailable("the metadata service stopped sending references; retry") from None
        except aio.AioRpcError as exc:
            raise _reference_error(exc) from exc

    async def close(self) -> None:
        await self._channel.close()


def _reference_error(exc: aio.AioRpcError) -> FramevaultError:
    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                      grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED):
        return Unavailable(f"metadata service unavailable for references ({exc.code().name}); retry")
    if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
        return FailedPrecondition("the metadata service cannot list referenced blobs; nothing collected")
    return Internal(f"metadata service failed to list references ({exc.code().name}): {exc.details()}")
