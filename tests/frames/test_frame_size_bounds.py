"""How large a frame may be: its metadata is bounded in all (so a frame fits
clients' default message limit), and a frame the database refuses as too
large is answered INVALID_ARGUMENT naming its largest part, both in the
upload stream and in UpdateFrame."""

from __future__ import annotations

import grpc
import pytest
from support import violated_fields

from framevault.api.metadata_values import dict_to_metadata
from framevault.common.config import Settings
from framevault.metadata.db import Database
from framevault.metadata.frames.validation import FrameLimits, check_frame
from framevault.v1 import frame_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import CREATED, FAILED, bad_fields, by_id, code_of, image_frame, items, new_draft, revision_count, upload

LIMITS = FrameLimits(max_inline_bytes=1024, max_meta_bytes=1000)
DEFAULT_META_BYTES = Settings().frame_max_meta_bytes


def _meta(size: int) -> frame_pb2.Frame:
    """A frame whose meta encodes to about ``size`` bytes."""
    frame = image_frame("sized")
    frame.meta.CopyFrom(dict_to_metadata({"text": "x" * size}))
    return frame


def _too_large_to_store(frame_id: str) -> frame_pb2.Frame:
    """A valid frame of about 5 MB as protobuf but over MongoDB's 16 MiB as a document."""
    frame = image_frame(frame_id)
    outline = frame_pb2.PolygonPart(xy=[float(i % 997) for i in range(1_200_000)])
    frame.rois.append(frame_pb2.Roi(labels=["coastline"], polygon=frame_pb2.Polygon2D(parts=[outline])))
    return frame


def test_the_metadata_of_a_frame_is_bounded_in_all_naming_the_largest_field() -> None:
    assert check_frame(_meta(900), "frames[3]", LIMITS).violations == []
    assert [v.field for v in check_frame(_meta(1100), "frames[3]", LIMITS).violations] == ["frames[3].meta"]
    # Small parts that are too much together: the largest one is named.
    frame = _meta(300)
    frame.sources[0].meta.CopyFrom(dict_to_metadata({"s": "y" * 300}))
    frame.rois[0].meta.CopyFrom(dict_to_metadata({"r": "z" * 400}))
    assert [v.field for v in check_frame(frame, "frame", LIMITS).violations] == ["frame.rois[0].meta"]


def test_the_default_bound_comes_from_the_settings() -> None:
    limits = FrameLimits.from_settings(Settings(frame_max_meta_bytes=2000))
    assert limits.max_meta_bytes == 2000
    assert check_frame(_meta(1500), "f", limits).violations == []


async def test_upload_refuses_only_the_frame_with_too_much_metadata(metadata_stub, frames_db: Database) -> None:
    version = await new_draft(metadata_stub)
    large = _meta(DEFAULT_META_BYTES + 1)
    large.id = "large"
    run = await upload(metadata_stub, version.id, items([image_frame("small"), large]))
    assert run.outcomes() == [CREATED, FAILED]
    assert code_of(run.results[1].error) == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(run.results[1].error) == ["frames[1].meta"]
    assert await revision_count(frames_db, version.id) == 1


async def test_update_frame_refuses_too_much_metadata_naming_frame_meta(metadata_stub) -> None:
    version = await new_draft(metadata_stub)
    await upload(metadata_stub, version.id, items([image_frame("u")]))
    large = _meta(DEFAULT_META_BYTES + 1)
    large.id = "u"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await metadata_stub.UpdateFrame(ms.UpdateFrameRequest(version=by_id(version.id), frame=large))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(refused.value) == ["frame.meta"]


async def test_update_frame_refuses_a_frame_too_large_to_store_naming_its_largest_part(
        metadata_stub, frames_db: Database) -> None:
    # The upload stream names it the same way (test_upload: frames[1].rois).
    version = await new_draft(metadata_stub)
    await upload(metadata_stub, version.id, items([image_frame("u")]))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await metadata_stub.UpdateFrame(ms.UpdateFrameRequest(version=by_id(version.id),
                                                              frame=_too_large_to_store("u")))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(refused.value) == ["frame.rois"]
    assert await revision_count(frames_db, version.id) == 1
