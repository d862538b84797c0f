"""Dataset and version RPCs (transport only: proto in, domain call, proto out)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from grpc import aio

from framevault.metadata.catalog.diff import FrameDifference
from framevault.metadata.catalog.documents import dataset_to_proto, version_to_proto
from framevault.metadata.catalog.statistics import statistics_to_proto
from framevault.metadata.deps import MetadataDeps
from framevault.metadata.frame_documents import document_to_frame
from framevault.v1 import dataset_pb2
from framevault.v1 import metadata_service_pb2 as ms


def _change_to_proto(change: FrameDifference, base_id: str, target_id: str) -> ms.FrameChange:
    out = ms.FrameChange(frame_id=change.frame_id, kind=change.kind)  # type: ignore[arg-type]
    if change.base is not None and "sources" in change.base:
        out.base.CopyFrom(document_to_frame(change.base, version_id=base_id))
    if change.target is not None and "sources" in change.target:
        out.target.CopyFrom(document_to_frame(change.target, version_id=target_id))
    return out


class CatalogRpcs:
    """CreateDataset ... GetVersionStatistics; see catalog/ for the domain."""

    deps: MetadataDeps

    async def CreateDataset(self, request: ms.CreateDatasetRequest, context: aio.ServicerContext) -> dataset_pb2.Dataset:
        return dataset_to_proto(await self.deps.catalog.datasets.create(request))

    async def GetDataset(self, request: ms.GetDatasetRequest, context: aio.ServicerContext) -> dataset_pb2.Dataset:
        return dataset_to_proto(await self.deps.catalog.datasets.get(request.dataset))

    async def ListDatasets(
        self, request: ms.ListDatasetsRequest, context: aio.ServicerContext
    ) -> ms.ListDatasetsResponse:
        page = await self.deps.catalog.datasets.list(request)
        return ms.ListDatasetsResponse(
            datasets=page.datasets, next_page_token=page.next_page_token
        )

    async def UpdateDataset(self, request: ms.UpdateDatasetRequest, context: aio.ServicerContext) -> dataset_pb2.Dataset:
        return dataset_to_proto(await self.deps.catalog.datasets.update(request))

    async def DeleteDataset(
        self, request: ms.DeleteDatasetRequest, context: aio.ServicerContext
    ) -> ms.DeleteDatasetResponse:
        deleted = await self.deps.catalog.datasets.delete(request)
        return ms.DeleteDatasetResponse(deleted_versions=deleted.versions, deleted_frames=deleted.frames)

    async def CreateVersion(self, request: ms.CreateVersionRequest, context: aio.ServicerContext) -> dataset_pb2.Version:
        return version_to_proto(await self.deps.catalog.versions.create(request))

    async def GetVersion(self, request: ms.GetVersionRequest, context: aio.ServicerContext) -> dataset_pb2.Version:
        return version_to_proto(await self.deps.catalog.versions.get(request.version))

    async def ListVersions(
        self, request: ms.ListVersionsRequest, context: aio.ServicerContext
    ) -> ms.ListVersionsResponse:
        page = await self.deps.catalog.versions.list(request)
        return ms.ListVersionsResponse(
            versions=page.versions, next_page_token=page.next_page_token
        )

    async def UpdateVersion(self, request: ms.UpdateVersionRequest, context: aio.ServicerContext) -> dataset_pb2.Version:
        return version_to_proto(await self.deps.catalog.versions.update(request))

    async def PublishVersion(
        self, request: ms.PublishVersionRequest, context: aio.ServicerContext
    ) -> dataset_pb2.Version:
        return version_to_proto(await self.deps.catalog.versions.publish(request))

    async def SnapshotVersion(
        self, request: ms.SnapshotVersionRequest, context: aio.ServicerContext
    ) -> ms.SnapshotVersionResponse:
        snapshot, draft = await self.deps.catalog.versions.snapshot(request)
        return ms.SnapshotVersionResponse(snapshot=version_to_proto(snapshot), draft=version_to_proto(draft))

    async def DeleteVersion(
        self, request: ms.DeleteVersionRequest, context: aio.ServicerContext
    ) -> ms.DeleteVersionResponse:
        return ms.DeleteVersionResponse(deleted_frames=await self.deps.catalog.versions.delete(request))

    async def DiffVersions(
        self, request: ms.DiffVersionsRequest, context: aio.ServicerContext
    ) -> AsyncIterator[ms.DiffVersionsResponse]:
        diff = await self.deps.catalog.differ.open(request)
        settings = self.deps.settings
        message = ms.DiffVersionsResponse()
        size = sent = 0
        # A message goes out once the change after it is known, so only the last one of the diff has no cursor.
        async with aclosing(diff.changes()) as changes:
            async for change in changes:
                page_done = sent == diff.max_changes
                if message.changes and (page_done or len(message.changes) >= settings.catalog_diff_message_changes
                                        or size >= settings.catalog_diff_message_bytes):
                    message.cursor = diff.cursor_after(message.changes[-1].frame_id)
                    yield message
                    if page_done:
                        return
                    message, size = ms.DiffVersionsResponse(), 0
                proto = _change_to_proto(change, diff.base_id, diff.target_id)
                message.changes.append(proto)
                size += proto.ByteSize()
                sent += 1
        if message.changes:
            yield message

    async def MergeVersions(
        self, request: ms.MergeVersionsRequest, context: aio.ServicerContext
    ) -> ms.MergeVersionsResponse:
        outcome = await self.deps.catalog.merger.merge(request)
        return ms.MergeVersionsResponse(
            version=version_to_proto(outcome.version) if outcome.version else None,
            conflicts=[ms.MergeConflict(frame_id=c.frame_id, ours=c.ours, theirs=c.theirs)  # type: ignore[arg-type]
                       for c in outcome.conflicts],
            conflict_count=outcome.conflict_count,
            applied_changes=outcome.applied_changes,
            merge_base_id=outcome.merge_base_id,
        )

    async def GetVersionStatistics(
        self, request: ms.GetVersionStatisticsRequest, context: aio.ServicerContext
    ) -> dataset_pb2.VersionStatistics:
        return statistics_to_proto(await self.deps.catalog.statistics.compute(request))
