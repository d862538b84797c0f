"""Datasets through the gRPC API on the real mongod."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import field_mask_pb2

from framevault.v1 import dataset_pb2, metadata_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import (
    by_id,
    child_of,
    dataset_ref,
    expect_error,
    expect_invalid,
    expect_unchanged,
    make_frame,
    new_dataset,
    publish,
    resource_info,
    unique_name,
    violated_fields,
    write_frames,
)


async def test_create_makes_an_empty_draft_current(metadata_stub):
    name = unique_name()
    dataset = await metadata_stub.CreateDataset(ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(
        name=name, description="street scenes", tags=["cars", "city"],
        meta=metadata_pb2.Metadata(fields={"owner": metadata_pb2.MetadataValue(string_value="perception")}))))
    assert len(dataset.id) == 24 and dataset.name == name and list(dataset.tags) == ["cars", "city"]
    assert dataset.meta.fields["owner"].string_value == "perception" and dataset.etag
    listed = await metadata_stub.ListVersions(ms.ListVersionsRequest(dataset=dataset_ref(dataset.id)))
    assert [(v.name, v.status, v.frame_count, list(v.parent_ids)) for v in listed.versions] == [
        ("Current", dataset_pb2.VERSION_STATUS_DRAFT, 0, [])]


async def test_create_returns_the_existing_dataset_or_fails_if_asked(metadata_stub, db):
    dataset, _ = await new_dataset(metadata_stub)
    again = await metadata_stub.CreateDataset(ms.CreateDatasetRequest(
        dataset=dataset_pb2.Dataset(name=dataset.name, description="other")))
    assert again == dataset
    error = await expect_unchanged(db, metadata_stub.CreateDataset(ms.CreateDatasetRequest(
        dataset=dataset_pb2.Dataset(name=dataset.name), fail_if_exists=True)), grpc.StatusCode.ALREADY_EXISTS)
    info = resource_info(error)
    assert info is not None and info.resource_type == "dataset" and info.resource_name == dataset.name
    assert violated_fields(error) == ["dataset.name"]


async def test_concurrent_creates_of_one_name_make_one_dataset(metadata_stub, db):
    name = unique_name()
    results = await asyncio.gather(*(
        metadata_stub.CreateDataset(ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name)))
        for _ in range(6)))
    assert len({r.id for r in results}) == 1
    assert await db.datasets.count_documents({"name": name}) == 1
    assert await db.versions.count_documents({"dataset_id": results[0].id}) == 1


async def test_get_by_id_and_by_name(metadata_stub):
    dataset, _ = await new_dataset(metadata_stub)
    assert await metadata_stub.GetDataset(ms.GetDatasetRequest(dataset=dataset_ref(dataset.id))) == dataset
    by_name = await metadata_stub.GetDataset(ms.GetDatasetRequest(dataset=dataset_pb2.DatasetRef(name=dataset.name)))
    assert by_name == dataset


@pytest.mark.parametrize(("ref", "field"), [
    (dataset_pb2.DatasetRef(id="0123456789abcdef01234567"), "dataset.id"),
    (dataset_pb2.DatasetRef(name="no such dataset"), "dataset.name"),
])
async def test_get_unknown_dataset_is_not_found_with_resource_info(metadata_stub, ref, field):
    error = await expect_error(metadata_stub.GetDataset(ms.GetDatasetRequest(dataset=ref)), grpc.StatusCode.NOT_FOUND)
    info = resource_info(error)
    assert info is not None and info.resource_type == "dataset"
    assert violated_fields(error) == [field]


@pytest.mark.parametrize(("ref", "field"), [
    (dataset_pb2.DatasetRef(), "dataset"),
    (dataset_pb2.DatasetRef(id="xyz"), "dataset.id"),
    (dataset_pb2.DatasetRef(name=""), "dataset.name"),
])
async def test_get_with_a_malformed_ref_is_invalid(metadata_stub, db, ref, field):
    await expect_invalid(db, metadata_stub.GetDataset(ms.GetDatasetRequest(dataset=ref)), field)


@pytest.mark.parametrize(("name", "why"), [
    ("", "empty"),
    ("x" * 129, "oversized"),
    (" leading", "leading space"),
    ("trailing ", "trailing space"),
    ("semi;colon", "ill-formed"),
    ("dollar$", "ill-formed"),
    ("new\nline", "ill-formed"),
])
async def test_bad_dataset_names_are_refused(metadata_stub, db, name, why):
    await expect_invalid(db, metadata_stub.CreateDataset(ms.CreateDatasetRequest(
        dataset=dataset_pb2.Dataset(name=name))), "dataset.name")


async def test_names_allow_letters_digits_and_the_documented_punctuation(metadata_stub):
    name = f"Straßen 2024_v1-a.b:c/d (ü) {unique_name()}"
    dataset, current = await new_dataset(metadata_stub, name=name)
    assert dataset.name == name and current.name == "Current"
    assert len("x" * 128) == 128
    await new_dataset(metadata_stub, name=("n" + unique_name()).ljust(128, "x"))


async def test_bad_description_tags_and_meta_name_their_fields(metadata_stub, db):
    request = ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(
        name=unique_name(), description="d" * 4097, tags=["ok", "", "t" * 65, "ok"],
        meta=metadata_pb2.Metadata(fields={"$where": metadata_pb2.MetadataValue(bool_value=True)})))
    error = await expect_invalid(db, metadata_stub.CreateDataset(request), "dataset.description")
    assert set(violated_fields(error)) == {
        "dataset.description", "dataset.tags[1]", "dataset.tags[2]", "dataset.tags[3]", "dataset.meta.$where"}


async def test_list_filters_by_prefix_and_tags_and_pages_by_name(metadata_stub, db):
    prefix = unique_name("list")
    names = [f"{prefix}-{i:02d}" for i in range(7)]
    for i, name in enumerate(reversed(names)):
        await new_dataset(metadata_stub, name=name, tags=["even"] if (6 - i) % 2 == 0 else ["odd"])
    await new_dataset(metadata_stub, name=prefix[:-1])  # shares all but the last character
    seen: list[str] = []
    token = ""
    while True:
        page = await metadata_stub.ListDatasets(ms.ListDatasetsRequest(name_prefix=prefix, page_size=3,
                                                                       page_token=token))
        assert len(page.datasets) <= 3
        seen += [d.name for d in page.datasets]
        token = page.next_page_token
        if not token:
            break
    assert seen == names
    tagged = await metadata_stub.ListDatasets(ms.ListDatasetsRequest(name_prefix=prefix, tags=["even"]))
    assert [d.name for d in tagged.datasets] == names[0::2]
    assert not tagged.next_page_token


async def test_list_refuses_tampered_or_foreign_page_tokens(metadata_stub, db):
    prefix = unique_name("tok")
    for i in range(3):
        await new_dataset(metadata_stub, name=f"{prefix}-{i}")
    page = await metadata_stub.ListDatasets(ms.ListDatasetsRequest(name_prefix=prefix, page_size=1))
    token = page.next_page_token
    assert token
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (tampered, "not base64 at all!", token + "x", "e30"):
        await expect_invalid(db, metadata_stub.ListDatasets(ms.ListDatasetsRequest(
            name_prefix=prefix, page_size=1, page_token=bad)), "page_token")
    # A token is bound to the filters it was issued for.
    await expect_invalid(db, metadata_stub.ListDatasets(ms.ListDatasetsRequest(
        name_prefix=prefix + "-", page_size=1, page_token=token)), "page_token")


@pytest.mark.parametrize("page_size", [-1, 1001])
async def test_list_refuses_bad_page_sizes(metadata_stub, db, page_size):
    await expect_invalid(db, metadata_stub.ListDatasets(ms.ListDatasetsRequest(page_size=page_size)), "page_size")


async def test_update_with_a_field_mask(metadata_stub):
    dataset, _ = await new_dataset(metadata_stub, description="old", tags=["a"])
    new_name = unique_name()
    updated = await metadata_stub.UpdateDataset(ms.UpdateDatasetRequest(
        dataset_ref=dataset_ref(dataset.id),
        dataset=dataset_pb2.Dataset(name=new_name, description="ignored: not in mask", tags=["b", "c"]),
        update_mask=field_mask_pb2.FieldMask(paths=["name", "tags"]), etag=dataset.etag))
    assert (updated.name, updated.description, list(updated.tags)) == (new_name, "old", ["b", "c"])
    assert updated.etag != dataset.etag
    assert updated.update_time.ToDatetime() >= dataset.update_time.ToDatetime()
    # Without a mask, the fields that are set.
    described = await metadata_stub.UpdateDataset(ms.UpdateDatasetRequest(
        dataset_ref=dataset_pb2.DatasetRef(name=new_name), dataset=dataset_pb2.Dataset(description="new")))
    assert (described.name, described.description, list(described.tags)) == (new_name, "new", ["b", "c"])


async def test_update_refusals_change_nothing(metadata_stub, db):
    dataset, _ = await new_dataset(metadata_stub)
    other, _ = await new_dataset(metadata_stub)
    ref = dataset_ref(dataset.id)
    await expect_invalid(db, metadata_stub.UpdateDataset(ms.UpdateDatasetRequest(
        dataset_ref=ref, dataset=dataset_pb2.Dataset(name="x"),
        update_mask=field_mask_pb2.FieldMask(paths=["name", "id", "create_time"]))), "update_mask.paths[1]")
    await expect_invalid(db, metadata_stub.UpdateDataset(ms.UpdateDatasetRequest(
        dataset_ref=ref, dataset=dataset_pb2.Dataset(name="bad;name"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"]))), "dataset.name")
    await expect_invalid(db, metadata_stub.UpdateDataset(ms.UpdateDatasetRequest(dataset_ref=ref)), "update_mask")
    taken = await expect_unchanged(db, metadata_stub.UpdateDataset(ms.UpdateDatasetRequest(
        dataset_ref=ref, dataset=dataset_pb2.Dataset(name=other.name),
        update_mask=field_mask_pb2.FieldMask(paths=["name"]))), grpc.StatusCode.ALREADY_EXISTS)
    assert violated_fields(taken) == ["dataset.name"]
    await expect_unchanged(db, metadata_stub.UpdateDataset(ms.UpdateDatasetRequest(
        dataset_ref=ref, dataset=dataset_pb2.Dataset(description="d"),
        update_mask=field_mask_pb2.FieldMask(paths=["description"]), etag="stale")), grpc.StatusCode.ABORTED)
    await expect_unchanged(db, metadata_stub.UpdateDataset(ms.UpdateDatasetRequest(
        dataset_ref=dataset_pb2.DatasetRef(name=unique_name()), dataset=dataset_pb2.Dataset(description="d"))),
        grpc.StatusCode.NOT_FOUND)


async def test_delete_is_refused_while_published_versions_exist_unless_forced(metadata_stub, db):
    dataset, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [make_frame(f"f{i}") for i in range(5)])
    await publish(metadata_stub, current.id)
    child = await child_of(metadata_stub, current)
    await write_frames(metadata_stub, child.id, [make_frame("f0", note="#2"), make_frame("f9")])
    error = await expect_unchanged(db, metadata_stub.DeleteDataset(ms.DeleteDatasetRequest(
        dataset=dataset_ref(dataset.id))), grpc.StatusCode.FAILED_PRECONDITION)
    assert "published" in error.details()
    deleted = await metadata_stub.DeleteDataset(ms.DeleteDatasetRequest(dataset=dataset_ref(dataset.id), force=True))
    assert (deleted.deleted_versions, deleted.deleted_frames) == (2, 7)
    assert await db.frames.count_documents({"dataset_id": dataset.id}) == 0
    assert await db.versions.count_documents({"dataset_id": dataset.id}) == 0
    await expect_error(metadata_stub.GetDataset(ms.GetDatasetRequest(dataset=dataset_ref(dataset.id))),
                       grpc.StatusCode.NOT_FOUND)
    await expect_error(metadata_stub.GetVersion(ms.GetVersionRequest(version=by_id(child.id))),
                       grpc.StatusCode.NOT_FOUND)
    # The name is free again.
    again, _ = await new_dataset(metadata_stub, name=dataset.name)
    assert again.id != dataset.id


async def test_delete_of_drafts_only_needs_no_force(metadata_stub, db):
    dataset, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [make_frame("a"), make_frame("b")])
    deleted = await metadata_stub.DeleteDataset(ms.DeleteDatasetRequest(dataset=dataset_pb2.DatasetRef(
        name=dataset.name)))
    assert (deleted.deleted_versions, deleted.deleted_frames) == (1, 2)
    await expect_unchanged(db, metadata_stub.DeleteDataset(ms.DeleteDatasetRequest(dataset=dataset_ref(dataset.id))),
                           grpc.StatusCode.NOT_FOUND)


async def test_an_interrupted_delete_is_finished_by_repeating_it(metadata_stub, db):
    dataset, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [make_frame("a"), make_frame("b"), make_frame("c")])
    # As if the service stopped right after the delete transaction.
    await db.versions.delete_many({"dataset_id": dataset.id})
    await db.datasets.delete_one({"_id": dataset.id})
    deleted = await metadata_stub.DeleteDataset(ms.DeleteDatasetRequest(dataset=dataset_ref(dataset.id)))
    assert (deleted.deleted_versions, deleted.deleted_frames) == (0, 3)
    assert await db.frames.count_documents({"dataset_id": dataset.id}) == 0
