"""Versions through the gRPC API: lifecycle, updates, listing, bad input."""

from __future__ import annotations

import re

import grpc
import pytest
from google.protobuf import field_mask_pb2

from framevault.v1 import dataset_pb2, metadata_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import (
    by_id,
    child_of,
    dataset_ref,
    error_details,
    expect_error,
    expect_invalid,
    expect_unchanged,
    make_frame,
    new_dataset,
    publish,
    resource_info,
    unique_name,
    violated_fields,
    visible_frames,
    write_frames,
)

DRAFT, PUBLISHED = dataset_pb2.VERSION_STATUS_DRAFT, dataset_pb2.VERSION_STATUS_PUBLISHED


def mask(value: list[int], *labels: str) -> dataset_pb2.MaskLabel:
    return dataset_pb2.MaskLabel(value=value, labels=labels)


async def test_root_version_and_child_of_a_published_version(metadata_stub, db):
    dataset, _ = await new_dataset(metadata_stub)
    root = await metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_ref(dataset.id),
        version=dataset_pb2.Version(name="root", description="first",
                                    mask_labels=[mask([0, 0, 0], "background"), mask([255, 0, 0], "car", "vehicle")])))
    assert (root.status, list(root.parent_ids), root.frame_count) == (DRAFT, [], 0)
    await write_frames(metadata_stub, root.id, [make_frame(f"f{i}") for i in range(4)])
    published = await publish(metadata_stub, root.id)
    assert published.status == PUBLISHED and published.publish_time.seconds > 0
    child = await child_of(metadata_stub, published, name="child")
    assert (child.status, list(child.parent_ids), child.frame_count) == (DRAFT, [root.id], 4)
    # The child keeps the parent's mask meaning unless it sets its own.
    assert [list(m.value) for m in child.mask_labels] == [[0, 0, 0], [255, 0, 0]]
    assert await visible_frames(db, child.id) == await visible_frames(db, root.id)
    got = await metadata_stub.GetVersion(ms.GetVersionRequest(version=dataset_pb2.VersionRef(
        dataset=dataset_pb2.DatasetRef(name=dataset.name), name="child")))
    assert got == child


async def test_changes_in_a_child_are_invisible_to_parent_and_siblings(metadata_stub, db):
    _, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [make_frame(f"f{i}") for i in range(3)])
    parent = await publish(metadata_stub, current.id)
    before = await visible_frames(db, parent.id)
    first, second = await child_of(metadata_stub, parent), await child_of(metadata_stub, parent)
    await write_frames(metadata_stub, first.id, [make_frame("f0", note="#changed"), make_frame("new")])
    from .helpers import delete_frames
    await delete_frames(metadata_stub, first.id, ["f1"])
    assert await visible_frames(db, parent.id) == before
    assert await visible_frames(db, second.id) == before
    in_first = await visible_frames(db, first.id)
    assert set(in_first) == {"f0", "f2", "new"} and in_first["f0"] != before["f0"]
    assert in_first["f2"] == before["f2"]


async def test_child_of_a_draft_is_refused(metadata_stub, db):
    dataset, current = await new_dataset(metadata_stub)
    error = await expect_unchanged(db, metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_ref(dataset.id), parent=by_id(current.id), version=dataset_pb2.Version(name="kid"))),
        grpc.StatusCode.FAILED_PRECONDITION)
    failures = [d for d in error_details(error) if d.DESCRIPTOR.name == "PreconditionFailure"]
    assert failures and failures[0].violations[0].subject == current.id


async def test_child_of_a_version_of_another_dataset_is_refused(metadata_stub, db):
    dataset, _ = await new_dataset(metadata_stub)
    _, other_current = await new_dataset(metadata_stub)
    other = await publish(metadata_stub, other_current.id)
    await expect_invalid(db, metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_ref(dataset.id), parent=by_id(other.id), version=dataset_pb2.Version(name="x"))), "parent")


