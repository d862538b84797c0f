"""The upload stream against the real services: per-frame outcomes, upserts,
group atomicity, idempotent resends, drafts only, metadata fidelity."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc import aio
from support import error_details, violated_fields

from framevault.api.digests import digest_of
from framevault.api.metadata_values import dict_to_metadata, metadata_to_dict
from framevault.metadata.db import Database
from framevault.metadata.frames.validation import derive_frame_id
from framevault.v1 import blob_pb2, frame_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import (
    CREATED,
    FAILED,
    UNCHANGED,
    UPDATED,
    bad_fields,
    by_id,
    child_of,
    code_of,
    count_frames,
    get_frame,
    image_frame,
    items,
    missing_digest,
    new_draft,
    precondition_subjects,
    publish,
    put_blob,
    revision_count,
    unique,
    upload,
    visible_count,
)

pytestmark = pytest.mark.usefixtures("frames_db")


async def test_a_mixed_batch_reports_one_outcome_per_frame(metadata_stub, blob_stub, frames_db: Database):
    version = await new_draft(metadata_stub)
    stored = await put_blob(blob_stub, b"stored image " + unique("x").encode())
    absent = missing_digest()
    frames = [
        image_frame("plain"),
        image_frame("bad", confidence=1.5),
        image_frame("missing", uri=absent.uri),
        image_frame("dup", labels=["first"]),
        image_frame("", uri=stored.uri),
        image_frame("dup", labels=["second"]),
    ]
    run = await upload(metadata_stub, version.id, items(frames), per_message=2)

    assert run.started is not None and run.started.version.id == version.id
    assert run.started.max_unacknowledged_frames > 0
    assert [r.index for r in run.results] == list(range(6))
    assert [r.client_key for r in run.results] == [f"k{i}" for i in range(6)]
    assert run.outcomes() == [CREATED, FAILED, FAILED, CREATED, CREATED, UPDATED]
    assert [r.frame_id for r in run.results] == [
        "plain", "bad", "missing", "dup", derive_frame_id(stored.uri), "dup"]
    assert all(r.attempts == 1 for r in run.results)

    invalid = run.results[1].error
    assert code_of(invalid) == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(invalid) == ["frames[1].rois[0].confidence"]
    missing = run.results[2].error
    assert code_of(missing) == grpc.StatusCode.FAILED_PRECONDITION
    assert precondition_subjects(missing) == [("MISSING_BLOB", f"sha256/{absent.hash}/{absent.size}")]

    assert run.summary is not None
    assert (run.summary.created, run.summary.updated, run.summary.failed) == (3, 1, 2)
    assert list(run.summary.failed_frame_ids) == ["bad", "missing"]

    assert [r.labels[0] for r in (await get_frame(metadata_stub, version.id, "dup")).rois] == ["second"]
    assert await count_frames(metadata_stub, version.id) == 3 == await visible_count(frames_db, version.id)
    assert await revision_count(frames_db, version.id) == 3


async def test_upsert_replaces_by_id_and_by_derived_id(metadata_stub, frames_db: Database):
    version = await new_draft(metadata_stub)
    first = await upload(metadata_stub, version.id, items(
        [image_frame("a", labels=["x"]), image_frame(uri="s3://bucket/one.jpg", labels=["x"])]))
    assert first.outcomes() == [CREATED, CREATED]
    again = await upload(metadata_stub, version.id, items(
        [image_frame("a", labels=["y"]), image_frame(uri="s3://bucket/one.jpg", labels=["y"])]))
    assert again.outcomes() == [UPDATED, UPDATED]
    assert again.results[1].frame_id == first.results[1].frame_id == derive_frame_id("s3://bucket/one.jpg")
    for frame_id in ("a", derive_frame_id("s3://bucket/one.jpg")):
        frame = await get_frame(metadata_stub, version.id, frame_id)
        assert list(frame.rois[0].labels) == ["y"]
        assert frame.saved_in_version == version.id and frame.num_frames == 1
    stored = await get_frame(metadata_stub, version.id, derive_frame_id("s3://bucket/one.jpg"))
    assert stored.context_id == "ctx"
    assert await count_frames(metadata_stub, version.id) == 2 == await revision_count(frames_db, version.id)


def group(frame_id: str, *uris: str) -> frame_pb2.Frame:
    return frame_pb2.Frame(id=frame_id, sources=[frame_pb2.Source(id=f"cam{i}", uri=u) for i, u in enumerate(uris)],
                           rois=[frame_pb2.Roi(labels=["global"])])


async def test_a_frame_group_is_registered_whole_or_not_at_all(metadata_stub, blob_stub, frames_db: Database):
    version = await new_draft(metadata_stub)
    left = await put_blob(blob_stub, b"left " + unique("l").encode())
    right = await put_blob(blob_stub, b"right " + unique("r").encode())
    absent = missing_digest()
    run = await upload(metadata_stub, version.id, items([
        group("bad-uri", left.uri, "gopher://x/y", right.uri),
        group("missing-member", left.uri, absent.uri, right.uri),
        group("whole", left.uri, right.uri),
    ]))
    assert run.outcomes() == [FAILED, FAILED, CREATED]
    assert bad_fields(run.results[0].error) == ["frames[0].sources[1].uri"]
    assert precondition_subjects(run.results[1].error) == [("MISSING_BLOB", str(absent))]
    for frame_id in ("bad-uri", "missing-member"):
        assert await frames_db.frames.count_documents({"frame_id": frame_id, "version_id": version.id}) == 0
        with pytest.raises(aio.AioRpcError) as caught:
            await get_frame(metadata_stub, version.id, frame_id)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    whole = await get_frame(metadata_stub, version.id, "whole")
    assert whole.num_frames == 2 and [s.id for s in whole.sources] == ["cam0", "cam1"]
    assert await count_frames(metadata_stub, version.id) == 1


async def test_resending_after_a_broken_stream_gives_the_same_end_state(metadata_stub, frames_db: Database):
    version = await new_draft(metadata_stub)
    frames = [image_frame(f"f{i:04d}", context=f"c{i % 7}", timestamp=i) for i in range(1200)]
    broken = await upload(metadata_stub, version.id, items(frames), per_message=50, cancel_after=150)
    assert broken.summary is None and 150 <= len(broken.results) < 1200
    # Whatever the server finished before noticing the cancellation is there, and consistent.
    partial = await count_frames(metadata_stub, version.id)
    assert partial >= len(broken.results)
    assert partial == await visible_count(frames_db, version.id)

    resent = await upload(metadata_stub, version.id, items(frames), per_message=50)
    assert resent.summary is not None and resent.summary.failed == 0
    assert resent.summary.created + resent.summary.unchanged == 1200
    assert resent.summary.unchanged == partial and resent.summary.updated == 0
    assert await count_frames(metadata_stub, version.id) == 1200
    assert await visible_count(frames_db, version.id) == 1200
    assert await revision_count(frames_db, version.id) == 1200
    ids = [d["frame_id"] async for d in frames_db.frames.find({"version_id": version.id}, {"frame_id": 1})]
    assert sorted(ids) == sorted(f.id for f in frames)


async def test_the_client_window_bounds_what_is_in_flight(metadata_stub):
    version = await new_draft(metadata_stub)
    run = await upload(metadata_stub, version.id, items(image_frame(f"w{i}") for i in range(300)), per_message=40)
    assert run.started is not None
    assert 0 < run.max_in_flight <= run.started.max_unacknowledged_frames
    assert run.summary is not None and run.summary.created == 300


async def test_only_drafts_accept_frames(metadata_stub, frames_db: Database):
    version = await new_draft(metadata_stub)
    await upload(metadata_stub, version.id, items([image_frame("kept", labels=["old"])]))
    await publish(metadata_stub, version.id)
    with pytest.raises(aio.AioRpcError) as caught:
        await upload(metadata_stub, version.id, items([image_frame("new")]))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = error_details(caught.value)
    assert any(getattr(v, "type", "") == "VERSION_STATUS" for d in details for v in getattr(d, "violations", ()))
    assert await count_frames(metadata_stub, version.id) == 1

    child = await child_of(metadata_stub, await metadata_stub.GetVersion(ms.GetVersionRequest(version=by_id(version.id))))
    run = await upload(metadata_stub, child.id, items([image_frame("kept", labels=["new"]), image_frame("added")]))
    assert run.outcomes() == [UPDATED, CREATED]
    assert list((await get_frame(metadata_stub, version.id, "kept")).rois[0].labels) == ["old"]
    in_child = await get_frame(metadata_stub, child.id, "kept")
    assert list(in_child.rois[0].labels) == ["new"] and in_child.saved_in_version == child.id
    assert await count_frames(metadata_stub, child.id) == 2 == await visible_count(frames_db, child.id)
    assert await count_frames(metadata_stub, version.id) == 1 == await visible_count(frames_db, version.id)


async def test_publishing_mid_stream_fails_the_remaining_frames(metadata_stub):
    version = await new_draft(metadata_stub)
    published = asyncio.Event()

    async def publish_after_first_message(sent: int) -> None:
        if not published.is_set():
            await wait_for_count(metadata_stub, version.id, sent)
            await publish(metadata_stub, version.id)
            published.set()

    run = await upload(metadata_stub, version.id, items(image_frame(f"p{i}") for i in range(40)),
                       per_message=10, between_messages=publish_after_first_message)
    assert run.outcomes()[:10] == [CREATED] * 10
    assert run.outcomes()[10:] == [FAILED] * 30
    assert {code_of(r.error) for r in run.results[10:]} == {grpc.StatusCode.FAILED_PRECONDITION}
    assert run.summary is not None and run.summary.failed == 30 and run.summary.created == 10
    assert await count_frames(metadata_stub, version.id) == 10


async def wait_for_count(stub, version_id: str, count: int) -> None:
    for _ in range(500):
        if await count_frames(stub, version_id) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"version never reached {count} frames")


async def test_metadata_keys_unsafe_for_mongodb_are_rejected_naming_the_field(metadata_stub, frames_db: Database):
    version = await new_draft(metadata_stub)
    good = image_frame("good")
    good.meta.CopyFrom(dict_to_metadata({"city": "bremen"}))
    dollar = image_frame("dollar")
    dollar.meta.CopyFrom(dict_to_metadata({"nested": {"$where": 1}}))
    dotted = image_frame("dotted")
    dotted.sources[0].meta.CopyFrom(dict_to_metadata({"a.b": 1}))
    infix = image_frame("infix")
    infix.rois[0].meta.CopyFrom(dict_to_metadata({"bad$key": True}))
    run = await upload(metadata_stub, version.id, items([good, dollar, dotted, infix]))
    assert run.outcomes() == [CREATED, FAILED, FAILED, FAILED]
    assert bad_fields(run.results[1].error) == ["frames[1].meta.nested.$where"]
    assert bad_fields(run.results[2].error) == ["frames[2].sources[0].meta.a.b"]
    assert bad_fields(run.results[3].error) == ["frames[3].rois[0].meta.bad$key"]
    assert await revision_count(frames_db, version.id) == 1


async def test_every_json_type_round_trips_exactly(metadata_stub, frames_db: Database):
    values = {
        "int": 1, "float_with_integral_value": 1.0, "negative": -7, "pi": 3.141592653589793,
        "int64_max": 2**63 - 1, "int64_min": -(2**63), "above_int32": 2**31, "tiny": 5e-324,
        "null": None, "yes": True, "no": False, "text": "zürich 東京", "empty_text": "",
        "list": [1, 1.0, "1", None, True, [2, [3.5]], {"k": [None]}], "empty_list": [], "empty_map": {},
        "nested": {"deeper": {"deepest": {"n": 2**40, "f": -0.5}}},
    }
    version = await new_draft(metadata_stub)
    frame = image_frame("typed")
    frame.meta.CopyFrom(dict_to_metadata(values))
    frame.sources[0].meta.CopyFrom(dict_to_metadata({"exposure": 0.25, "iso": 200}))
    await upload(metadata_stub, version.id, items([frame]))
    stored = await get_frame(metadata_stub, version.id, "typed")
    back = metadata_to_dict(stored.meta)
    assert back == values
    assert {k: type(v) for k, v in back.items()} == {k: type(v) for k, v in values.items()}
    assert type(back["list"][1]) is float and type(back["list"][0]) is int
    assert stored.meta == frame.meta
    assert metadata_to_dict(stored.sources[0].meta) == {"exposure": 0.25, "iso": 200}
    doc = await frames_db.frames.find_one({"version_id": version.id, "frame_id": "typed"})
    assert doc["meta"]["nested"]["deeper"]["deepest"]["n"] == 2**40  # a native sub-document, addressable


async def test_inline_bytes_are_stored_in_the_blob_service(metadata_stub, blob_stub):
    version = await new_draft(metadata_stub)
    data = b"inline jpeg bytes " + unique("i").encode()
    frame = frame_pb2.Frame(sources=[frame_pb2.Source(inline_content=data, content_type="image/jpeg",
                                                      preview=frame_pb2.Preview(inline_content=b"thumb" + data))])
    run = await upload(metadata_stub, version.id, items([frame]))
    assert run.outcomes() == [CREATED]
    stored = await get_frame(metadata_stub, version.id, derive_frame_id(digest_of(data).uri))
    assert stored.sources[0].uri == digest_of(data).uri and stored.sources[0].inline_content == b""
    assert stored.sources[0].preview.uri == digest_of(b"thumb" + data).uri
    found = await blob_stub.FindMissingBlobs(blob_pb2.FindMissingBlobsRequest(digests=[
        blob_pb2.Digest(hash=d.hash, size_bytes=d.size) for d in (digest_of(data), digest_of(b"thumb" + data))]))
    assert list(found.missing_digests) == []


async def _stream_error(stub, requests: list[ms.UploadFramesRequest]) -> aio.AioRpcError:
    call = stub.UploadFrames()
    with pytest.raises(aio.AioRpcError) as caught:
        for request in requests:
            await call.write(request)
        await call.done_writing()
        while await call.read() is not aio.EOF:
            pass
    return caught.value


async def test_stream_level_errors(metadata_stub):
    version = await new_draft(metadata_stub)
    options = ms.UploadOptions(version=by_id(version.id))
    frame_item = ms.UploadItem(frame=image_frame("x"))

    error = await _stream_error(metadata_stub, [ms.UploadFramesRequest(items=[frame_item])])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and violated_fields(error) == ["options"]
    error = await _stream_error(metadata_stub, [ms.UploadFramesRequest(
        options=ms.UploadOptions(version=by_id(version.id), upload_retries=11))])
    assert violated_fields(error) == ["options.upload_retries"]
    error = await _stream_error(metadata_stub, [ms.UploadFramesRequest(options=ms.UploadOptions())])
    assert violated_fields(error) == ["options.version"]
    error = await _stream_error(metadata_stub, [ms.UploadFramesRequest(
        options=ms.UploadOptions(version=by_id("0123456789abcdef01234567")))])
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await _stream_error(metadata_stub, [ms.UploadFramesRequest(options=options),
                                                ms.UploadFramesRequest(options=options)])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and violated_fields(error) == ["options"]


async def test_exceeding_the_window_fails_the_stream(metadata_stub, settings):
    version = await new_draft(metadata_stub)
    too_many = [ms.UploadItem(frame=image_frame(f"o{i}")) for i in range(settings.upload_window_frames + 1)]
    error = await _stream_error(metadata_stub, [
        ms.UploadFramesRequest(options=ms.UploadOptions(version=by_id(version.id)), items=too_many)])
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_frame_too_large_to_store_fails_alone(metadata_stub, frames_db: Database):
    version = await new_draft(metadata_stub)
    huge = image_frame("huge")
    # About 5 MB as protobuf but over MongoDB's 16 MiB as a document.
    outline = frame_pb2.PolygonPart(xy=[float(i % 997) for i in range(1_200_000)])
    huge.rois.append(frame_pb2.Roi(labels=["coastline"], polygon=frame_pb2.Polygon2D(parts=[outline])))
    run = await upload(metadata_stub, version.id, items([image_frame("before"), huge, image_frame("after")]),
                       per_message=3)
    assert run.outcomes() == [CREATED, FAILED, CREATED]
    assert code_of(run.results[1].error) == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(run.results[1].error) == ["frames[1].rois"]
    assert [r.attempts for r in run.results] == [1, 1, 1]
    assert await count_frames(metadata_stub, version.id) == 2 == await revision_count(frames_db, version.id)


async def test_resending_identical_frames_reports_unchanged_and_writes_nothing(metadata_stub, frames_db: Database):
    version = await new_draft(metadata_stub)
    frames = [image_frame("same", labels=["x"]), image_frame("edited", labels=["x"])]
    await upload(metadata_stub, version.id, items(frames))
    before = {d["frame_id"]: d async for d in frames_db.frames.find({"version_id": version.id})}

    again = await upload(metadata_stub, version.id, items([image_frame("same", labels=["x"]),
                                                           image_frame("edited", labels=["y"])]))
    assert again.outcomes() == [UNCHANGED, UPDATED]
    assert again.summary is not None
    assert (again.summary.created, again.summary.updated, again.summary.unchanged) == (0, 1, 1)
    after = {d["frame_id"]: d async for d in frames_db.frames.find({"version_id": version.id})}
    assert after["same"] == before["same"]  # not rewritten: same document, same saved time
    assert after["edited"]["etag"] != before["edited"]["etag"]
    assert await count_frames(metadata_stub, version.id) == 2


async def test_identical_frame_in_a_child_is_unchanged_and_adds_no_revision(metadata_stub, frames_db: Database):
    parent = await new_draft(metadata_stub)
    await upload(metadata_stub, parent.id, items([image_frame("inherited", labels=["x"])]))
    child = await child_of(metadata_stub, await publish(metadata_stub, parent.id))
    run = await upload(metadata_stub, child.id, items([image_frame("inherited", labels=["x"])]))
    assert run.outcomes() == [UNCHANGED]
    assert await revision_count(frames_db, child.id) == 0
    assert await count_frames(metadata_stub, child.id) == 1


async def test_repeated_frame_in_one_stream_reports_against_the_one_before(metadata_stub, frames_db: Database):
    version = await new_draft(metadata_stub)
    frame = image_frame("twice", labels=["x"])
    run = await upload(metadata_stub, version.id, items([frame, image_frame("twice", labels=["x"]),
                                                         image_frame("twice", labels=["y"])]))
    assert run.outcomes() == [CREATED, UNCHANGED, UPDATED]
    assert list((await get_frame(metadata_stub, version.id, "twice")).rois[0].labels) == ["y"]
    assert await revision_count(frames_db, version.id) == 1
