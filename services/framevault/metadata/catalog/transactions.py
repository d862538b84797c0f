"""Running a callback in one MongoDB transaction, for either driver."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference
from pymongo.write_concern import WriteConcern

from framevault.metadata.db import Database

T = TypeVar("T")


async def in_transaction(db: Database, work: Callable[[Any], Awaitable[T]]) -> T:
    """Runs ``work(session)`` in a snapshot transaction committed with
    majority; the driver retries it whole on transient conflicts, so a domain
    error raised by ``work`` on its last attempt is what the caller sees and
    nothing of a failed attempt is kept."""
    session = db.start_session()
    if inspect.isawaitable(session):  # motor's start_session is a coroutine
        session = await session
    async with session:
        return await session.with_transaction(
            work,
            read_concern=ReadConcern("snapshot"),
            write_concern=WriteConcern(w="majority"),
            read_preference=ReadPreference.PRIMARY,
        )