async def test_unknown_dataset_parent_and_version_are_not_found(metadata_stub, db):
    dataset, _ = await new_dataset(metadata_stub)
    missing = "0123456789abcdef01234567"
    error = await expect_unchanged(db, metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_ref(missing), version=dataset_pb2.Version(name="x"))), grpc.StatusCode.NOT_FOUND)
    assert resource_info(error).resource_type == "dataset" and violated_fields(error) == ["dataset.id"]
    error = await expect_unchanged(db, metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_ref(dataset.id), parent=by_id(missing), version=dataset_pb2.Version(name="x"))),
        grpc.StatusCode.NOT_FOUND)
    assert resource_info(error).resource_type == "version" and violated_fields(error) == ["parent.id"]
    error = await expect_error(metadata_stub.GetVersion(ms.GetVersionRequest(version=dataset_pb2.VersionRef(
        dataset=dataset_ref(dataset.id), name="nope"))), grpc.StatusCode.NOT_FOUND)
    assert resource_info(error).resource_name == "nope" and violated_fields(error) == ["version.name"]
    for call in (
        metadata_stub.PublishVersion(ms.PublishVersionRequest(version=by_id(missing))),
        metadata_stub.DeleteVersion(ms.DeleteVersionRequest(version=by_id(missing))),
        metadata_stub.GetVersionStatistics(ms.GetVersionStatisticsRequest(version=by_id(missing))),
        metadata_stub.SnapshotVersion(ms.SnapshotVersionRequest(version=by_id(missing))),
    ):
        error = await expect_unchanged(db, call, grpc.StatusCode.NOT_FOUND)
        assert resource_info(error).resource_name == missing


async def test_version_ref_by_name_needs_its_dataset(metadata_stub, db):
    await expect_invalid(db, metadata_stub.GetVersion(ms.GetVersionRequest(
        version=dataset_pb2.VersionRef(name="Current"))), "version.dataset")


async def test_version_names_are_unique_per_dataset(metadata_stub, db):
    dataset, _ = await new_dataset(metadata_stub)
    other, _ = await new_dataset(metadata_stub)
    error = await expect_unchanged(db, metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_ref(dataset.id), version=dataset_pb2.Version(name="Current"))),
        grpc.StatusCode.ALREADY_EXISTS)
    assert violated_fields(error) == ["version.name"]
    # The same name in another dataset is fine.
    await metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_ref(other.id), version=dataset_pb2.Version(name="v1")))
    await metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_ref(dataset.id), version=dataset_pb2.Version(name="v1")))


@pytest.mark.parametrize("name", ["", "y" * 129, " x", "x ", "a|b", "tab\there"])
async def test_bad_version_names_are_refused(metadata_stub, db, name):
    dataset, _ = await new_dataset(metadata_stub)
    await expect_invalid(db, metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_ref(dataset.id), version=dataset_pb2.Version(name=name))), "version.name")


@pytest.mark.parametrize(("labels", "field"), [
    ([mask([0, 0], "a")], "version.mask_labels[0].value"),
    ([mask([0, 0, 0, 0], "a")], "version.mask_labels[0].value"),
    ([mask([0, 256, 0], "a")], "version.mask_labels[0].value[1]"),
    ([mask([-1, 0, 0], "a")], "version.mask_labels[0].value[0]"),
    ([mask([1, 2, 3])], "version.mask_labels[0].labels"),
    ([mask([1, 2, 3], "")], "version.mask_labels[0].labels[0]"),
    ([mask([1, 2, 3], "a"), mask([1, 2, 3], "b")], "version.mask_labels[1].value"),
])
async def test_invalid_mask_labels_are_refused(metadata_stub, db, labels, field):
    dataset, current = await new_dataset(metadata_stub)
    await expect_invalid(db, metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_ref(dataset.id), version=dataset_pb2.Version(name="m", mask_labels=labels))), field)
    await expect_invalid(db, metadata_stub.UpdateVersion(ms.UpdateVersionRequest(
        version_ref=by_id(current.id), version=dataset_pb2.Version(mask_labels=labels),
        update_mask=field_mask_pb2.FieldMask(paths=["mask_labels"]))), field)


async def test_publishing_twice_is_a_failed_precondition(metadata_stub, db):
    _, current = await new_dataset(metadata_stub)
    await publish(metadata_stub, current.id)
    error = await expect_unchanged(db, publish(metadata_stub, current.id), grpc.StatusCode.FAILED_PRECONDITION)
    assert current.id in error.details()
    failure = next(d for d in error_details(error) if d.DESCRIPTOR.name == "PreconditionFailure")
    assert (failure.violations[0].type, failure.violations[0].subject) == ("VERSION_STATUS", current.id)


