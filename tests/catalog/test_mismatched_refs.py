"""Version references whose dataset does not match the version.

A reference names a version by id or name and may name its dataset too. When
the dataset does not resolve, or is another dataset than the version's, the
reference names no version: every call answers NOT_FOUND without saying
where the version lives, and nothing stored changes — least of all the frames
of a published version that children inherit.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from grpc import aio

from framevault.v1 import dataset_pb2, metadata_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import (
    by_id,
    child_of,
    database_state,
    dataset_ref,
    expect_unchanged,
    make_frame,
    new_dataset,
    publish,
    resource_info,
    visible_frames,
    write_frames,
)

UNKNOWN_DATASET = "000000000000000000000000"


def mismatched(version_id: str, other_dataset_id: str) -> dict[str, dataset_pb2.VersionRef]:
    """References to ``version_id`` under a dataset that is not its own."""
    return {
        "unknown dataset id": dataset_pb2.VersionRef(id=version_id, dataset=dataset_ref(UNKNOWN_DATASET)),
        "unknown dataset name": dataset_pb2.VersionRef(
            id=version_id, dataset=dataset_pb2.DatasetRef(name="no such dataset")),
        "another dataset": dataset_pb2.VersionRef(id=version_id, dataset=dataset_ref(other_dataset_id)),
    }


async def lineage_with_published_parent(stub: Any) -> tuple[dataset_pb2.Version, dataset_pb2.Version,
                                                              dataset_pb2.Version]:
    """A published parent with frames, its child draft inheriting them, and
    an unrelated dataset's draft."""
    _, current = await new_dataset(stub)
    await write_frames(stub, current.id, [make_frame(f"f{i}") for i in range(5)])
    parent = await publish(stub, current.id)
    child = await child_of(stub, parent)
    await write_frames(stub, child.id, [make_frame("f0", note="#child"), make_frame("only-in-child")])
    _, elsewhere = await new_dataset(stub)
    return parent, child, elsewhere


async def frames_and_counts(stub: Any, db: Any, *versions: dataset_pb2.Version) -> list[Any]:
    seen = []
    for version in versions:
        counted = await stub.CountFrames(ms.CountFramesRequest(version=by_id(version.id)))
        got = await stub.GetVersion(ms.GetVersionRequest(version=by_id(version.id)))
        seen.append((await visible_frames(db, version.id), counted.count, got.frame_count, got.status, got.etag))
    return seen


async def expect_not_found_and_unchanged(db: Any, call: Any, version: dataset_pb2.Version) -> None:
    error = await expect_unchanged(db, call, grpc.StatusCode.NOT_FOUND)
    # Which dataset really holds the version is not revealed.
    info = resource_info(error)
    assert info.resource_type in ("version", "dataset")
    assert version.dataset_id not in f"{error.details()} {info}" and "belongs" not in error.details()


async def upload_one(stub: Any, ref: dataset_pb2.VersionRef) -> None:
    call = stub.UploadFrames()
    await call.write(ms.UploadFramesRequest(options=ms.UploadOptions(version=ref)))
    await call.write(ms.UploadFramesRequest(items=[ms.UploadItem(frame=make_frame("intruder"))]))
    await call.done_writing()
    while await call.read() is not aio.EOF:
        pass


async def test_delete_version_with_a_mismatched_dataset_deletes_nothing(metadata_stub, db):
    parent, child, elsewhere = await lineage_with_published_parent(metadata_stub)
    before = await frames_and_counts(metadata_stub, db, parent, child, elsewhere)
    for target in (parent, child):
        for ref in mismatched(target.id, elsewhere.dataset_id).values():
            await expect_not_found_and_unchanged(
                db, metadata_stub.DeleteVersion(ms.DeleteVersionRequest(version=ref)), target)
    assert await frames_and_counts(metadata_stub, db, parent, child, elsewhere) == before
    assert len(before[1][0]) == 6 and before[1][1] == 6


