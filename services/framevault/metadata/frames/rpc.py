"""Frame RPCs: unary CRUD and the upload stream (transport only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc import aio

from framevault.common.request_decoding import accepts_undecodable
from framevault.metadata.deps import MetadataDeps
from framevault.metadata.frames import operations
from framevault.metadata.frames.upload import ReceivedUploadRequest, upload_frames
from framevault.v1 import frame_pb2
from framevault.v1 import metadata_service_pb2 as pb


class FrameRpcs:
    """GetFrame ... ListFrames, UploadFrames, ListReferencedBlobs."""

    deps: MetadataDeps

    async def GetFrame(self, request: pb.GetFrameRequest, context: aio.ServicerContext) -> Any:
        # A Frame as the codec encodes it (bytes, sent as they are): no message object.
        return await operations.get_frame(self.deps.frames, request.version, request.frame_id)

    async def UpdateFrame(self, request: pb.UpdateFrameRequest, context: aio.ServicerContext) -> frame_pb2.Frame:
        return await operations.update_frame(self.deps.frames, self.deps.blobs, self.deps.settings, request)

    async def DeleteFrames(self, request: pb.DeleteFramesRequest, context: aio.ServicerContext
                           ) -> pb.DeleteFramesResponse:
        return await operations.delete_frames(self.deps.frames, self.deps.settings, request)

    async def CountFrames(self, request: pb.CountFramesRequest, context: aio.ServicerContext
                          ) -> pb.CountFramesResponse:
        return pb.CountFramesResponse(count=await operations.count_frames(self.deps.frames, request.version))

    async def ListFrames(self, request: pb.ListFramesRequest, context: aio.ServicerContext) -> pb.ListFramesResponse:
        return await operations.list_frames(self.deps.frames, self.deps.settings, request)

    @accepts_undecodable
    async def UploadFrames(self, request_iterator: AsyncIterator[ReceivedUploadRequest],
                           context: aio.ServicerContext) -> AsyncIterator[pb.UploadFramesResponse | bytes]:
        async for response in upload_frames(self.deps.frames, self.deps.blobs, self.deps.settings, request_iterator):
            yield response

    async def ListReferencedBlobs(self, request: pb.ListReferencedBlobsRequest, context: aio.ServicerContext
                                  ) -> AsyncIterator[pb.ListReferencedBlobsResponse]:
        async for response in operations.referenced_blobs(self.deps.frames, request.batch_size):
            yield response


def upload_frames_handler(rpcs: FrameRpcs) -> grpc.RpcMethodHandler:
    """UploadFrames taking its requests as their bytes, which the frame codec
    takes apart (``ReceivedUploadRequest``): registered over the generated
    handler, whose deserializer makes every frame a Python message."""
    return grpc.stream_stream_rpc_method_handler(
        rpcs.UploadFrames,
        request_deserializer=ReceivedUploadRequest.deserializer(rpcs.deps.settings),
        response_serializer=pb.UploadFramesResponse.SerializeToString,
    )
