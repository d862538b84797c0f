"""View RPCs: ordered iteration, counts, pages (transport only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import framevault_codec
from grpc import aio

from framevault.metadata.deps import MetadataDeps
from framevault.v1 import metadata_service_pb2 as pb


class ViewRpcs:
    """IterateFrames, CountViewFrames, ListViewFrames, ListContexts, ListContextFrames."""

    deps: MetadataDeps

    async def IterateFrames(  # noqa: N802 - gRPC method name
        self, request: pb.IterateFramesRequest, context: aio.ServicerContext
    ) -> AsyncIterator[Any]:
        # Each message is an IterateFramesResponse as the codec encodes it around the batch's
        # encoded frames (bytes, sent as they are): no message object per frame.
        async for batch in self.deps.views.iterate(request):
            yield framevault_codec.iterate_frames_response(batch.frames, batch.selection_indexes, batch.cursor,
                                                           batch.frame_cursors, batch.start_cursor)

    async def CountViewFrames(  # noqa: N802
        self, request: pb.CountViewFramesRequest, context: aio.ServicerContext
    ) -> pb.CountViewFramesResponse:
        return pb.CountViewFramesResponse(count=await self.deps.views.count(request))

    async def ListViewFrames(  # noqa: N802
        self, request: pb.ListViewFramesRequest, context: aio.ServicerContext
    ) -> pb.ListViewFramesResponse:
        page, next_token = await self.deps.views.list_page(request)
        response = pb.ListViewFramesResponse(next_page_token=next_token)
        for frame in page.frames:
            response.frames.add().MergeFromString(frame)
        return response

    async def ListContexts(  # noqa: N802
        self, request: pb.ListContextsRequest, context: aio.ServicerContext
    ) -> pb.ListContextsResponse:
        return await self.deps.views.list_contexts(request)

    async def ListContextFrames(  # noqa: N802
        self, request: pb.ListContextFramesRequest, context: aio.ServicerContext
    ) -> pb.ListContextFramesResponse:
        return await self.deps.views.list_context_frames(request)
