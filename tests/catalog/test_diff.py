"""DiffVersions: frames added, changed and removed, streamed by frame id."""

from __future__ import annotations

import grpc

from framevault.metadata.catalog.diff import differences
from framevault.metadata.catalog.mongo_store import MongoCatalogStore
from framevault.metadata.catalog.revisions import ReadCounter
from framevault.v1 import dataset_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import (
    by_id,
    child_of,
    dataset_ref,
    delete_frames,
    expect_error,
    expect_invalid,
    make_frame,
    new_dataset,
    publish,
    version_handle,
    write_frames,
)

ADDED, CHANGED, REMOVED = ms.FrameChange.KIND_ADDED, ms.FrameChange.KIND_CHANGED, ms.FrameChange.KIND_REMOVED


async def diff(stub, base: str, target: str, include_frames: bool = False) -> list[ms.FrameChange]:
    messages = [m async for m in stub.DiffVersions(ms.DiffVersionsRequest(
        base=by_id(base), target=by_id(target), include_frames=include_frames))]
    assert all(m.changes for m in messages)
    return [c for m in messages for c in m.changes]


async def published_with(stub, db, frames) -> dataset_pb2.Version:
    _, current = await new_dataset(stub)
    await write_frames(stub, current.id, frames)
    return await publish(stub, current.id)


async def test_diff_between_siblings_with_frames(metadata_stub, db):
    parent = await published_with(metadata_stub, db, [make_frame(f"f{i}") for i in range(6)])
    left, right = await child_of(metadata_stub, parent), await child_of(metadata_stub, parent)
    await write_frames(metadata_stub, left.id, [make_frame("f1", note="#left"), make_frame("only-left")])
    await delete_frames(metadata_stub, left.id, ["f2"])
    await write_frames(metadata_stub, right.id, [make_frame("f3", note="#right"), make_frame("f1", note="#left")])
    await delete_frames(metadata_stub, right.id, ["f4"])
    changes = await diff(metadata_stub, left.id, right.id, include_frames=True)
    assert [(c.frame_id, c.kind) for c in changes] == [
        ("f2", ADDED), ("f3", CHANGED), ("f4", REMOVED), ("only-left", REMOVED)]
    by_frame = {c.frame_id: c for c in changes}
    assert by_frame["f3"].target.sources[0].uri.endswith("#right") and by_frame["f3"].target.version_id == right.id
    assert by_frame["f3"].base.saved_in_version == parent.id and by_frame["f3"].base.version_id == left.id
    assert by_frame["f2"].target.id == "f2" and not by_frame["f2"].HasField("base")
    assert by_frame["f4"].base.id == "f4" and not by_frame["f4"].HasField("target")
    # The same edit on both sides (f1) is no difference. Without frames, ids only.
    plain = await diff(metadata_stub, right.id, left.id)
    assert [(c.frame_id, c.kind) for c in plain] == [
        ("f2", REMOVED), ("f3", CHANGED), ("f4", ADDED), ("only-left", ADDED)]
    assert not any(c.HasField("base") or c.HasField("target") for c in plain)


async def test_diff_over_several_generations_ignores_undone_changes(metadata_stub, db):
    root = await published_with(metadata_stub, db, [make_frame(f"f{i}") for i in range(4)])
    middle = await child_of(metadata_stub, root)
    await write_frames(metadata_stub, middle.id, [make_frame("f0", note="#tmp"), make_frame("temp")])
    middle = await publish(metadata_stub, middle.id)
    leaf = await child_of(metadata_stub, middle)
    await write_frames(metadata_stub, leaf.id, [make_frame("f0")])  # back to the root's content
    await delete_frames(metadata_stub, leaf.id, ["temp", "f3"])
    assert [(c.frame_id, c.kind) for c in await diff(metadata_stub, root.id, leaf.id)] == [("f3", REMOVED)]
    assert [(c.frame_id, c.kind) for c in await diff(metadata_stub, middle.id, leaf.id)] == [
        ("f0", CHANGED), ("f3", REMOVED), ("temp", REMOVED)]
    assert await diff(metadata_stub, leaf.id, leaf.id) == []


async def test_diff_between_unrelated_roots_compares_everything(metadata_stub, db):
    dataset, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [make_frame("a"), make_frame("b"), make_frame("c")])
    other = await metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_ref(dataset.id), version=dataset_pb2.Version(name="other root")))
    await write_frames(metadata_stub, other.id, [make_frame("b"), make_frame("c", note="#2"), make_frame("d")])
    assert [(c.frame_id, c.kind) for c in await diff(metadata_stub, current.id, other.id)] == [
        ("a", REMOVED), ("c", CHANGED), ("d", ADDED)]


async def test_large_diffs_stream_in_several_ordered_messages(metadata_stub, db):
    parent = await published_with(metadata_stub, db, [make_frame(f"p{i:04d}") for i in range(300)])
    child = await child_of(metadata_stub, parent)
    await write_frames(metadata_stub, child.id, [make_frame(f"c{i:04d}") for i in range(900)])
    await delete_frames(metadata_stub, child.id, [f"p{i:04d}" for i in range(0, 300, 2)])
    messages = [m async for m in metadata_stub.DiffVersions(ms.DiffVersionsRequest(
        base=by_id(parent.id), target=by_id(child.id)))]
    assert len(messages) >= 2
    ids = [c.frame_id for m in messages for c in m.changes]
    assert ids == sorted(ids) and len(ids) == 900 + 150
    # Each message but the last carries the cursor that continues after it.
    assert all(m.cursor for m in messages[:-1]) and messages[-1].cursor == ""
    rest = [m async for m in metadata_stub.DiffVersions(ms.DiffVersionsRequest(
        base=by_id(parent.id), target=by_id(child.id), resume_cursor=messages[0].cursor))]
    assert [c.frame_id for m in rest for c in m.changes] == ids[len(messages[0].changes):]


