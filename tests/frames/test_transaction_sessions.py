"""TransactionSessions, the transactions of an upload stream's batches: one session for units that
follow each other, a fresh one after a failed unit or a pause, against the real replica set.
(Sessions are compared as objects: the driver hands an ended session's server session id to the
next session it starts, unless that id is near the server's timeout.)"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from framevault.metadata.db import Database
from framevault.metadata.transactions import TransactionSessions

pytestmark = pytest.mark.usefixtures("frames_db")


@pytest.fixture
async def scratch(frames_db: Database) -> AsyncIterator[Any]:
    name = f"test_transaction_sessions_{uuid.uuid4().hex}"
    await frames_db.db.create_collection(name)
    yield frames_db.db[name]
    await frames_db.db.drop_collection(name)


async def test_units_that_follow_each_other_share_one_session_and_each_commits(frames_db: Database,
                                                                               scratch: Any) -> None:
    sessions = TransactionSessions(frames_db)
    used = []
    try:
        for n in range(3):
            async with sessions.transaction() as session:
                used.append(session)
                await scratch.insert_one({"_id": n}, session=session)
    finally:
        await sessions.close()
    assert used[0] is used[1] is used[2]
    assert sorted([d["_id"] async for d in scratch.find()]) == [0, 1, 2]


async def test_a_failed_unit_is_rolled_back_and_the_next_unit_starts_a_new_session(frames_db: Database,
                                                                                   scratch: Any) -> None:
    sessions = TransactionSessions(frames_db)
    try:
        async with sessions.transaction() as session:
            first = session
            await scratch.insert_one({"_id": "kept"}, session=session)
        with pytest.raises(RuntimeError):
            async with sessions.transaction() as session:
                assert session is first
                await scratch.insert_one({"_id": "rolled back"}, session=session)
                raise RuntimeError("the unit fails")
        async with sessions.transaction() as session:
            assert session is not first
            await scratch.insert_one({"_id": "after"}, session=session)
    finally:
        await sessions.close()
    assert sorted([d["_id"] async for d in scratch.find()]) == ["after", "kept"]


async def test_a_session_idle_past_its_limit_is_replaced(frames_db: Database, scratch: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = TransactionSessions(frames_db)
    try:
        async with sessions.transaction() as session:
            first = session
            await scratch.insert_one({"_id": 1}, session=session)
        # Every pause counts as too long: the next unit must not use the session the server may
        # have forgotten.
        monkeypatch.setattr(TransactionSessions, "SESSION_IDLE_SECONDS", -1.0)
        async with sessions.transaction() as session:
            assert session is not first
            await scratch.insert_one({"_id": 2}, session=session)
    finally:
        await sessions.close()
    assert sorted([d["_id"] async for d in scratch.find()]) == [1, 2]
