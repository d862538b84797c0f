"""MongoDB transactions for either driver, and which failures are worth
another attempt.

``transaction`` makes exactly one attempt: the upload stream counts attempts
per frame and backs off itself, so the attempts it reports are real
(``TransactionSessions``: the same, its units sharing one session).
``in_transaction`` retries a whole unit after transient conflicts (at commit
too, which motor's ``with_transaction`` does not retry); catalog operations
use it. Attempt counts, time limits and backoff come from the settings the
``Database`` carries (``transaction_*``, ``upload_retry_*``,
``frame_write_attempts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pymongo.errors
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference
from pymongo.write_concern import WriteConcern

from framevault.api.retry import RetryPolicy
from framevault.common.config import Settings
from framevault.common.errors import Aborted, DeadlineExceeded, FramevaultError, Unavailable
from framevault.metadata.db import Database
from framevault.metadata.mongo_errors import transaction_is_retryable, translated

T = TypeVar("T")


def transient_error(exc: BaseException) -> FramevaultError | None:
    """``exc`` when it is worth another attempt (UNAVAILABLE, ABORTED or
    DEADLINE_EXCEEDED: the storage boundary has translated driver errors
    into these, mongo_errors.py), else None."""
    return exc if isinstance(exc, (Unavailable, Aborted, DeadlineExceeded)) else None


async def _resolved(value: Any) -> Any:
    # motor returns coroutines where PyMongo's async API returns values, and
    # the other way round; both drivers are allowed (db.py).
    return await value if inspect.isawaitable(value) else value


@contextlib.asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[Any]:
    """A session in a snapshot transaction, committed with majority when the
    block ends without an exception and aborted otherwise (cancellation
    included), so a failed or interrupted unit leaves nothing behind. A
    failed commit is raised as its domain error (mongo_errors.py)."""
    session = await _resolved(db.start_session())
    try:
        async with _in_transaction_of(db, session):
            yield session
    finally:
        await _end(session)


class TransactionSessions:
    """Transactions of one writer that runs them one after another (an
    upload stream's batches) on one session: starting and ending a session
    are each a hand-off to the driver's thread, twice per unit otherwise.
    The session is started by the first transaction and kept while units
    commit; a unit that fails ends it (whatever state the driver left it in
    goes with it), and the next unit starts a new one. ``close`` ends it.
    A session left unused for ``SESSION_IDLE_SECONDS`` is ended too before
    the next unit: the server forgets sessions idle for its logical session
    timeout (30 minutes by default), and a stream may pause for that long.
    Each transaction is ``transaction``'s: snapshot, majority, one attempt."""

    SESSION_IDLE_SECONDS = 60.0

    def __init__(self, db: Database):
        self._db = db
        self._session: Any = None
        self._last_used = 0.0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        if self._session is not None and time.monotonic() - self._last_used > self.SESSION_IDLE_SECONDS:
            await self.close()
        session = self._session
        if session is None:
            session = self._session = await _resolved(self._db.start_session())
        try:
            async with _in_transaction_of(self._db, session):
                yield session
        except BaseException:
            self._session = None
            await _end(session)
            raise
        finally:
            self._last_used = time.monotonic()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await _end(session)


@contextlib.asynccontextmanager
async def _in_transaction_of(db: Database, session: Any) -> AsyncIterator[None]:
    await _resolved(session.start_transaction(
        read_concern=ReadConcern("snapshot"),
        write_concern=WriteConcern(w="majority"),
        read_preference=ReadPreference.PRIMARY,
    ))
    try:
        yield
    except BaseException:
        if session.in_transaction:
            with contextlib.suppress(pymongo.errors.PyMongoError):
                await session.abort_transaction()
        raise
    with translated():
        await _commit(session, db.settings.transaction_commit_attempts)


async def _end(session: Any) -> None:
    with contextlib.suppress(pymongo.errors.PyMongoError):
        await _resolved(session.end_session())


async def _commit(session: Any, attempts: int) -> None:
    # A commit whose outcome is unknown is committed again on the same session
    # before the whole unit is retried (which is safe: the writes are upserts).
    for attempt in range(1, max(1, attempts) + 1):
        try:
            await session.commit_transaction()
            return
        except pymongo.errors.PyMongoError as exc:
            if attempt >= attempts or not exc.has_error_label("UnknownTransactionCommitResult"):
                raise


def _conflict_backoff(settings: Settings) -> RetryPolicy:
    """Full jitter between runs of a conflicting unit, so contenders do not
    collide again in step. Runs are bounded by time (transaction_retry_seconds),
    so the policy's attempt count is not consulted."""
    return RetryPolicy(max_attempts=1, initial_backoff_seconds=settings.transaction_retry_initial_backoff_ms / 1000,
                       max_backoff_seconds=settings.transaction_retry_max_backoff_ms / 1000, jitter=1.0)


async def in_transaction(db: Database, work: Callable[[Any], Awaitable[T]]) -> T:
    """Runs ``work(session)`` in one transaction, again from the start after a
    transient conflict, for up to ``transaction_retry_seconds``; the last
    conflict then reaches the caller as ABORTED. A domain error raised by
    ``work`` aborts the attempt, so nothing of it is kept."""
    limit_seconds = db.settings.transaction_retry_seconds
    backoff = _conflict_backoff(db.settings)
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            async with transaction(db) as session:
                return await work(session)
        except FramevaultError as exc:
            if not transaction_is_retryable(exc) or time.monotonic() - started > limit_seconds:
                raise
        await asyncio.sleep(backoff.delay(attempt))


def write_retry_policy(settings: Settings) -> RetryPolicy:
    """Retries of a frame write: ``frame_write_attempts`` attempts, backoff
    exponential from ``upload_retry_base_delay_ms`` up to
    ``upload_retry_max_delay_ms``, jittered in the upper half so retrying
    writers spread out (the upload stream counts its attempts per frame itself
    and takes only the backoff). Which failures are retried is decided by
    :func:`transient_error`, not by status codes."""
    return RetryPolicy(max_attempts=max(1, settings.frame_write_attempts),
                       initial_backoff_seconds=settings.upload_retry_base_delay_ms / 1000,
                       max_backoff_seconds=settings.upload_retry_max_delay_ms / 1000)


def backoff_seconds(retry_no: int, settings: Settings) -> float:
    """Delay before retry ``retry_no`` (1-based) of a write."""
    return write_retry_policy(settings).delay(retry_no)


async def with_retries(work: Callable[[], Awaitable[T]], settings: Settings) -> T:
    """Runs ``work`` again after transient failures; the last one is raised
    as its retryable domain error (UNAVAILABLE / ABORTED with RetryInfo)."""
    policy = write_retry_policy(settings)
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return await work()
        except Exception as exc:
            retryable = transient_error(exc)
            if retryable is None:
                raise
            if attempt == policy.max_attempts:
                if retryable is exc:
                    raise
                raise retryable from exc
        await asyncio.sleep(policy.delay(attempt))
    raise AssertionError("unreachable")
