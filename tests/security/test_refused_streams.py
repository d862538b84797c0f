"""A request stream answered early ends with its real status for a client that
is still writing: a refused UploadFrames is UNAUTHENTICATED or
PERMISSION_DENIED, a failed one its own error, never INTERNAL.

grpcio clients still writing when the server ends a call report INTERNAL
("Internal error from Core", grpc/grpc#36066) unless the server reads what they
send; the error mapping does so for every request stream. (WriteBlob's eager
refusals: test_blob_access; the response streams' refusals: test_matrix.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from framevault.v1 import dataset_pb2, frame_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .conftest import World
from .helpers import unique

# Messages an eager client writes after the first, without waiting for an answer.
EAGER_MESSAGES = 400


def _eager_upload(version: dataset_pb2.VersionRef) -> Iterator[ms.UploadFramesRequest]:
    yield ms.UploadFramesRequest(options=ms.UploadOptions(version=version))
    prefix = unique("eager")
    for m in range(EAGER_MESSAGES):
        yield ms.UploadFramesRequest(items=[ms.UploadItem(frame=frame_pb2.Frame(
            id=f"{prefix}-{m}-{i}", sources=[frame_pb2.Source(uri=f"https://images.invalid/{m}/{i}.jpg")]))
            for i in range(100)])


async def _final_code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        async for _ in call:
            pass
    return ended.value.code()


@pytest.mark.parametrize(("kind", "expected"), [
    ("anonymous", grpc.StatusCode.UNAUTHENTICATED),
    ("invalid token", grpc.StatusCode.UNAUTHENTICATED),
    ("viewer", grpc.StatusCode.PERMISSION_DENIED),
    ("owner of another dataset", grpc.StatusCode.PERMISSION_DENIED),
])
async def test_a_refused_upload_stream_ends_with_the_refusal(metadata: Any, world: World, kind: str,
                                                             expected: grpc.StatusCode) -> None:
    call = metadata.UploadFrames(_eager_upload(dataset_pb2.VersionRef(id=world.draft.id)),
                                 metadata=world.callers[kind])
    assert await _final_code(call) == expected


async def test_an_upload_stream_failed_by_its_handler_ends_with_that_error(metadata: Any, world: World) -> None:
    # Admitted (an admin), then refused by the handler: the version does not exist.
    call = metadata.UploadFrames(_eager_upload(dataset_pb2.VersionRef(id="0123456789abcdef01234567")),
                                 metadata=world.callers["admin"])
    assert await _final_code(call) == grpc.StatusCode.NOT_FOUND
