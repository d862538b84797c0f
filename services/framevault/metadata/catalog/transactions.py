"""Running a callback in one MongoDB transaction, for either driver."""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pymongo.errors
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference
from pymongo.write_concern import WriteConcern

from framevault.metadata.db import Database

T = TypeVar("T")

# Attempts at a transaction that keeps conflicting stop after this long; the
# last transient error then reaches the caller as ABORTED.
RETRY_SECONDS = 30.0


async def _resolved(value: Any) -> Any:
    # motor returns coroutines where PyMongo's async API returns values, and
    # the other way round (db.py allows both drivers).
    return await value if inspect.isawaitable(value) else value


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, pymongo.errors.PyMongoError) and exc.has_error_label("TransientTransactionError")


async def in_transaction(db: Database, work: Callable[[Any], Awaitable[T]]) -> T:
    """Runs ``work(session)`` in a snapshot transaction committed with
    majority, again from the start after a transient conflict (at commit
    too, which motor's ``with_transaction`` does not retry). A domain error
    raised by ``work`` aborts the attempt, so nothing of it is kept."""
    session = await _resolved(db.start_session())
    started = time.monotonic()
    attempt = 0
    try:
        while True:
            attempt += 1
            await _resolved(session.start_transaction(
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern(w="majority"),
                read_preference=ReadPreference.PRIMARY,
            ))
            try:
                result = await work(session)
                await _commit(session)
                return result
            except BaseException as exc:
                if session.in_transaction:
                    try:
                        await session.abort_transaction()
                    except pymongo.errors.PyMongoError:
                        pass
                if not _transient(exc) or time.monotonic() - started > RETRY_SECONDS:
                    raise
            # Jittered backoff, so contenders do not collide again in step.
            await asyncio.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
    finally:
        await _resolved(session.end_session())


COMMIT_ATTEMPTS = 3


async def _commit(session: Any) -> None:
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            await session.commit_transaction()
            return
        except pymongo.errors.PyMongoError as exc:
            # The commit may have happened: committing again is safe.
            if attempt == COMMIT_ATTEMPTS or not exc.has_error_label("UnknownTransactionCommitResult"):
                raise
