"""BlobService transport: proto in, domain call, proto out. No logic lives here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import timestamp_pb2
from google.rpc import status_pb2
from grpc import aio

from framevault.api.digests import digest_to_proto
from framevault.blob import wire
from framevault.blob.direct import DirectUploads
from framevault.blob.gc import GarbageCollector
from framevault.blob.previews import PreviewMaker
from framevault.blob.store import BlobOutcome, BlobStore
from framevault.blob.uploads import BlobWriter, WriteChunk
from framevault.common.config import Settings
from framevault.common.errors import ok_status
from framevault.common.streams import drain_briefly
from framevault.v1 import blob_pb2, blob_pb2_grpc


@dataclass
class BlobDeps:
    settings: Settings
    blobs: BlobStore
    writer: BlobWriter
    previews: PreviewMaker
    garbage: GarbageCollector
    direct: DirectUploads


def _raw(digest: blob_pb2.Digest) -> tuple[str, int]:
    return digest.hash, digest.size_bytes


def _status(outcome: BlobOutcome) -> status_pb2.Status:
    return outcome.error.to_status() if outcome.error is not None else ok_status()


def _format_name(value: int) -> str:
    if value == blob_pb2.PREVIEW_FORMAT_UNSPECIFIED:
        return "jpeg"
    try:
        return blob_pb2.PreviewFormat.Name(value).removeprefix("PREVIEW_FORMAT_").lower()
    except ValueError:
        return f"unknown({value})"


class BlobServicer(blob_pb2_grpc.BlobServiceServicer):
    def __init__(self, deps: BlobDeps):
        self.deps = deps

    async def GetCapabilities(self, request: blob_pb2.GetCapabilitiesRequest,
                              context: aio.ServicerContext) -> blob_pb2.GetCapabilitiesResponse:
        caps = self.deps.blobs.capabilities()
        return blob_pb2.GetCapabilitiesResponse(
            digest_function="sha256",
            max_batch_total_size_bytes=caps.max_batch_total_size_bytes,
            max_batch_blobs=caps.max_batch_blobs,
            preferred_chunk_size_bytes=caps.preferred_chunk_size_bytes,
            max_chunk_size_bytes=caps.max_chunk_size_bytes,
            max_blob_size_bytes=caps.max_blob_size_bytes,
            max_preview_edge=caps.max_preview_edge,
            max_download_url_seconds=caps.max_download_url_seconds,
            resumable_part_size_bytes=caps.resumable_part_size_bytes,
            direct_transfers=caps.direct_transfers,
            direct_transfer_min_size_bytes=caps.direct_transfer_min_size_bytes,
        )

    async def FindMissingBlobs(self, request: blob_pb2.FindMissingBlobsRequest,
                               context: aio.ServicerContext) -> blob_pb2.FindMissingBlobsResponse:
        missing = await self.deps.blobs.find_missing([_raw(d) for d in request.digests])
        return blob_pb2.FindMissingBlobsResponse(missing_digests=[digest_to_proto(d) for d in missing])

    async def BatchUpdateBlobs(self, request: blob_pb2.BatchUpdateBlobsRequest,
                               context: aio.ServicerContext) -> blob_pb2.BatchUpdateBlobsResponse:
        outcomes = await self.deps.blobs.batch_update([(_raw(r.digest), r.data) for r in request.requests])
        return blob_pb2.BatchUpdateBlobsResponse(responses=[
            blob_pb2.BatchUpdateBlobsResponse.Response(digest=r.digest, status=_status(o))
            for r, o in zip(request.requests, outcomes, strict=True)
        ])

    async def BatchReadBlobs(self, request: blob_pb2.BatchReadBlobsRequest,
                             context: aio.ServicerContext) -> blob_pb2.BatchReadBlobsResponse:
        outcomes = await self.deps.blobs.batch_read([_raw(d) for d in request.digests])
        return blob_pb2.BatchReadBlobsResponse(responses=[
            blob_pb2.BatchReadBlobsResponse.Response(digest=d, data=o.data, status=_status(o))
            for d, o in zip(request.digests, outcomes, strict=True)
        ])

    async def WriteBlob(self, request_iterator: AsyncIterator[blob_pb2.WriteBlobRequest],
                        context: aio.ServicerContext) -> blob_pb2.WriteBlobResponse:
        async def chunks() -> AsyncIterator[WriteChunk]:
            async for message in request_iterator:
                yield WriteChunk(message.resource_name, message.write_offset, message.data, message.finish_write)

        # A failed write's stream is drained by the error mapping (every request stream is); a blob that
        # already exists is answered at once, so the rest of its stream is drained here.
        result = await self.deps.writer.write(chunks())
        if result.already_existed:
            await drain_briefly(request_iterator, self.deps.settings)
        return blob_pb2.WriteBlobResponse(committed_size=result.committed_size,
                                          already_existed=result.already_existed)

    async def QueryWriteStatus(self, request: blob_pb2.QueryWriteStatusRequest,
                               context: aio.ServicerContext) -> blob_pb2.QueryWriteStatusResponse:
        status = await self.deps.writer.query(request.resource_name)
        return blob_pb2.QueryWriteStatusResponse(committed_size=status.committed_size, complete=status.complete)

    async def ReadBlob(self, request: blob_pb2.ReadBlobRequest,
                       context: aio.ServicerContext) -> AsyncIterator[Any]:
        # Each message is a ReadBlobResponse encoded by wire.py: building one around each chunk costs
        # more than reading the chunk.
        async for offset, data in self.deps.blobs.read(_raw(request.digest), request.offset, request.limit):
            yield wire.read_response(offset, data)

    async def GetDownloadUrl(self, request: blob_pb2.GetDownloadUrlRequest,
                             context: aio.ServicerContext) -> blob_pb2.GetDownloadUrlResponse:
        issued = await self.deps.blobs.download_url(_raw(request.digest), request.expires_in_seconds,
                                                    request.content_type)
        expire_time = timestamp_pb2.Timestamp()
        expire_time.FromDatetime(issued.expire_time)
        return blob_pb2.GetDownloadUrlResponse(url=issued.url, expire_time=expire_time)

    async def CreatePreview(self, request: blob_pb2.CreatePreviewRequest,
                            context: aio.ServicerContext) -> blob_pb2.CreatePreviewResponse:
        preview = await self.deps.previews.create(_raw(request.digest), request.max_edge,
                                                  _format_name(request.format))
        return blob_pb2.CreatePreviewResponse(
            digest=digest_to_proto(preview.digest), content_type=preview.content_type, width=preview.width,
            height=preview.height, source_width=preview.source_width, source_height=preview.source_height)

    async def DeleteBlobs(self, request: blob_pb2.DeleteBlobsRequest,
                          context: aio.ServicerContext) -> blob_pb2.DeleteBlobsResponse:
        outcomes = await self.deps.blobs.delete([_raw(d) for d in request.digests])
        return blob_pb2.DeleteBlobsResponse(responses=[
            blob_pb2.DeleteBlobsResponse.Response(digest=d, status=_status(o))
            for d, o in zip(request.digests, outcomes, strict=True)
        ])

    async def CollectGarbage(self, request: blob_pb2.CollectGarbageRequest,
                             context: aio.ServicerContext) -> AsyncIterator[blob_pb2.CollectGarbageResponse]:
        async for batch in self.deps.garbage.collect(dry_run=request.dry_run,
                                                     grace_period_seconds=request.grace_period_seconds):
            response = blob_pb2.CollectGarbageResponse(digests=[digest_to_proto(d) for d in batch.digests])
            if batch.totals is not None:
                t = batch.totals
                response.totals.CopyFrom(blob_pb2.GarbageTotals(
                    scanned_blobs=t.scanned_blobs, referenced_blobs=t.referenced_blobs,
                    collected_blobs=t.collected_blobs, collected_bytes=t.collected_bytes, dry_run=t.dry_run))
            yield response

    async def StartDirectUpload(self, request: blob_pb2.StartDirectUploadRequest,
                                context: aio.ServicerContext) -> blob_pb2.StartDirectUploadResponse:
        plan = await self.deps.direct.start(request.resource_name, list(request.part_numbers),
                                            request.expires_in_seconds)
        response = blob_pb2.StartDirectUploadResponse(
            already_existed=plan.already_existed, part_size_bytes=plan.part_size, part_count=plan.part_count,
            uploaded_part_numbers=plan.uploaded,
            parts=[blob_pb2.DirectUploadPart(part_number=p.number, offset=p.offset, size_bytes=p.size, url=p.url)
                   for p in plan.parts])
        if plan.expire_time is not None:
            response.expire_time.FromDatetime(plan.expire_time)
        return response

    async def CompleteDirectUpload(self, request: blob_pb2.CompleteDirectUploadRequest,
                                   context: aio.ServicerContext) -> blob_pb2.CompleteDirectUploadResponse:
        result = await self.deps.direct.complete(request.resource_name)
        return blob_pb2.CompleteDirectUploadResponse(committed_size=result.committed_size,
                                                     already_existed=result.already_existed)
