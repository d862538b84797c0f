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

from framevault.api.retry import RetryPolicy
from framevault.common.errors import Aborted, DeadlineExceeded, FramevaultError, Unavailable
from framevault.metadata.db import Database
from framevault.metadata.mongo_errors import transaction_is_retryable, translated

T = TypeVar("T")
# Backoff between attempts never exceeds this.
MAX_BACKOFF_MS = 5_000
# Attempts of a unary write (UpdateFrame, DeleteFrames) on transient failures.
UNARY_WRITE_ATTEMPTS = 4
# Commits whose outcome is unknown are retried on the same session this often
# before the whole unit is retried (which is safe: the writes are upserts).
_COMMIT_ATTEMPTS = 3


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
        with translated():
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
        except FramevaultError as exc:
            if not transaction_is_retryable(exc) or time.monotonic() - started > IN_TRANSACTION_RETRY_SECONDS:
                raise
        # Jittered backoff, so contenders do not collide again in step.
        await asyncio.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))


def write_retry_policy(base_delay_ms: int, attempts: int = UNARY_WRITE_ATTEMPTS) -> RetryPolicy:
    """Backoff of retried writes: exponential from ``base_delay_ms``, capped,
    jittered in the upper half so retrying writers spread out. Which failures
    are retried is decided by :func:`transient_error`, not by status codes."""
    return RetryPolicy(max_attempts=attempts, initial_backoff_seconds=base_delay_ms / 1000,
                       max_backoff_seconds=MAX_BACKOFF_MS / 1000)


def backoff_seconds(retry_no: int, base_delay_ms: int) -> float:
    """Delay before retry ``retry_no`` (1-based) of a write."""
    return write_retry_policy(base_delay_ms).delay(retry_no)


async def with_retries(work: Callable[[], Awaitable[T]], base_delay_ms: int,
                       attempts: int = UNARY_WRITE_ATTEMPTS) -> T:
    """Runs ``work`` again after transient failures; the last one is raised
    as its retryable domain error (UNAVAILABLE / ABORTED with RetryInfo)."""
    policy = write_retry_policy(base_delay_ms, attempts)
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