async def test_update_version_fields_and_read_only_rules(metadata_stub, db):
    _, current = await new_dataset(metadata_stub)
    meta = metadata_pb2.Metadata(fields={"camera": metadata_pb2.MetadataValue(string_value="front")})
    updated = await metadata_stub.UpdateVersion(ms.UpdateVersionRequest(
        version_ref=by_id(current.id),
        version=dataset_pb2.Version(description="draft one", meta=meta, mask_labels=[mask([9, 9, 9], "road")]),
        update_mask=field_mask_pb2.FieldMask(paths=["description", "meta", "mask_labels"]), etag=current.etag))
    assert updated.description == "draft one" and updated.meta == meta and updated.etag != current.etag
    assert [list(m.labels) for m in updated.mask_labels] == [["road"]]
    published = await publish(metadata_stub, current.id)
    # Renaming and describing stay possible after publishing ...
    renamed = await metadata_stub.UpdateVersion(ms.UpdateVersionRequest(
        version_ref=by_id(current.id), version=dataset_pb2.Version(name="v1.0", description="release"),
        update_mask=field_mask_pb2.FieldMask(paths=["name", "description"])))
    assert (renamed.name, renamed.description, renamed.status) == ("v1.0", "release", PUBLISHED)
    # ... metadata and mask labels do not.
    for path in ("meta", "mask_labels"):
        error = await expect_unchanged(db, metadata_stub.UpdateVersion(ms.UpdateVersionRequest(
            version_ref=by_id(current.id), version=dataset_pb2.Version(mask_labels=[mask([1, 1, 1], "x")], meta=meta),
            update_mask=field_mask_pb2.FieldMask(paths=[path]))), grpc.StatusCode.FAILED_PRECONDITION)
        assert current.id in error.details()
    await expect_unchanged(db, metadata_stub.UpdateVersion(ms.UpdateVersionRequest(
        version_ref=by_id(current.id), version=dataset_pb2.Version(description="x"),
        update_mask=field_mask_pb2.FieldMask(paths=["description"]), etag=published.etag)),
        grpc.StatusCode.ABORTED)
    await expect_invalid(db, metadata_stub.UpdateVersion(ms.UpdateVersionRequest(
        version_ref=by_id(current.id), version=dataset_pb2.Version(name="x"),
        update_mask=field_mask_pb2.FieldMask(paths=["name", "status", "frame_count"]))), "update_mask.paths[2]")


async def test_snapshot_publishes_the_draft_and_opens_a_new_current(metadata_stub, db):
    dataset, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [make_frame(f"f{i}") for i in range(3)])
    # Unset version id and name: the dataset's draft `Current`.
    result = await metadata_stub.SnapshotVersion(ms.SnapshotVersionRequest(
        version=dataset_pb2.VersionRef(dataset=dataset_ref(dataset.id)), description="nightly"))
    snapshot, draft = result.snapshot, result.draft
    assert snapshot.id == current.id and snapshot.status == PUBLISHED and snapshot.description == "nightly"
    assert re.fullmatch(r"snapshot \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", snapshot.name)
    assert (draft.name, draft.status, list(draft.parent_ids), draft.frame_count) == (
        "Current", DRAFT, [snapshot.id], 3)
    assert await visible_frames(db, draft.id) == await visible_frames(db, snapshot.id)
    # Twice in a row: the default names do not collide.
    again = await metadata_stub.SnapshotVersion(ms.SnapshotVersionRequest(version=dataset_pb2.VersionRef(
        dataset=dataset_ref(dataset.id), name="Current")))
    assert again.snapshot.name != snapshot.name and again.draft.parent_ids == [draft.id]
    named = await metadata_stub.SnapshotVersion(ms.SnapshotVersionRequest(
        version=by_id(again.draft.id), snapshot_name="release 1"))
    assert named.snapshot.name == "release 1"


