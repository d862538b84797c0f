"""Frame operations of a version: count, read, iterate, add, update and delete frames."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterable, AsyncIterator, Iterable

import grpc

from framevault.api.limits import MAX_DELETE_IDS
from framevault.sdk.blobs import BlobTransfer
from framevault.sdk.errors import FramevaultError
from framevault.sdk.frame_codec import frame_from_proto
from framevault.sdk.frames import Frame, FrameGroup, FrameLike, SingleFrame
from framevault.sdk.runtime import SyncIterator, current_client, sync_twin
from framevault.sdk.upload import FailedFrame, FramePreparer, UploadTotals, upload_frames
from framevault.sdk.version_state import VersionState, list_page_items
from framevault.v1 import frame_pb2, metadata_service_pb2

UPDATE_CONCURRENCY = 8


def _frame_id(frame: FrameLike | str) -> str:
    if isinstance(frame, str):
        return frame
    if isinstance(frame, frame_pb2.Frame):
        return frame.id
    return frame.id or ""


class VersionFrameOperations(VersionState):
    """The frames of a version (part of :class:`~framevault.sdk.DatasetVersion`)."""

    async def aget_count(self) -> int:
        """Number of frames in the version now."""
        client = current_client()
        response = await client.unary(
            client.metadata.CountFrames, metadata_service_pb2.CountFramesRequest(version=self.ref()), idempotent=True,
        )
        return int(response.count)

    get_count = sync_twin(aget_count)

    async def aget_single_frame(self, frame_id: str) -> Frame:
        """One frame by id: a :class:`SingleFrame`, or a :class:`FrameGroup` for several sources.

        Raises:
            NotFoundError: no frame of that id in the version.
        """
        client = current_client()
        proto = await client.unary(
            client.metadata.GetFrame,
            metadata_service_pb2.GetFrameRequest(version=self.ref(), frame_id=frame_id),
            idempotent=True,
        )
        return frame_from_proto(proto)

    get_single_frame = sync_twin(aget_single_frame)

    async def aiterate_frames(self, page_size: int = 500) -> AsyncIterator[Frame]:
        """Every frame of the version in sequential order (paged; use a DataView to filter or shuffle)."""
        async for page in self._aframe_pages(page_size):
            for frame in page:
                yield frame

    def iterate_frames(self, page_size: int = 500) -> SyncIterator[Frame]:
        """Synchronous form of :meth:`aiterate_frames` (a page crosses to the caller's thread at a time)."""
        return SyncIterator(self._aframe_pages(page_size), batched=True)

    async def _aframe_pages(self, page_size: int) -> AsyncIterator[list[Frame]]:
        client = current_client()
        request = metadata_service_pb2.ListFramesRequest(version=self.ref(), page_size=page_size)
        async for page in list_page_items(client.metadata.ListFrames, request, "frames"):
            yield [frame_from_proto(proto) for proto in page]

    async def aadd_frames(
        self,
        frames: Iterable[FrameLike] | AsyncIterable[FrameLike],
        upload_retries: int = 3,
        *,
        auto_upload: bool = True,
        progress: bool | None = None,
    ) -> list[FailedFrame]:
        """Adds (or updates, by frame id) frames in this draft through the upload stream.

        ``frames`` may be any iterable or async iterable (a generator is read
        as it goes, never whole). Local files among sources, previews and
        masks are uploaded to the blob service first (only what it lacks) and
        referenced as ``blob:`` URIs; with ``auto_upload=False`` they are sent
        as ``file://`` URIs instead.

        Args:
            upload_retries: attempts after the first for a frame failing
                transiently on the service side (0..10).
            progress: show progress bars (default: when stderr is a terminal).

        Returns:
            The frames that were not registered, each with its error.

        Raises:
            FramevaultError: the upload as a whole failed (e.g. the version is
                published: FAILED_PRECONDITION).
        """
        totals = await self.aadd_frames_with_totals(frames, upload_retries, auto_upload=auto_upload,
                                                    progress=progress)
        return totals.failed

    add_frames = sync_twin(aadd_frames)

    async def aadd_frames_with_totals(
        self,
        frames: Iterable[FrameLike] | AsyncIterable[FrameLike],
        upload_retries: int = 3,
        *,
        auto_upload: bool = True,
        progress: bool | None = None,
    ) -> UploadTotals:
        """Like :meth:`add_frames`, returning created/updated counts too."""
        return await upload_frames(current_client(), self.ref(), frames, upload_retries=upload_retries,
                                   auto_upload=auto_upload, progress=progress)

    add_frames_with_totals = sync_twin(aadd_frames_with_totals)

    async def aupdate_frames(
        self, frames: Iterable[SingleFrame | FrameGroup | frame_pb2.Frame], *, auto_upload: bool = True,
    ) -> list[FailedFrame]:
        """Replaces existing frames (matched by id) of this draft; local files are uploaded first.

        Unlike :meth:`add_frames`, a frame that does not exist fails (NOT_FOUND).

        Returns:
            The frames that were not updated, each with its error.
        """
        client = current_client()
        failed: list[FailedFrame] = []
        preparer = FramePreparer(BlobTransfer(client, progress=False) if auto_upload else None, failed)
        limit = asyncio.Semaphore(UPDATE_CONCURRENCY)

        async def update_one(original: FrameLike, proto: frame_pb2.Frame) -> None:
            if not proto.id:
                failed.append(FailedFrame(original, FramevaultError.client_side(
                    grpc.StatusCode.INVALID_ARGUMENT, "updating a frame needs its id", field="id")))
                return
            async with limit:
                try:
                    await client.unary(
                        client.metadata.UpdateFrame,
                        metadata_service_pb2.UpdateFrameRequest(version=self.ref(), frame=proto),
                        # A whole-frame replacement without etag ends in the same state when repeated.
                        idempotent=True,
                    )
                except FramevaultError as error:
                    failed.append(FailedFrame(original, error, proto.id))

        iterator = iter(frames)
        while batch := list(itertools.islice(iterator, client.settings.upload_prepare_batch_frames)):
            prepared = await preparer.prepare(batch)
            await asyncio.gather(*(update_one(p.original, p.proto) for p in prepared))
        return failed

    update_frames = sync_twin(aupdate_frames)

    async def adelete_frames(self, frames: Iterable[FrameLike | str]) -> int:
        """Deletes frames (objects or ids) from this draft; returns how many were deleted.

        Ids that do not exist are skipped.

        Raises:
            FailedPreconditionError: the version is published.
        """
        client = current_client()
        ids = [i for i in (_frame_id(f) for f in frames) if i]
        deleted = 0
        for start in range(0, len(ids), MAX_DELETE_IDS):
            response = await client.unary(
                client.metadata.DeleteFrames,
                metadata_service_pb2.DeleteFramesRequest(version=self.ref(), frame_ids=ids[start:start + MAX_DELETE_IDS]),
                # Deleting twice leaves the same state; the second answer says NOT_FOUND per id.
                idempotent=True,
            )
            deleted += int(response.deleted_count)
        return deleted

    delete_frames = sync_twin(adelete_frames)
