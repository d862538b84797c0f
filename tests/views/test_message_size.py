"""Streamed messages and pages of large frames stay under the 4 MiB receive
limit that gRPC clients have by default."""

from __future__ import annotations

import pytest
from support import channel_to

from framevault.common.server import RunningService
from framevault.v1 import frame_pb2, metadata_service_pb2_grpc, view_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .client import iterate, view_of
from .corpus import Corpus, make_frame, ref

DEFAULT_CLIENT_LIMIT = 4 * 1024 * 1024
FRAMES = 40


def _large_frame(i: int) -> frame_pb2.Frame:
    # 100 sources with 4 KB URIs: about 400 KB per frame.
    sources = [frame_pb2.Source(id=f"s{j}", uri=f"s3://bucket/{i}/{j}/" + "u" * 4000, content_type="image/jpeg")
               for j in range(100)]
    return make_frame(f"big{i:02d}", context="c", timestamp=i, sources=sources)


@pytest.fixture(scope="module")
async def large(corpus: Corpus) -> view_pb2.View:
    version = await corpus.version(await corpus.dataset())
    await corpus.put_many(version, [_large_frame(i) for i in range(FRAMES)])
    return view_of(view_pb2.ViewSelection(version=ref(version)))


async def test_messages_fit_a_client_with_default_limits(large: view_pb2.View, metadata_service: RunningService
                                                          ) -> None:
    # No channel options: the receive limit is gRPC's default.
    async with channel_to(metadata_service.port, options=[]) as channel:
        stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        stream = await iterate(stub, large, per_message=1000)
        assert len(stream.ids) == FRAMES and len(stream.cursors) > 1
        assert all(frame.ByteSize() > 300_000 for frame in stream.frames)

        listed: list[str] = []
        token = ""
        while True:
            page = await stub.ListViewFrames(ms.ListViewFramesRequest(view=large, page_size=1000, page_token=token))
            assert page.ByteSize() < DEFAULT_CLIENT_LIMIT
            listed += [f.id for f in page.frames]
            token = page.next_page_token
            if not token:
                break
        assert listed == stream.ids
