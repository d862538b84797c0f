"""Single-frame reads (GetFrame) that wait together are one query (``frames.frame_reads``), and
every reader gets exactly its own answer: its frame, or none, from its own version.

In-process over the real database, counting the queries the frame store sends; through the
service for what concurrent callers see.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc import aio

from framevault.metadata.db import Database
from framevault.metadata.frames.frame_reads import MAX_FRAMES_PER_QUERY, MAX_QUERIES_IN_FLIGHT
from framevault.metadata.frames.mongo_store import MongoFrameStore
from framevault.metadata.lineage import VersionHandle

from .helpers import CREATED, get_frame, image_frame, items, new_draft, upload

pytestmark = pytest.mark.usefixtures("frames_db")


class CountingFrameStore(MongoFrameStore):
    """The MongoDB frame store, recording the frame ids of each query of stored revisions."""

    def __init__(self, db: Database):
        super().__init__(db)
        self.queries: list[list[str]] = []

    async def _stored_revisions(self, version: VersionHandle, frame_ids: list[str]):  # type: ignore[no-untyped-def]
        self.queries.append(list(frame_ids))
        return await super()._stored_revisions(version, frame_ids)


async def draft_with(stub, *frame_ids: str):  # type: ignore[no-untyped-def]
    version = await new_draft(stub)
    run = await upload(stub, version.id, items(image_frame(f) for f in frame_ids))
    assert run.outcomes() == [CREATED] * len(frame_ids)
    return version


async def handle_of(store: MongoFrameStore, version_id: str) -> VersionHandle:
    handle = await store.version_handle(version_id, None)
    assert handle is not None
    return handle


async def test_reads_waiting_together_are_one_query_each_answered_with_its_own_frame(
        metadata_stub, frames_db: Database):
    frame_ids = [f"f{n}" for n in range(MAX_FRAMES_PER_QUERY + 10)]
    store = CountingFrameStore(frames_db)
    version = await handle_of(store, (await draft_with(metadata_stub, *frame_ids)).id)
    other = await handle_of(store, (await draft_with(metadata_stub, "f0", "only-here")).id)
    asked = [*frame_ids, "f3", "missing"]
    *mine, theirs, not_theirs = await asyncio.gather(*(store.stored_revision(version, f) for f in asked),
                                                     store.stored_revision(other, "only-here"),
                                                     store.stored_revision(other, "f1"))
    assert [None if doc is None else doc["frame_id"] for doc in mine] == [*frame_ids, "f3", None]
    assert all(doc["version_id"] == version.id for doc in mine if doc is not None)
    assert theirs is not None and (theirs["frame_id"], theirs["version_id"]) == ("only-here", other.id)
    assert not_theirs is None
    # The first reads of a version go at once; the rest wait and go together, at most
    # MAX_FRAMES_PER_QUERY frames a query.
    assert len(store.queries) < len(asked)
    assert max(len(q) for q in store.queries) <= MAX_FRAMES_PER_QUERY
    assert [len(q) for q in store.queries[:MAX_QUERIES_IN_FLIGHT]] == [1] * MAX_QUERIES_IN_FLIGHT


async def test_concurrent_get_frame_callers_each_get_their_frame_or_not_found(metadata_stub):
    frame_ids = [f"c{n}" for n in range(40)]
    version = await draft_with(metadata_stub, *frame_ids)

    async def read(frame_id: str) -> str:
        try:
            return (await get_frame(metadata_stub, version.id, frame_id)).id
        except aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
            return "NOT_FOUND"

    asked = [*frame_ids, "absent", *reversed(frame_ids)]
    assert await asyncio.gather(*(read(f) for f in asked)) == [*frame_ids, "NOT_FOUND", *reversed(frame_ids)]