async def test_snapshot_refusals_change_nothing(metadata_stub, db):
    dataset, current = await new_dataset(metadata_stub)
    await metadata_stub.SnapshotVersion(ms.SnapshotVersionRequest(version=by_id(current.id), snapshot_name="s1"))
    error = await expect_unchanged(db, metadata_stub.SnapshotVersion(ms.SnapshotVersionRequest(
        version=by_id(current.id))), grpc.StatusCode.FAILED_PRECONDITION)
    assert current.id in error.details()
    taken = await expect_unchanged(db, metadata_stub.SnapshotVersion(ms.SnapshotVersionRequest(
        version=dataset_pb2.VersionRef(dataset=dataset_ref(dataset.id)), snapshot_name="s1")),
        grpc.StatusCode.ALREADY_EXISTS)
    assert violated_fields(taken) == ["snapshot_name"]
    await expect_invalid(db, metadata_stub.SnapshotVersion(ms.SnapshotVersionRequest(
        version=dataset_pb2.VersionRef(dataset=dataset_ref(dataset.id)), snapshot_name="bad;name")),
        "snapshot_name")
    await expect_invalid(db, metadata_stub.SnapshotVersion(ms.SnapshotVersionRequest()), "version.dataset")


async def test_list_versions_with_parent_links_oldest_first_paginated(metadata_stub, db):
    dataset, current = await new_dataset(metadata_stub)
    made = [current.id]
    parent = current
    for _ in range(4):
        step = await metadata_stub.SnapshotVersion(ms.SnapshotVersionRequest(version=by_id(parent.id)))
        made.append(step.draft.id)
        parent = step.draft
    seen: list[dataset_pb2.Version] = []
    token = ""
    while True:
        page = await metadata_stub.ListVersions(ms.ListVersionsRequest(
            dataset=dataset_ref(dataset.id), page_size=2, page_token=token))
        seen += page.versions
        token = page.next_page_token
        if not token:
            break
    assert [v.id for v in seen] == made
    assert [list(v.parent_ids) for v in seen] == [[]] + [[made[i]] for i in range(4)]
    await expect_invalid(db, metadata_stub.ListVersions(ms.ListVersionsRequest(
        dataset=dataset_ref(dataset.id), page_token="garbage")), "page_token")
    other, _ = await new_dataset(metadata_stub)
    first = await metadata_stub.ListVersions(ms.ListVersionsRequest(dataset=dataset_ref(dataset.id), page_size=1))
    await expect_invalid(db, metadata_stub.ListVersions(ms.ListVersionsRequest(
        dataset=dataset_ref(other.id), page_token=first.next_page_token)), "page_token")
    await expect_invalid(db, metadata_stub.ListVersions(ms.ListVersionsRequest(
        dataset=dataset_ref(dataset.id), page_size=5000)), "page_size")


async def test_delete_draft_removes_its_revisions_and_visibility_markers(metadata_stub, db):
    _, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [make_frame(f"f{i}") for i in range(3)])
    parent = await publish(metadata_stub, current.id)
    child = await child_of(metadata_stub, parent)
    await write_frames(metadata_stub, child.id, [make_frame("f0", note="#x"), make_frame("g")])
    from .helpers import delete_frames
    await delete_frames(metadata_stub, child.id, ["f1"])
    assert await db.frames.count_documents({"hidden_in": child.id}) == 2
    deleted = await metadata_stub.DeleteVersion(ms.DeleteVersionRequest(version=by_id(child.id)))
    assert deleted.deleted_frames == 2
    assert await db.frames.count_documents({"version_id": child.id}) == 0
    assert await db.frames.count_documents({"hidden_in": child.id}) == 0
    await expect_error(metadata_stub.GetVersion(ms.GetVersionRequest(version=by_id(child.id))),
                       grpc.StatusCode.NOT_FOUND)


async def test_deleting_a_published_version_is_refused(metadata_stub, db):
    _, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [make_frame("a")])
    await publish(metadata_stub, current.id)
    error = await expect_unchanged(db, metadata_stub.DeleteVersion(ms.DeleteVersionRequest(
        version=by_id(current.id))), grpc.StatusCode.FAILED_PRECONDITION)
    assert current.id in error.details()


async def test_a_draft_with_children_cannot_be_deleted(metadata_stub, db):
    # Drafts have no children through the API; a stored one must still be respected.
    dataset, current = await new_dataset(metadata_stub)
    await db.versions.insert_one({**(await db.versions.find_one({"_id": current.id})),
                                  "_id": "f" * 24, "name": unique_name(), "parent_ids": [current.id]})
    try:
        error = await expect_unchanged(db, metadata_stub.DeleteVersion(ms.DeleteVersionRequest(
            version=by_id(current.id))), grpc.StatusCode.FAILED_PRECONDITION)
        assert "child" in error.details()
    finally:
        await db.versions.delete_one({"_id": "f" * 24})
