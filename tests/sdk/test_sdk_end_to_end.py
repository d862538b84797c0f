"""The SDK against the real services (metadata on MongoDB, blobs on S3).

Every test makes its own dataset, so tests are independent of each other
and of order.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from framevault.sdk import (
    AlreadyExistsError,
    BlobTransfer,
    ChangeKind,
    ClientSettings,
    DatasetVersion,
    DataView,
    FailedPreconditionError,
    FrameGroup,
    InvalidArgumentError,
    IterationOrder,
    NotFoundError,
    SingleFrame,
    aclose,
    configure,
    current_client,
    parse_digest,
)
from framevault.sdk.sources import is_local_uri
from framevault.v1 import frame_pb2

from .helpers import make_image


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def still(name: str, context: str, timestamp: int, labels: tuple[str, ...] = (), **meta: object) -> SingleFrame:
    frame = SingleFrame(source=f"s3://bucket/{context}/{name}.jpg", width=640, height=480, timestamp=timestamp,
                        context_id=context, metadata=dict(meta), id=name)
    for label in labels:
        frame.add_annotation(box2d_xywh=(1, 2, 30, 40), labels=label, confidence=0.8)
    return frame


async def new_draft(sdk: ClientSettings, prefix: str) -> tuple[str, DatasetVersion]:
    name = unique(prefix)
    await DatasetVersion.acreate_new_dataset(name, description="made by a test", tags=["test"])
    return name, await DatasetVersion.aget_version(name)


# --- datasets and versions -------------------------------------------------------


async def test_create_dataset_is_idempotent_unless_asked(sdk: ClientSettings) -> None:
    name = unique("ds")
    first = await DatasetVersion.acreate_new_dataset(name, description="cars", tags=["a"], metadata={"owner": "me"})
    again = await DatasetVersion.acreate_new_dataset(name)
    assert again.id == first.id
    assert first.metadata == {"owner": "me"} and first.tags == ["a"]
    with pytest.raises(AlreadyExistsError) as caught:
        await DatasetVersion.acreate_new_dataset(name, raise_if_exists=True)
    assert caught.value.resource_info is not None
    assert caught.value.resource_info.resource_name == name

    draft = await DatasetVersion.aget_version(name)
    assert draft.version_name == "Current" and draft.is_draft and draft.frame_count == 0


async def test_missing_things_raise_not_found_with_resource_info(sdk: ClientSettings) -> None:
    with pytest.raises(NotFoundError) as caught:
        await DatasetVersion.aget_version(unique("nope"))
    assert caught.value.resource_info is not None
    assert caught.value.resource_info.resource_type


async def test_bad_names_raise_invalid_argument_naming_the_field(sdk: ClientSettings) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        await DatasetVersion.acreate_new_dataset(" leading space")
    assert any("name" in v.field for v in caught.value.field_violations)


async def test_version_lifecycle_publish_child_snapshot_list(sdk: ClientSettings) -> None:
    name, draft = await new_draft(sdk, "life")
    assert await draft.aadd_frames([still("a", "c", 0), still("b", "c", 33)], progress=False) == []
    await draft.apublish_version()
    assert draft.is_published and draft.publish_time is not None
    with pytest.raises(FailedPreconditionError):
        await draft.aadd_frames([still("x", "c", 66)], progress=False)

    child = await DatasetVersion.acreate_version(name, "v2", parent_version_ids=[draft.version_id],
                                                 description="next", metadata={"step": 2})
    assert child.is_draft and child.parent_id == draft.version_id
    assert await child.aget_count() == 2
    assert await child.aget_metadata() == {"step": 2}
    same = await DatasetVersion.acreate_version(name, "v2")
    assert same.version_id == child.version_id
    with pytest.raises(AlreadyExistsError):
        await DatasetVersion.acreate_version(name, "v2", raise_if_exists=True)

    await child.aadd_frames([still("c", "c", 66)], progress=False)
    snapshot = await DatasetVersion.acreate_snapshot(name, "snap-1", version_name="v2")
    assert snapshot.is_published and snapshot.version_name == "snap-1"
    reopened = await DatasetVersion.aget_version(name, "v2")
    assert reopened.is_draft and reopened.parent_id == snapshot.version_id
    assert await reopened.aget_count() == 3

    versions = await DatasetVersion.aget_versions(name)
    by_name = {v.version_name: v for v in versions}
    assert {"Current", "snap-1", "v2"} <= set(by_name)
    assert by_name["snap-1"].parent_ids == [draft.version_id]


async def test_version_metadata_and_mask_labels(sdk: ClientSettings) -> None:
    _, draft = await new_draft(sdk, "masks")
    await draft.aset_masks_labels({(0, 0, 0): "background", (255, 0, 0): ["person", "pedestrian"], 7: "void"})
    assert await draft.aget_masks_labels() == {
        (0, 0, 0): ["background"], (255, 0, 0): ["person", "pedestrian"], (7, 7, 7): ["void"]}
    await draft.aset_metadata({"source": "lidar", "rev": 3})
    assert await draft.aget_metadata() == {"source": "lidar", "rev": 3}
    with pytest.raises(ValueError):
        await draft.aset_masks_labels({(300, 0, 0): "bad"})


async def test_diff_and_merge(sdk: ClientSettings) -> None:
    name, root = await new_draft(sdk, "diff")
    await root.aadd_frames([still("keep", "c", 0), still("change", "c", 1), still("drop", "c", 2)], progress=False)
    await root.apublish_version()
    left = await DatasetVersion.acreate_version(name, "left", parent_version_ids=[root.version_id])
    changed = still("change", "c", 1, city="bremen")
    await left.aadd_frames([changed, still("new", "c", 3)], progress=False)
    assert await left.adelete_frames(["drop"]) == 1

    changes = await root.adiff(left, include_frames=True)
    kinds = {c.frame_id: c.kind for c in changes}
    assert kinds == {"change": ChangeKind.changed, "drop": ChangeKind.removed, "new": ChangeKind.added}
    changed_entry = next(c for c in changes if c.frame_id == "change")
    assert changed_entry.target is not None and changed_entry.target.metadata == {"city": "bremen"}

    await left.apublish_version()
    right = await DatasetVersion.acreate_version(name, "right", parent_version_ids=[root.version_id])
    await right.aadd_frames([still("other", "c", 4)], progress=False)
    await right.apublish_version()
    merged = await DatasetVersion.amerge_versions(left, right, "merged")
    assert merged.version is not None and merged.conflict_count == 0
    assert merged.merge_base_id == root.version_id
    assert {f.id async for f in merged.version.aiterate_frames()} == {"keep", "change", "new", "other"}


# --- frames ------------------------------------------------------------------------


async def test_add_frames_uploads_local_files_once_and_reports_failures(sdk: ClientSettings, tmp_path: Path) -> None:
    _, draft = await new_draft(sdk, "upload")
    jpeg = make_image(tmp_path / "img" / "a.jpg")
    png = make_image(tmp_path / "img" / "b.png", color=(10, 200, 10))
    mask = make_image(tmp_path / "img" / "b_mask.png", color=(255, 0, 0))
    first = SingleFrame(source=str(jpeg), width=32, height=24, context_id="drive", timestamp=0, id="a",
                        preview_uri=jpeg.as_uri())
    first.add_annotation(box2d_xywh=(1, 1, 10, 10), labels=["car"], confidence=0.75, metadata={"track": 1})
    second = SingleFrame(source=png.as_uri(), width=32, height=24, context_id="drive", timestamp=33, id="b",
                         mask_source=str(mask))
    second.add_annotation(poly2d_xy=[[0, 0, 5, 0, 5, 5], [6, 6, 9, 6, 9, 9]], labels="road")
    # The same file again: its bytes are stored once.
    duplicate = SingleFrame(source=str(jpeg), context_id="drive", timestamp=66, id="a-again")
    invalid = frame_pb2.Frame(id="bad", sources=[frame_pb2.Source(uri="s3://b/x.jpg")],
                              rois=[frame_pb2.Roi(labels=["x"], confidence=7.0)])
    missing_file = SingleFrame(source=str(tmp_path / "does-not-exist.jpg"), id="ghost")

    totals = await draft.aadd_frames_with_totals([first, second, duplicate, invalid, missing_file], progress=False)

    assert totals.created == 3
    failed = {f.frame_id or getattr(f.frame, "id", ""): f for f in totals.failed}
    assert set(failed) == {"bad", "ghost"}
    assert isinstance(failed["bad"].error, InvalidArgumentError)
    assert any(v.field.endswith("rois[0].confidence") for v in failed["bad"].error.field_violations)
    assert failed["bad"].frame is invalid
    assert failed["ghost"].attempts == 0
    assert [v.field for v in failed["ghost"].error.field_violations][0] == "sources[0].uri"

    stored = await draft.aget_single_frame("a")
    assert isinstance(stored, SingleFrame)
    digest = parse_digest(stored.source)
    assert digest.hash == hashlib.sha256(jpeg.read_bytes()).hexdigest()
    assert stored.preview_uri == stored.source
    assert stored.content_type == "image/jpeg"
    assert stored.annotations[0].labels == ["car"] and stored.annotations[0].metadata == {"track": 1}
    assert (await draft.aget_single_frame("a-again")).source == stored.source
    cached = await stored.aget_local_source(cache_dir=tmp_path / "cache")
    assert cached.read_bytes() == jpeg.read_bytes()
    assert await stored.aget_local_source(cache_dir=tmp_path / "cache") == cached
    b = await draft.aget_single_frame("b")
    assert b.annotations[0].poly2d_xy == [[0, 0, 5, 0, 5, 5], [6, 6, 9, 6, 9, 9]]
    assert b.mask_source is not None and not is_local_uri(b.mask_source)
    blobs = BlobTransfer(current_client())
    assert await blobs.read_bytes(parse_digest(b.mask_source)) == mask.read_bytes()
    local_mask = await b.aget_local_mask_source(cache_dir=tmp_path / "cache")
    assert local_mask is not None and local_mask.read_bytes() == mask.read_bytes()
    # Everything is in the store now: nothing is missing.
    assert await BlobTransfer(current_client()).find_missing([digest]) == set()


async def test_frame_groups_round_trip_through_the_service(sdk: ClientSettings, tmp_path: Path) -> None:
    _, draft = await new_draft(sdk, "group")
    group = FrameGroup(id="pair-1", context_id="rig", timestamp=10, metadata={"speed": 3})
    group["left"] = SingleFrame(source=str(make_image(tmp_path / "l.png")), width=32, height=24,
                                metadata={"camera": "L"})
    group["right"] = SingleFrame(source="s3://bucket/r.png", width=32, height=24)
    group["left"].add_annotation(box2d_xywh=(1, 1, 4, 4), labels="car")
    group.add_annotation(labels="daytime")
    assert await draft.aadd_frames([group], progress=False) == []

    stored = await draft.aget_single_frame("pair-1")
    assert isinstance(stored, FrameGroup)
    assert list(stored) == ["left", "right"]
    assert stored["left"].metadata == {"camera": "L"}
    assert stored["left"].source.startswith("blob:sha256/")
    assert [a.labels for a in stored["left"].annotations] == [["car"]]
    assert stored.frame_labels == ["daytime"]
    assert stored.metadata == {"speed": 3}


async def test_update_and_delete_frames(sdk: ClientSettings) -> None:
    _, draft = await new_draft(sdk, "update")
    await draft.aadd_frames([still(f"f{i}", "c", i) for i in range(5)], progress=False)
    frame = await draft.aget_single_frame("f1")
    frame.metadata["checked"] = True
    frame.add_annotation(labels="reviewed")
    ghost = still("never-added", "c", 9)
    failed = await draft.aupdate_frames([frame, ghost])
    assert [f.frame for f in failed] == [ghost]
    assert isinstance(failed[0].error, NotFoundError)
    again = await draft.aget_single_frame("f1")
    assert again.metadata == {"checked": True} and again.frame_labels == ["reviewed"]

    assert await draft.adelete_frames([again, "f2", "not-there"]) == 2
    assert await draft.aget_count() == 3
    with pytest.raises(NotFoundError):
        await draft.aget_single_frame("f2")


async def test_a_generator_of_many_frames_streams_through(sdk: ClientSettings) -> None:
    _, draft = await new_draft(sdk, "many")
    pulled = 0

    def frames() -> Iterator[SingleFrame]:
        nonlocal pulled
        for i in range(3000):
            pulled += 1
            yield still(f"m{i:05d}", f"ctx{i % 7}", i)

    totals = await draft.aadd_frames_with_totals(frames(), upload_retries=2, progress=False)
    assert (totals.created, totals.failed) == (3000, [])
    assert pulled == 3000
    assert await draft.aget_count() == 3000
    # Re-adding the same frames updates them: no duplicates.
    again = await draft.aadd_frames_with_totals(frames(), progress=False)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3000)
    assert await draft.aget_count() == 3000


async def test_large_blob_goes_through_the_resumable_stream(sdk: ClientSettings, tmp_path: Path) -> None:
    big = tmp_path / "video.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    blobs = BlobTransfer(current_client())
    digest = await blobs.upload_file(str(big))
    assert digest.size == big.stat().st_size
    out = await blobs.read_to_file(digest, tmp_path / "copy.bin")
    assert out.read_bytes() == big.read_bytes()
    # A second upload finds it present and sends nothing.
    assert await blobs.find_missing([digest]) == set()


async def test_statistics(sdk: ClientSettings) -> None:
    _, draft = await new_draft(sdk, "stats")
    await draft.aadd_frames([still("s1", "c", 0, ("car", "car"), city="a"), still("s2", "c", 1, ("bus",), city="b"),
                             still("s3", "c", 2, city="a")], progress=False)
    stats = await draft.aget_statistics(meta_keys=["city"])
    assert (stats.frame_count, stats.annotated_frame_count, stats.roi_count) == (3, 2, 3)
    assert stats.roi_label_counts == {"car": 2, "bus": 1}
    assert dict(stats.meta_distributions["city"]) == {"a": 2, "b": 1}


# --- views ---------------------------------------------------------------------------


async def view_corpus(sdk: ClientSettings) -> str:
    name, draft = await new_draft(sdk, "view")
    frames = []
    for context in ("b-ctx", "a-ctx", "c-ctx"):
        for t in (66, 0, 33):
            labels = ("car",) if t == 0 else ("truck",) if t == 33 else ("person",)
            frames.append(still(f"{context}-{t}", context, t, labels, city="bremen" if context != "c-ctx" else "kiel"))
    assert await draft.aadd_frames(frames, progress=False) == []
    return name


async def test_sequential_order_groups_contexts_and_sorts_timestamps(sdk: ClientSettings) -> None:
    name = await view_corpus(sdk)
    view = DataView(iteration_order=IterationOrder.sequential)
    view.add_query(dataset_name=name)
    frames = await view.ato_list()
    assert [(f.context_id, f.timestamp) for f in frames] == [
        (c, t) for c in ("a-ctx", "b-ctx", "c-ctx") for t in (0, 33, 66)]
    assert await view.aget_count() == 9


async def test_queries_mapping_and_label_enumeration(sdk: ClientSettings) -> None:
    name = await view_corpus(sdk)
    view = DataView()
    view.add_query(dataset_name=name, roi_query=["car", "truck"], frame_query='meta.city:"bremen"',
                   source_query="width:640")
    view.add_mapping_rule(dataset_name=name, from_labels=["car", "truck"], to_label="vehicle")
    view.set_labels({"vehicle": 1})
    frames = await view.ato_list()
    assert len(frames) == 4 and await view.aget_count() == 4
    assert {f.context_id for f in frames} == {"a-ctx", "b-ctx"}
    for frame in frames:
        (annotation,) = frame.annotations
        assert annotation.labels == ["vehicle"] and annotation.label_ids == [1]

    lucene = DataView()
    lucene.add_query(dataset_name=name, roi_query='label.keyword:"person" AND NOT label.keyword:"car"')
    assert await lucene.aget_count() == 3


async def test_bad_query_reports_invalid_argument(sdk: ClientSettings) -> None:
    name = await view_corpus(sdk)
    view = DataView()
    view.add_query(dataset_name=name, frame_query="meta.city:bremen AND AND")
    with pytest.raises(InvalidArgumentError) as caught:
        await view.aget_count()
    assert any(v.field.endswith("query") for v in caught.value.field_violations)


async def test_random_order_is_seeded_and_shards_partition_the_view(sdk: ClientSettings) -> None:
    name = await view_corpus(sdk)

    def random_view(seed: int) -> DataView:
        view = DataView(iteration_order="random", random_seed=seed)
        view.add_query(dataset_name=name)
        return view

    first = [f.id for f in await random_view(5).ato_list()]
    again = [f.id for f in await random_view(5).ato_list()]
    assert first == again and len(first) == 9
    shards = [[f.id async for f in random_view(5).aget_iterator(shard_index=i, shard_count=3)] for i in range(3)]
    flat = [i for shard in shards for i in shard]
    assert sorted(flat) == sorted(first) and len(set(flat)) == 9


async def test_iterator_cursor_resumes_after_the_last_message(sdk: ClientSettings) -> None:
    name = await view_corpus(sdk)
    # Two frames per message, so the view streams in several messages.
    await asyncio.to_thread(configure, iterate_frames_per_message=2)
    await aclose()
    try:
        view = DataView()
        view.add_query(dataset_name=name)
        iterator = view.aget_iterator()
        head = [await anext(iterator) for _ in range(4)]
        cursor = iterator.cursor
        await iterator.aclose()
        rest = [f async for f in view.aget_iterator(resume_cursor=cursor)]
        everything = [f.id for f in await view.ato_list()]
        assert len(everything) == 9
        assert [f.id for f in head] + [f.id for f in rest] == everything
    finally:
        await asyncio.to_thread(configure, iterate_frames_per_message=0)
        await aclose()


async def test_infinite_view_with_a_limit(sdk: ClientSettings) -> None:
    name = await view_corpus(sdk)
    view = DataView(iteration_infinite=True, maximum_number_of_frames=20)
    view.add_query(dataset_name=name, roi_query="car")
    frames = await view.ato_list()
    assert len(frames) == 20 and {f.id for f in frames} == {"a-ctx-0", "b-ctx-0", "c-ctx-0"}
    with pytest.raises(ValueError):
        await DataView(iteration_infinite=True).ato_list()


# --- the synchronous face ------------------------------------------------------------


async def test_synchronous_api_in_a_plain_thread(sdk: ClientSettings, tmp_path: Path) -> None:
    image = make_image(tmp_path / "sync.jpg")

    def script() -> tuple[int, list[str], int]:
        name = unique("sync")
        DatasetVersion.create_new_dataset(dataset_name=name)
        version = DatasetVersion.get_version(dataset_name=name)
        frame = SingleFrame(source=str(image), width=32, height=24, id="s")
        frame.add_annotation(box2d_xywh=(0, 0, 5, 5), labels=["dog"])
        failed = version.add_frames([frame], progress=False)
        view = DataView()
        view.add_query(dataset_name=name, roi_query="dog")
        with view.get_iterator() as iterator:
            frames = list(iterator)
        assert frames[0].get_local_source(cache_dir=tmp_path / "cache").read_bytes() == image.read_bytes()
        return len(failed), [f.id or "" for f in frames], view.get_count()

    assert await asyncio.to_thread(script) == (0, ["s"], 1)