async def diff_page(stub, base: str, target: str, max_changes: int, cursor: str = "", **fields
                    ) -> tuple[list[ms.FrameChange], str]:
    messages = [m async for m in stub.DiffVersions(ms.DiffVersionsRequest(
        base=by_id(base), target=by_id(target), max_changes=max_changes, resume_cursor=cursor, **fields))]
    return [c for m in messages for c in m.changes], messages[-1].cursor if messages else ""


async def test_diff_pages_continue_after_the_cursor(metadata_stub, db):
    parent = await published_with(metadata_stub, db, [make_frame(f"p{i:02d}") for i in range(20)])
    child = await child_of(metadata_stub, parent)
    await write_frames(metadata_stub, child.id, [make_frame(f"p{i:02d}", note="#edit") for i in range(0, 20, 3)]
                       + [make_frame(f"n{i:02d}") for i in range(15)])
    await delete_frames(metadata_stub, child.id, [f"p{i:02d}" for i in range(1, 20, 3)])
    whole = [(c.frame_id, c.kind) for c in await diff(metadata_stub, parent.id, child.id)]
    assert len(whole) == 7 + 15 + 7
    pages, cursor = [], ""
    while True:
        changes, cursor = await diff_page(metadata_stub, parent.id, child.id, 4, cursor, include_frames=True)
        assert 1 <= len(changes) <= 4
        pages.append(changes)
        if not cursor:
            break
    assert [(c.frame_id, c.kind) for page in pages for c in page] == whole
    assert [len(page) for page in pages] == [4] * 7 + [1]
    assert pages[1][0].target.id == whole[4][0]
    # A page that ends exactly with the diff says so: no cursor.
    last, cursor = await diff_page(metadata_stub, parent.id, child.id, 29)
    assert len(last) == 29 and cursor == ""
    # A cursor is bound to its pair of versions, not to the page size or the frames asked for.
    first, cursor = await diff_page(metadata_stub, parent.id, child.id, 10)
    rest, end = await diff_page(metadata_stub, parent.id, child.id, 0, cursor)
    assert [(c.frame_id, c.kind) for c in first + rest] == whole and end == ""


async def test_a_diff_cursor_is_refused_by_any_other_diff(metadata_stub, db):
    parent = await published_with(metadata_stub, db, [make_frame(f"f{i}") for i in range(4)])
    child, other = await child_of(metadata_stub, parent), await child_of(metadata_stub, parent)
    await write_frames(metadata_stub, child.id, [make_frame(f"c{i}") for i in range(4)])
    await write_frames(metadata_stub, other.id, [make_frame(f"c{i}") for i in range(4)])
    _, cursor = await diff_page(metadata_stub, parent.id, child.id, 2)
    assert cursor
    for base, target in ((parent.id, other.id), (child.id, parent.id), (other.id, child.id)):
        await expect_invalid(db, diff_page(metadata_stub, base, target, 2, cursor), "resume_cursor")
    for bad in (cursor[:-2], cursor + "x", "not a cursor", cursor.split(".")[0]):
        await expect_invalid(db, diff_page(metadata_stub, parent.id, child.id, 2, bad), "resume_cursor")
    # Signed the way the service signs, but a page token of a listing: another call's token.
    listing = await metadata_stub.ListVersions(ms.ListVersionsRequest(dataset=dataset_ref(parent.dataset_id),
                                                                      page_size=1))
    await expect_invalid(db, diff_page(metadata_stub, parent.id, child.id, 2, listing.next_page_token),
                         "resume_cursor")
    await expect_invalid(db, diff_page(metadata_stub, parent.id, child.id, -1), "max_changes")


async def test_a_resumed_diff_reads_only_the_change_keys_after_its_position(metadata_stub, db):
    parent = await published_with(metadata_stub, db, [make_frame(f"p{i:03d}") for i in range(200)])
    child = await child_of(metadata_stub, parent)
    await write_frames(metadata_stub, child.id, [make_frame(f"c{i:03d}") for i in range(300)])
    await delete_frames(metadata_stub, child.id, [f"p{i:03d}" for i in range(0, 200, 2)])
    parent_handle, child_handle = await version_handle(db, parent.id), await version_handle(db, child.id)
    store = MongoCatalogStore(db)
    counter = ReadCounter()
    changes = [c async for batch in differences(store, parent.dataset_id, parent_handle.lineage,
                                                child_handle.lineage, counter=counter, after="p150")
               for c in batch]
    # After p150: the 24 even frames p152..p198 the child hid (written nowhere after it).
    assert [c.frame_id for c in changes] == [f"p{i:03d}" for i in range(152, 200, 2)]
    assert counter.change_keys == 24
    # The index scans start at the position instead of skipping the keys before it.
    for scan, returned in ((store.frame_ids_written_by([child.id], after="c250"), 49),
                           (store.frame_ids_hidden_by([child.id], after="c250"), 100)):
        stats = (await scan.explain())["executionStats"]  # type: ignore[attr-defined]
        assert stats["nReturned"] == returned and stats["totalKeysExamined"] <= returned + 1, stats


async def test_diff_bad_input(metadata_stub, db):
    a = await published_with(metadata_stub, db, [make_frame("x")])
    b = await published_with(metadata_stub, db, [make_frame("x")])
    await expect_invalid(db, diff(metadata_stub, a.id, b.id), "target")
    await expect_error(diff(metadata_stub, a.id, "0123456789abcdef01234567"), grpc.StatusCode.NOT_FOUND)
    await expect_invalid(db, diff(metadata_stub, "not-an-id", a.id), "base.id")