async def test_version_writes_with_a_mismatched_dataset_change_nothing(metadata_stub, db):
    parent, child, elsewhere = await lineage_with_published_parent(metadata_stub)
    before = await frames_and_counts(metadata_stub, db, parent, child, elsewhere)
    meta = metadata_pb2.Metadata(fields={"k": metadata_pb2.MetadataValue(string_value="v")})
    for target in (parent, child):
        for ref in mismatched(target.id, elsewhere.dataset_id).values():
            calls = [
                metadata_stub.UpdateVersion(ms.UpdateVersionRequest(
                    version_ref=ref, version=dataset_pb2.Version(name="renamed", description="d", meta=meta),
                    update_mask=field_mask_pb2.FieldMask(paths=["name", "description", "meta"]))),
                metadata_stub.PublishVersion(ms.PublishVersionRequest(version=ref)),
                metadata_stub.SnapshotVersion(ms.SnapshotVersionRequest(version=ref)),
                metadata_stub.DeleteFrames(ms.DeleteFramesRequest(version=ref, frame_ids=["f0", "f1"])),
                metadata_stub.UpdateFrame(ms.UpdateFrameRequest(
                    version=ref, frame=make_frame("f1", note="#changed"))),
                upload_one(metadata_stub, ref),
            ]
            for call in calls:
                await expect_not_found_and_unchanged(db, call, target)
    assert await frames_and_counts(metadata_stub, db, parent, child, elsewhere) == before


@pytest.mark.parametrize("case", ["unknown dataset id", "unknown dataset name", "another dataset"])
async def test_reads_with_a_mismatched_dataset_are_not_found(metadata_stub, db, case):
    parent, _, elsewhere = await lineage_with_published_parent(metadata_stub)
    ref = mismatched(parent.id, elsewhere.dataset_id)[case]
    for call in (
        metadata_stub.GetVersion(ms.GetVersionRequest(version=ref)),
        metadata_stub.GetFrame(ms.GetFrameRequest(version=ref, frame_id="f0")),
        metadata_stub.CountFrames(ms.CountFramesRequest(version=ref)),
        metadata_stub.ListFrames(ms.ListFramesRequest(version=ref)),
        metadata_stub.GetVersionStatistics(ms.GetVersionStatisticsRequest(version=ref)),
    ):
        await expect_not_found_and_unchanged(db, call, parent)


async def test_an_interrupted_draft_delete_is_finished_by_the_same_call(metadata_stub, db):
    # The version document went first and the purge of its revisions did not
    # run: the same DeleteVersion by id removes what is left.
    dataset, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [make_frame("a"), make_frame("b")])
    await db.versions.delete_one({"_id": current.id})
    state = await database_state(db)
    deleted = await metadata_stub.DeleteVersion(ms.DeleteVersionRequest(version=dataset_pb2.VersionRef(
        id=current.id, dataset=dataset_ref(dataset.id))))
    assert deleted.deleted_frames == 2 and await database_state(db) != state
    assert await db.frames.count_documents({"version_id": current.id}) == 0


async def test_leftovers_of_a_version_that_still_has_children_are_kept(metadata_stub, db):
    # A version document can only be gone with no descendants; should one
    # remain anyway, the revisions it inherits are not left-overs.
    parent, child, _ = await lineage_with_published_parent(metadata_stub)
    saved = await db.versions.find_one({"_id": parent.id})
    await db.versions.delete_one({"_id": parent.id})
    try:
        await expect_unchanged(db, metadata_stub.DeleteVersion(ms.DeleteVersionRequest(version=by_id(parent.id))),
                               grpc.StatusCode.NOT_FOUND)
        assert len(await visible_frames(db, child.id)) == 6
    finally:
        await db.versions.insert_one(saved)


async def test_revisions_of_a_dataset_that_still_has_versions_are_kept(metadata_stub, db):
    # Same for datasets: the recovery of an interrupted DeleteDataset purges
    # revisions only once no version of the dataset remains.
    parent, child, _ = await lineage_with_published_parent(metadata_stub)
    saved = await db.datasets.find_one({"_id": parent.dataset_id})
    await db.datasets.delete_one({"_id": parent.dataset_id})
    try:
        await expect_unchanged(db, metadata_stub.DeleteDataset(ms.DeleteDatasetRequest(
            dataset=dataset_ref(parent.dataset_id))), grpc.StatusCode.NOT_FOUND)
        assert len(await visible_frames(db, child.id)) == 6
    finally:
        await db.datasets.insert_one(saved)
