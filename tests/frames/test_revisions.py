"""The revision write path used directly, as merges do: documents read from
one version written into another draft, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bson
import grpc
import pytest
from grpc import aio
from support import error_details

from framevault.common.errors import FailedPrecondition
from framevault.metadata.db import Database
from framevault.metadata.frames.mongo_store import MongoFrameStore
from framevault.metadata.frames.revisions import (
    Written,
    delete_revisions,
    find_version_with_revision,
    find_visible_revisions,
    write_revisions,
)
from framevault.metadata.frames.write_leases import write_lease
from framevault.metadata.transactions import transaction
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import (
    CREATED,
    by_id,
    child_of,
    count_frames,
    get_frame,
    handle,
    image_frame,
    items,
    new_draft,
    publish,
    upload,
    visible_count,
)

pytestmark = pytest.mark.usefixtures("frames_db")


def as_decoded(revision: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if revision is None else bson.decode(bson.encode(revision))


async def test_documents_of_one_version_written_into_another(metadata_stub, frames_db: Database):
    store = MongoFrameStore(frames_db)
    source = await new_draft(metadata_stub)
    run = await upload(metadata_stub, source.id, items([image_frame("a", labels=["theirs"]),
                                                        image_frame("b", labels=["theirs"])]))
    assert run.outcomes() == [CREATED, CREATED]
    target = await new_draft(metadata_stub)
    await upload(metadata_stub, target.id, items([image_frame("a", labels=["ours"])]))

    theirs = await handle(frames_db, source.id)
    docs = list((await find_visible_revisions(store, theirs, ["a", "b"], fields=None)).values())
    ours = await handle(frames_db, target.id)
    async with write_lease(store, ours) as lease, transaction(frames_db) as session:
        created = await write_revisions(store, session, lease, docs)
    assert dict(zip((d["frame_id"] for d in docs), created, strict=True)) == {
        "a": Written.UPDATED, "b": Written.CREATED}
    written = await get_frame(metadata_stub, target.id, "a")
    assert list(written.rois[0].labels) == ["theirs"] and written.saved_in_version == target.id
    assert await count_frames(metadata_stub, target.id) == 2 == await visible_count(frames_db, target.id)
    assert await count_frames(metadata_stub, source.id) == 2  # the source is untouched

    async with write_lease(store, ours) as lease, transaction(frames_db) as session:
        gone = await delete_revisions(store, session, lease, ["a", "zzz"])
    assert gone == {"a"}
    assert await count_frames(metadata_stub, target.id) == 1 == await visible_count(frames_db, target.id)


async def test_a_published_version_refuses_the_whole_transaction(metadata_stub, frames_db: Database):
    store = MongoFrameStore(frames_db)
    version = await new_draft(metadata_stub)
    await upload(metadata_stub, version.id, items([image_frame("kept")]))
    draft_handle = await handle(frames_db, version.id)
    docs = list((await find_visible_revisions(store, draft_handle, ["kept"], fields=None)).values())
    async with write_lease(store, draft_handle) as lease:  # taken while it was a draft
        await publish(metadata_stub, version.id)
        with pytest.raises(FailedPrecondition):
            async with transaction(frames_db) as session:
                await write_revisions(store, session, lease, docs + [{**docs[0], "frame_id": "new"}])
    with pytest.raises(FailedPrecondition):  # the same lease again, from the process's idle leases
        async with write_lease(store, draft_handle) as lease, transaction(frames_db) as session:
            await write_revisions(store, session, lease, docs)
    assert await frames_db.frames.count_documents({"version_id": version.id}) == 1
    published = await metadata_stub.GetVersion(ms.GetVersionRequest(version=by_id(version.id)))
    child = await child_of(metadata_stub, published)
    with pytest.raises(aio.AioRpcError) as caught:
        await get_frame(metadata_stub, child.id, "new")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_one_round_trip_lookup_sees_what_the_visibility_rules_see(metadata_stub, frames_db: Database):
    store = MongoFrameStore(frames_db)
    parent = await new_draft(metadata_stub)
    await upload(metadata_stub, parent.id, items([image_frame(f) for f in ("kept", "replaced", "removed")]))
    parent = await publish(metadata_stub, parent.id)
    child = await child_of(metadata_stub, parent)
    await upload(metadata_stub, child.id, items([image_frame("replaced", labels=["new"]), image_frame("added")]))
    await metadata_stub.DeleteFrames(ms.DeleteFramesRequest(version=by_id(child.id), frame_ids=["removed"]))

    for version_id in (parent.id, child.id):
        version = await handle(frames_db, version_id)
        for frame_id in ("kept", "replaced", "removed", "added", "never"):
            expected = (await find_visible_revisions(store, version, [frame_id], fields=None)).get(frame_id)
            found = await find_version_with_revision(store, version_id, frame_id)
            # Once the version is known its revisions come as stored (BSON): compared decoded.
            assert found is not None and found[0] == version, (version_id, frame_id)
            assert as_decoded(found[1]) == expected, (version_id, frame_id)
    assert await find_version_with_revision(store, "0123456789abcdef01234567", "kept") is None
    assert (await get_frame(metadata_stub, child.id, "replaced")).saved_in_version == child.id
    assert (await get_frame(metadata_stub, child.id, "kept")).saved_in_version == parent.id
    unknown = "0123456789abcdef01234567"
    with pytest.raises(aio.AioRpcError) as by_id_error:
        await get_frame(metadata_stub, unknown, "kept")
    with pytest.raises(aio.AioRpcError) as counted_error:
        await count_frames(metadata_stub, unknown)
    assert by_id_error.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(by_id_error.value) == error_details(counted_error.value)
    assert by_id_error.value.details() == counted_error.value.details()
