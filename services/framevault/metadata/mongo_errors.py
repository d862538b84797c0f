"""The one translation of MongoDB driver errors into domain errors.

``Database`` (db.py) hands out collection handles wrapped by ``translating``:
every driver error raised by a call on them, on a cursor they return or
while iterating one, leaves the storage package as the domain error
``translate_mongo_error`` gives it, with the driver error as ``__cause__``.
Domain code therefore sees only ``framevault.common.errors``; the table of
the mapping and why it is so is in STORAGE.md ("Errors").

Retrying a whole transaction is decided inside the storage package
(transactions.py) from the driver's own label, which stays reachable as the
cause (``transaction_is_retryable``).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any, NoReturn

import bson.errors
import pymongo.errors

from framevault.common.errors import (
    Aborted,
    DuplicateKey,
    FramevaultError,
    TooLargeToStore,
    Unavailable,
    WriteConflict,
)

# Server error codes of a database that is (for the moment) not there to
# answer: elections and shutdowns, network trouble, lost write concern.
UNAVAILABLE_CODES = frozenset({
    6,      # HostUnreachable
    7,      # HostNotFound
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
# The server gave up on an operation after a time limit of ours or its own.
TIMEOUT_CODES = frozenset({50, 89, 262})  # MaxTimeMSExpired, NetworkTimeout, ExceededTimeLimit
WRITE_CONFLICT_CODE = 112
NO_SUCH_TRANSACTION_CODE = 251
DUPLICATE_KEY_CODES = frozenset({11000, 11001})
# A document over MongoDB's 16 MiB limit, refused by the server.
TOO_LARGE_CODES = frozenset({10334, 17419, 17420})
# What the server says when a hinted index does not exist (yet).
MISSING_INDEX_MESSAGE = "hint provided does not correspond to an existing index"

# RetryInfo delays: a conflict clears as soon as the other transaction ends;
# a timeout or an unknown commit outcome after a moment; a failover takes an
# election; index creation at start takes longest. They are part of the error
# table STORAGE.md documents and only a lower bound for clients, which back off
# further on their own retry policy, so they are constants, not settings.
CONFLICT_RETRY_MS = 50
TIMEOUT_RETRY_MS = 200
UNAVAILABLE_RETRY_MS = 500
MISSING_INDEX_RETRY_MS = 1000

DriverError = (pymongo.errors.PyMongoError, bson.errors.BSONError)


def _code(exc: BaseException) -> int | None:
    if isinstance(exc, pymongo.errors.BulkWriteError):
        # The first failed write decides (the batch stopped there: ordered writes).
        write_errors = (exc.details or {}).get("writeErrors") or [{}]
        return write_errors[0].get("code")
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def _has_label(exc: BaseException, label: str) -> bool:
    return isinstance(exc, pymongo.errors.PyMongoError) and exc.has_error_label(label)


# MongoDB stopped an operation at the maxTimeMS it was given (not a network or write-concern timeout).
TIME_LIMIT_CODE = 50  # MaxTimeMSExpired


class TimeLimitExceeded(Unavailable):
    """The database stopped an operation at the time limit (``maxTimeMS``) the caller set: a store
    that sets one turns this into its own answer; elsewhere it is UNAVAILABLE like any timeout."""


def translate_mongo_error(exc: BaseException) -> FramevaultError | None:
    """The domain error a MongoDB driver error amounts to; None for the
    unexpected ones (a bug of ours: INTERNAL, logged by the interceptor).

    Server-side time limits and an unreachable database are UNAVAILABLE with
    RetryInfo; DEADLINE_EXCEEDED is only ever the caller's own deadline,
    which gRPC reports itself."""
    if not isinstance(exc, DriverError):
        return None
    code = _code(exc)
    if isinstance(exc, pymongo.errors.DuplicateKeyError) or code in DUPLICATE_KEY_CODES:
        return DuplicateKey(f"a document with this key exists: {_brief(exc)}")
    if isinstance(exc, (pymongo.errors.DocumentTooLarge, bson.errors.InvalidDocument)) or code in TOO_LARGE_CODES:
        return TooLargeToStore(f"MongoDB refused the document: {_brief(exc)}")
    if isinstance(exc, pymongo.errors.OperationFailure) and MISSING_INDEX_MESSAGE in str(exc):
        return Unavailable("frame indexes are being created; retry", retry_after_ms=MISSING_INDEX_RETRY_MS)
    if code == WRITE_CONFLICT_CODE:
        return WriteConflict(f"concurrent modification: {_brief(exc)}", retry_after_ms=CONFLICT_RETRY_MS)
    if isinstance(exc, pymongo.errors.ExecutionTimeout) or code == TIME_LIMIT_CODE:
        return TimeLimitExceeded(f"database operation timed out: {_brief(exc)}", retry_after_ms=TIMEOUT_RETRY_MS)
    if (isinstance(exc, (pymongo.errors.ExecutionTimeout, pymongo.errors.WTimeoutError,
                         pymongo.errors.NetworkTimeout)) or code in TIMEOUT_CODES):
        return Unavailable(f"database operation timed out: {_brief(exc)}", retry_after_ms=TIMEOUT_RETRY_MS)
    if isinstance(exc, pymongo.errors.ConnectionFailure) or code in UNAVAILABLE_CODES:
        return Unavailable(f"database unavailable: {_brief(exc)}", retry_after_ms=UNAVAILABLE_RETRY_MS)
    if code == NO_SUCH_TRANSACTION_CODE or _has_label(exc, "TransientTransactionError"):
        return Aborted(f"concurrent modification: {_brief(exc)}", retry_after_ms=CONFLICT_RETRY_MS)
    if _has_label(exc, "UnknownTransactionCommitResult") or _has_label(exc, "RetryableWriteError"):
        return Unavailable(f"database write outcome unknown: {_brief(exc)}", retry_after_ms=TIMEOUT_RETRY_MS)
    return None


# Driver messages can be long (whole documents in a duplicate key error);
# callers get the start, the log keeps the cause.
_MAX_MESSAGE_CHARS = 300


def _brief(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "..."


def transaction_is_retryable(exc: BaseException) -> bool:
    """Whether MongoDB labelled the failure behind ``exc``
    TransientTransactionError: the whole transaction may run again."""
    cause = exc if isinstance(exc, pymongo.errors.PyMongoError) else exc.__cause__
    return _has_label(cause, "TransientTransactionError") if cause is not None else False


def _raise_as_domain(exc: BaseException) -> NoReturn:
    domain = translate_mongo_error(exc)
    if domain is None:
        raise exc
    raise domain from exc


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Raises a driver error from the block as its domain error."""
    try:
        yield
    except DriverError as exc:
        _raise_as_domain(exc)


