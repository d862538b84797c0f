"""GetFrame, UpdateFrame, DeleteFrames, CountFrames, ListFrames and
ListReferencedBlobs against the real services."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc import aio
from support import error_details, resource_info, violated_fields

from framevault.api.digests import digest_of
from framevault.api.metadata_values import dict_to_metadata, metadata_to_dict
from framevault.metadata.db import Database
from framevault.v1 import blob_pb2, dataset_pb2, frame_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import (
    CREATED,
    by_id,
    child_of,
    code_of,
    count_frames,
    get_frame,
    image_frame,
    items,
    missing_digest,
    new_draft,
    publish,
    put_blob,
    revision_count,
    unique,
    upload,
    visible_count,
)

pytestmark = pytest.mark.usefixtures("frames_db")


async def expect(call, code: grpc.StatusCode) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return caught.value


def with_meta(frame: frame_pb2.Frame, meta: dict) -> frame_pb2.Frame:
    frame.meta.CopyFrom(dict_to_metadata(meta))
    return frame


async def draft_with(stub, *frames: frame_pb2.Frame) -> dataset_pb2.Version:
    version = await new_draft(stub)
    run = await upload(stub, version.id, items(frames))
    assert run.outcomes() == [CREATED] * len(frames), [r.error for r in run.results]
    return version


def update(version_id: str, frame: frame_pb2.Frame, *paths: str, etag: str = "") -> ms.UpdateFrameRequest:
    return ms.UpdateFrameRequest(version=by_id(version_id), frame=frame,
                                 update_mask=field_mask_pb2.FieldMask(paths=list(paths)), etag=etag)


async def test_get_frame(metadata_stub):
    version = await draft_with(metadata_stub, image_frame("one", timestamp=33))
    frame = await get_frame(metadata_stub, version.id, "one")
    assert (frame.id, frame.timestamp, frame.version_id, frame.dataset_id) == ("one", 33, version.id, version.dataset_id)
    assert frame.etag and frame.saved > 0
    by_name = await metadata_stub.GetFrame(ms.GetFrameRequest(frame_id="one", version=dataset_pb2.VersionRef(
        dataset=dataset_pb2.DatasetRef(id=version.dataset_id), name="Current")))
    assert by_name == frame
    missing = await expect(get_frame(metadata_stub, version.id, "nope"), grpc.StatusCode.NOT_FOUND)
    info = resource_info(missing)
    assert info is not None and (info.resource_type, info.resource_name) == ("frame", "nope")
    bad = await expect(get_frame(metadata_stub, version.id, ""), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(bad) == ["frame_id"]


async def test_update_by_field_mask(metadata_stub):
    original = with_meta(image_frame("u", labels=["car"]), {"city": "bremen", "weather": {"rain": True, "mm": 3}})
    version = await draft_with(metadata_stub, original)
    given = with_meta(frame_pb2.Frame(id="u", rois=[frame_pb2.Roi(labels=["truck"])], context_id="other"),
                      {"weather": {"mm": 4.5}, "new": {"deep": [1, 2]}})
    updated = await metadata_stub.UpdateFrame(update(version.id, given, "rois", "meta.weather.mm", "meta.new.deep",
                                                     "meta.city"))
    assert [list(r.labels) for r in updated.rois] == [["truck"]]
    assert updated.context_id == "ctx"  # not in the mask
    assert metadata_to_dict(updated.meta) == {"weather": {"rain": True, "mm": 4.5}, "new": {"deep": [1, 2]}}
    assert updated == await get_frame(metadata_stub, version.id, "u")

    whole_meta = await metadata_stub.UpdateFrame(update(version.id, with_meta(frame_pb2.Frame(id="u"), {"n": 1}),
                                                        "meta", "timestamp"))
    assert metadata_to_dict(whole_meta.meta) == {"n": 1} and whole_meta.timestamp == 0
    assert await count_frames(metadata_stub, version.id) == 1


async def test_update_replaces_the_whole_frame_without_a_mask(metadata_stub, blob_stub):
    version = await draft_with(metadata_stub, image_frame("w", labels=["a"]))
    blob = await put_blob(blob_stub, b"replacement " + unique("r").encode())
    replacement = frame_pb2.Frame(id="w", sources=[frame_pb2.Source(uri=blob.uri)], timestamp=7)
    updated = await metadata_stub.UpdateFrame(update(version.id, replacement))
    assert (updated.timestamp, len(updated.rois), updated.context_id) == (7, 0, blob.uri)
    absent = missing_digest()
    error = await expect(metadata_stub.UpdateFrame(update(version.id, frame_pb2.Frame(
        id="w", sources=[frame_pb2.Source(uri=absent.uri)]))), grpc.StatusCode.FAILED_PRECONDITION)
    assert "MISSING_BLOB" in error.details() or absent.hash in error.details()
    assert (await get_frame(metadata_stub, version.id, "w")).timestamp == 7


async def test_update_errors(metadata_stub):
    version = await draft_with(metadata_stub, image_frame("e"))
    current = await get_frame(metadata_stub, version.id, "e")
    error = await expect(metadata_stub.UpdateFrame(update(version.id, frame_pb2.Frame(id="e"), "meta", "sources.uri")),
                         grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(error) == ["update_mask.paths[1]"]
    error = await expect(metadata_stub.UpdateFrame(update(version.id, frame_pb2.Frame(id="e"), "meta.$set")),
                         grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(error) == ["update_mask.paths[0]"]
    error = await expect(metadata_stub.UpdateFrame(update(version.id, frame_pb2.Frame(), "meta")),
                         grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(error) == ["frame.id"]
    bad_roi = frame_pb2.Frame(id="e", rois=[frame_pb2.Roi(labels=["x"], sources=["nope"])])
    error = await expect(metadata_stub.UpdateFrame(update(version.id, bad_roi, "rois")),
                         grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(error) == ["frame.rois[0].sources[0]"]
    await expect(metadata_stub.UpdateFrame(update(version.id, frame_pb2.Frame(id="absent"), "meta")),
                 grpc.StatusCode.NOT_FOUND)
    stale = await expect(metadata_stub.UpdateFrame(update(version.id, frame_pb2.Frame(id="e"), "meta", etag="stale")),
                         grpc.StatusCode.ABORTED)
    assert [d.reason for d in error_details(stale) if isinstance(d, error_details_pb2.ErrorInfo)] == ["ETAG_MISMATCH"]
    ok = await metadata_stub.UpdateFrame(update(version.id, with_meta(frame_pb2.Frame(id="e"), {"v": 1}), "meta",
                                                etag=current.etag))
    assert ok.etag != current.etag
    await expect(metadata_stub.UpdateFrame(update(version.id, frame_pb2.Frame(id="e"), "meta", etag=current.etag)),
                 grpc.StatusCode.ABORTED)
    await publish(metadata_stub, version.id)
    await expect(metadata_stub.UpdateFrame(update(version.id, frame_pb2.Frame(id="e"), "meta")),
                 grpc.StatusCode.FAILED_PRECONDITION)
    assert metadata_to_dict((await get_frame(metadata_stub, version.id, "e")).meta) == {"v": 1}


async def test_update_in_a_child_leaves_the_parent_alone(metadata_stub, frames_db: Database):
    parent = await draft_with(metadata_stub, with_meta(image_frame("c"), {"v": 1}))
    parent = await publish(metadata_stub, parent.id)
    child = await child_of(metadata_stub, parent)
    updated = await metadata_stub.UpdateFrame(update(child.id, with_meta(frame_pb2.Frame(id="c"), {"v": 2}), "meta"))
    assert updated.saved_in_version == child.id
    assert metadata_to_dict((await get_frame(metadata_stub, parent.id, "c")).meta) == {"v": 1}
    assert await count_frames(metadata_stub, child.id) == 1 == await visible_count(frames_db, child.id)


async def test_delete_frames_reports_a_status_per_id(metadata_stub, frames_db: Database):
    version = await draft_with(metadata_stub, image_frame("a"), image_frame("b"), image_frame("c"))
    response = await metadata_stub.DeleteFrames(ms.DeleteFramesRequest(version=by_id(version.id),
                                                                       frame_ids=["a", "zzz", "c", "a"]))
    assert [s.frame_id for s in response.statuses] == ["a", "zzz", "c", "a"]
    assert [code_of(s.status) for s in response.statuses] == [
        grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.OK, grpc.StatusCode.OK]
    assert response.deleted_count == 2
    assert await count_frames(metadata_stub, version.id) == 1 == await revision_count(frames_db, version.id)
    error = await expect(metadata_stub.DeleteFrames(ms.DeleteFramesRequest(version=by_id(version.id))),
                         grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(error) == ["frame_ids"]
    error = await expect(metadata_stub.DeleteFrames(ms.DeleteFramesRequest(
        version=by_id(version.id), frame_ids=["b", "x\x00"])), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(error) == ["frame_ids[1]"]
    await publish(metadata_stub, version.id)
    await expect(metadata_stub.DeleteFrames(ms.DeleteFramesRequest(version=by_id(version.id), frame_ids=["b"])),
                 grpc.StatusCode.FAILED_PRECONDITION)


async def test_count_stays_exact_through_mixed_operations(metadata_stub, frames_db: Database):
    parent = await draft_with(metadata_stub, *(image_frame(f"m{i}") for i in range(20)))
    parent = await publish(metadata_stub, parent.id)
    child = await child_of(metadata_stub, parent)
    assert await count_frames(metadata_stub, child.id) == 20 == await visible_count(frames_db, child.id)

    run = await upload(metadata_stub, child.id, items([image_frame(f"m{i}", labels=["new"]) for i in range(5)]
                                                      + [image_frame(f"n{i}") for i in range(7)]))
    assert run.summary is not None and (run.summary.created, run.summary.updated) == (7, 5)
    await metadata_stub.DeleteFrames(ms.DeleteFramesRequest(
        version=by_id(child.id), frame_ids=["m0", "m10", "n0", "n0", "absent"]))
    await metadata_stub.UpdateFrame(update(child.id, with_meta(frame_pb2.Frame(id="m11"), {"x": 1}), "meta"))
    await upload(metadata_stub, child.id, items([image_frame("m0"), image_frame("n0")]))  # deleted, re-added
    expected = 20 + 7 - 3 + 2
    assert await count_frames(metadata_stub, child.id) == expected == await visible_count(frames_db, child.id)
    assert await count_frames(metadata_stub, parent.id) == 20 == await visible_count(frames_db, parent.id)


async def test_list_frames_pages_in_sequential_order(metadata_stub):
    frames = [image_frame(f"id{i:02d}", context=f"ctx{i % 3}", timestamp=(i * 7) % 5) for i in range(25)]
    version = await draft_with(metadata_stub, *frames)
    seen: list[frame_pb2.Frame] = []
    token = ""
    pages = 0
    while True:
        page = await metadata_stub.ListFrames(ms.ListFramesRequest(version=by_id(version.id), page_size=4,
                                                                   page_token=token))
        seen.extend(page.frames)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 7
    keys = [(f.context_id, f.timestamp, f.id) for f in seen]
    assert keys == sorted((f.context_id, f.timestamp, f.id) for f in frames)
    everything = await metadata_stub.ListFrames(ms.ListFramesRequest(version=by_id(version.id)))
    assert list(everything.frames) == seen and everything.next_page_token == ""

    first = await metadata_stub.ListFrames(ms.ListFramesRequest(version=by_id(version.id), page_size=2))
    other = await new_draft(metadata_stub)
    for request, field in [
        (ms.ListFramesRequest(version=by_id(version.id), page_token="garbage"), "page_token"),
        (ms.ListFramesRequest(version=by_id(version.id), page_token=first.next_page_token[:-2] + "xx"), "page_token"),
        (ms.ListFramesRequest(version=by_id(other.id), page_token=first.next_page_token), "page_token"),
        (ms.ListFramesRequest(version=by_id(version.id), page_size=1001), "page_size"),
        (ms.ListFramesRequest(version=by_id(version.id), page_size=-1), "page_size"),
    ]:
        error = await expect(metadata_stub.ListFrames(request), grpc.StatusCode.INVALID_ARGUMENT)
        assert violated_fields(error) == [field]


async def test_count_and_list_of_an_unknown_version(metadata_stub):
    await expect(count_frames(metadata_stub, "0123456789abcdef01234567"), grpc.StatusCode.NOT_FOUND)
    await expect(metadata_stub.ListFrames(ms.ListFramesRequest(version=by_id("0123456789abcdef01234567"))),
                 grpc.StatusCode.NOT_FOUND)


async def test_referenced_blobs_cover_sources_previews_and_masks(metadata_stub, blob_stub):
    source, preview, mask = [await put_blob(blob_stub, f"{kind} {unique('b')}".encode())
                             for kind in ("source", "preview", "mask")]
    frame = frame_pb2.Frame(id="refs", sources=[frame_pb2.Source(
        uri=source.uri, preview=frame_pb2.Preview(uri=preview.uri), masks=[frame_pb2.Mask(id="m", uri=mask.uri)])])
    shared = frame_pb2.Frame(id="shared", sources=[frame_pb2.Source(uri=source.uri),
                                                   frame_pb2.Source(id="ext", uri="s3://bucket/not-ours.jpg")])
    await draft_with(metadata_stub, frame, shared)
    digests = []
    batches = 0
    async for response in metadata_stub.ListReferencedBlobs(ms.ListReferencedBlobsRequest(batch_size=2)):
        batches += 1
        assert 1 <= len(response.digests) <= 2 and response.references_seen >= len(digests)
        digests.extend((d.hash, d.size_bytes) for d in response.digests)
    assert len(digests) == len(set(digests))
    assert {(d.hash, d.size) for d in (source, preview, mask)} <= set(digests)
    assert batches >= 2
    await expect(_drain(metadata_stub.ListReferencedBlobs(ms.ListReferencedBlobsRequest(batch_size=10001))),
                 grpc.StatusCode.INVALID_ARGUMENT)


async def _drain(call) -> None:
    async for _ in call:
        pass


async def test_update_of_sources_stores_inline_bytes(metadata_stub, blob_stub):
    version = await draft_with(metadata_stub, image_frame("s"))
    data = b"new pixels " + unique("p").encode()
    given = frame_pb2.Frame(id="s", sources=[frame_pb2.Source(inline_content=data)])
    updated = await metadata_stub.UpdateFrame(update(version.id, given, "sources"))
    assert updated.sources[0].uri == digest_of(data).uri and updated.context_id == "ctx"
    found = await blob_stub.FindMissingBlobs(blob_pb2.FindMissingBlobsRequest(
        digests=[blob_pb2.Digest(hash=digest_of(data).hash, size_bytes=len(data))]))
    assert list(found.missing_digests) == []
