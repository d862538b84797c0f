"""MongoDB transactions for either driver, and which failures are worth
another attempt.

``transaction`` makes exactly one attempt: the upload stream counts attempts
per frame and backs off itself, so the attempts it reports are real.
``in_transaction`` retries a whole unit after transient conflicts (at commit
too, which motor's ``with_transaction`` does not retry); catalog operations
use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pymongo.errors
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference
from pymongo.write_concern import WriteConcern

from framevault.common.errors import Aborted, DeadlineExceeded, FramevaultError, Unavailable
from framevault.metadata.db import Database

# Server error codes after which the same write may succeed on another attempt:
# elections and shutdowns, network trouble, time limits, write conflicts.
_UNAVAILABLE_CODES = frozenset({
    6,      # HostUnreachable
    7,      # HostNotFound
    89,     # NetworkTimeout
    91,     # ShutdownInProgress
    189,    # PrimarySteppedDown
    9001,   # SocketException
    10107,  # NotWritablePrimary
    11600,  # InterruptedAtShutdown
    11602,  # InterruptedDueToReplStateChange
    13435,  # NotPrimaryNoSecondaryOk
    13436,  # NotPrimaryOrSecondary
    64,     # WriteConcernFailed
})
_TIMEOUT_CODES = frozenset({50, 262})  # MaxTimeMSExpired, ExceededTimeLimit
_WRITE_CONFLICT = 112
_CONFLICT_CODES = frozenset({_WRITE_CONFLICT, 251})  # WriteConflict, NoSuchTransaction
T = TypeVar("T")
# Backoff between attempts never exceeds this.
MAX_BACKOFF_MS = 5_000
# Attempts of a unary write (UpdateFrame, DeleteFrames) on transient failures.
UNARY_WRITE_ATTEMPTS = 4
# Commits whose outcome is unknown are retried on the same session this often
# before the whole unit is retried (which is safe: the writes are upserts).
_COMMIT_ATTEMPTS = 3


def transient_error(exc: BaseException) -> FramevaultError | None:
    """The retryable domain error ``exc`` amounts to, or None when retrying is pointless."""
    if isinstance(exc, (Unavailable, Aborted, DeadlineExceeded)):
        return exc
    if not isinstance(exc, pymongo.errors.PyMongoError):
        return None
    code = getattr(exc, "code", None)
    if isinstance(exc, pymongo.errors.ExecutionTimeout) or code in _TIMEOUT_CODES:
        return Unavailable(f"database operation timed out: {exc}", retry_after_ms=200)
    if isinstance(exc, (pymongo.errors.ConnectionFailure, pymongo.errors.NotPrimaryError)) or code in _UNAVAILABLE_CODES:
        return Unavailable(f"database unavailable: {exc}", retry_after_ms=500)
    if code in _CONFLICT_CODES or exc.has_error_label("TransientTransactionError"):
        return Aborted(f"concurrent modification: {exc}", retry_after_ms=50)
    if exc.has_error_label("UnknownTransactionCommitResult") or exc.has_error_label("RetryableWriteError"):
        return Unavailable(f"database write outcome unknown: {exc}", retry_after_ms=200)
    return None


def is_write_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a write conflict: another transaction holds a
    document this one wrote (not a failover or a lost transaction)."""
    return isinstance(exc, pymongo.errors.PyMongoError) and getattr(exc, "code", None) == _WRITE_CONFLICT


async def _resolved(value: Any) -> Any:
    # motor returns coroutines where PyMongo's async API returns values, and
    # the other way round; both drivers are allowed (db.py).
    return await value if inspect.isawaitable(value) else value


@contextlib.asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[Any]:
    """A session in a snapshot transaction, committed with majority when the
    block ends without an exception and aborted otherwise (cancellation
    included), so a failed or interrupted unit leaves nothing behind."""
    session = await _resolved(db.start_session())
    try:
        await _resolved(session.start_transaction(
            read_concern=ReadConcern("snapshot"),
            write_concern=WriteConcern(w="majority"),
            read_preference=ReadPreference.PRIMARY,
        ))
        try:
            yield session
        except BaseException:
            if session.in_transaction:
                with contextlib.suppress(pymongo.errors.PyMongoError):
                    await session.abort_transaction()
            raise
        await _commit(session)
    finally:
        with contextlib.suppress(pymongo.errors.PyMongoError):
            await _resolved(session.end_session())


async def _commit(session: Any) -> None:
    for attempt in range(1, _COMMIT_ATTEMPTS + 1):
        try:
            await session.commit_transaction()
            return
        except pymongo.errors.PyMongoError as exc:
            if attempt == _COMMIT_ATTEMPTS or not exc.has_error_label("UnknownTransactionCommitResult"):
                raise


# A catalog unit that keeps conflicting stops being retried after this long;
# the last transient error then reaches the caller as ABORTED.
IN_TRANSACTION_RETRY_SECONDS = 30.0


async def in_transaction(db: Database, work: Callable[[Any], Awaitable[T]]) -> T:
    """Runs ``work(session)`` in one transaction, again from the start after a
    transient conflict. A domain error raised by ``work`` aborts the attempt,
    so nothing of it is kept."""
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            async with transaction(db) as session:
                return await work(session)
        except pymongo.errors.PyMongoError as exc:
            if not exc.has_error_label("TransientTransactionError") or (
                time.monotonic() - started > IN_TRANSACTION_RETRY_SECONDS
            ):
                raise
        # Jittered backoff, so contenders do not collide again in step.
        await asyncio.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))


def backoff_seconds(retry_no: int, base_delay_ms: int) -> float:
    """Delay before retry ``retry_no`` (1-based): exponential, capped, with
    jitter in the upper half so retrying writers spread out."""
    ceiling = min(MAX_BACKOFF_MS, base_delay_ms * 2 ** (retry_no - 1))
    return random.uniform(ceiling / 2, ceiling) / 1000


async def with_retries(work: Callable[[], Awaitable[T]], base_delay_ms: int,
                       attempts: int = UNARY_WRITE_ATTEMPTS) -> T:
    """Runs ``work`` again after transient failures; the last one is raised
    as its retryable domain error (UNAVAILABLE / ABORTED with RetryInfo)."""
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except Exception as exc:
            retryable = transient_error(exc)
            if retryable is None:
                raise
            if attempt == attempts:
                if retryable is exc:
                    raise
                raise retryable from exc
        await asyncio.sleep(backoff_seconds(attempt, base_delay_ms))
    raise AssertionError("unreachable")
