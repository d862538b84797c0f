"""View RPCs: ordered iteration, counts, pages (transport only)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from grpc import aio

from framevault.metadata.deps import MetadataDeps
from framevault.v1 import metadata_service_pb2 as pb


class ViewRpcs:
    """IterateFrames, CountViewFrames, ListViewFrames, ListContexts, ListContextFrames."""

    deps: MetadataDeps

    async def IterateFrames(  # noqa: N802 - gRPC method name
        self, request: pb.IterateFramesRequest, context: aio.ServicerContext
    ) -> AsyncIterator[pb.IterateFramesResponse]:
        async for batch in self.deps.views.iterate(request):
            # The batch's frames were built in this response message.
            response = batch.message
            response.selection_indexes.extend(batch.selection_indexes)
            response.cursor = batch.cursor
            response.frame_cursors.extend(batch.frame_cursors)
            if batch.start_cursor:
                response.start_cursor = batch.start_cursor
            yield response

    async def CountViewFrames(  # noqa: N802
        self, request: pb.CountViewFramesRequest, context: aio.ServicerContext
    ) -> pb.CountViewFramesResponse:
        return pb.CountViewFramesResponse(count=await self.deps.views.count(request))

    async def ListViewFrames(  # noqa: N802
        self, request: pb.ListViewFramesRequest, context: aio.ServicerContext
    ) -> pb.ListViewFramesResponse:
        page, next_token = await self.deps.views.list_page(request)
        response = page.message
        response.next_page_token = next_token
        return response

    async def ListContexts(  # noqa: N802
        self, request: pb.ListContextsRequest, context: aio.ServicerContext
    ) -> pb.ListContextsResponse:
        return await self.deps.views.list_contexts(request)

    async def ListContextFrames(  # noqa: N802
        self, request: pb.ListContextFramesRequest, context: aio.ServicerContext
    ) -> pb.ListContextFramesResponse:
        return await self.deps.views.list_context_frames(request)