async def _awaited(value: Any) -> Any:
    try:
        return translating(await value)
    except DriverError as exc:
        _raise_as_domain(exc)


def translating(value: Any) -> Any:
    """``value`` with driver errors translated: collections and cursors are
    wrapped, awaitables translate when awaited, anything else is returned."""
    if inspect.isawaitable(value):
        return _awaited(value)
    if hasattr(value, "find_one") or hasattr(value, "__aiter__"):
        return _Translating(value)
    return value


class _Translating:
    """A collection or cursor of either driver whose calls translate errors.
    Attributes that are not methods (``name``, ``write_concern``) pass through.
    The hot paths catch inline rather than through ``translated``: they run
    per call and per document, and a context manager costs more than a try."""

    __slots__ = ("_inner",)

    def __init__(self, inner: Any):
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return translating(attribute(*args, **kwargs))
            except DriverError as exc:
                _raise_as_domain(exc)

        return call

    def __getitem__(self, key: Any) -> Any:
        return translating(self._inner[key])

    def __aiter__(self) -> _TranslatingIterator:
        return _TranslatingIterator(self._inner.__aiter__())

    def __repr__(self) -> str:
        return f"translating({self._inner!r})"


class _TranslatingIterator:
    __slots__ = ("_inner",)

    def __init__(self, inner: Any):
        self._inner = inner

    def __aiter__(self) -> _TranslatingIterator:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._inner.__anext__()
        except DriverError as exc:
            _raise_as_domain(exc)
