"""The one MongoDB error translator: each driver error becomes one domain
error, the same on every path (STORAGE.md, "Errors")."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson.errors
import grpc
import pymongo
import pymongo.errors
import pytest
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from framevault.common.config import Settings
from framevault.common.errors import Aborted, DuplicateKey, TooLargeToStore, Unavailable, WriteConflict
from framevault.metadata.mongo_errors import (
    TimeLimitExceeded,
    transaction_is_retryable,
    translate_mongo_error,
    translated,
)


def _labelled(exc: pymongo.errors.PyMongoError, *labels: str) -> pymongo.errors.PyMongoError:
    for label in labels:
        exc._add_error_label(label)
    return exc


def _failure(code: int, *labels: str, cls: type[pymongo.errors.OperationFailure] = pymongo.errors.OperationFailure,
             message: str = "server said no") -> pymongo.errors.OperationFailure:
    return cls(message, code, {"ok": 0, "code": code, "errmsg": message, "errorLabels": list(labels)})


TRANSIENT = "TransientTransactionError"
UNKNOWN_COMMIT = "UnknownTransactionCommitResult"

# (driver error, domain class, status code, RetryInfo delay in ms or None)
TABLE: list[tuple[str, BaseException, type, grpc.StatusCode, int | None]] = [
    ("duplicate key", pymongo.errors.DuplicateKeyError("E11000 duplicate key", 11000), DuplicateKey,
     grpc.StatusCode.ALREADY_EXISTS, None),
    ("duplicate key in a bulk write", pymongo.errors.BulkWriteError(
        {"writeErrors": [{"index": 0, "code": 11000, "errmsg": "E11000"}], "nInserted": 0}),
     DuplicateKey, grpc.StatusCode.ALREADY_EXISTS, None),
    ("document too large", pymongo.errors.DocumentTooLarge("BSON document too large"), TooLargeToStore,
     grpc.StatusCode.INVALID_ARGUMENT, None),
    ("unencodable document", bson.errors.InvalidDocument("cannot encode object"), TooLargeToStore,
     grpc.StatusCode.INVALID_ARGUMENT, None),
    ("server refuses an oversized document", _failure(10334), TooLargeToStore,
     grpc.StatusCode.INVALID_ARGUMENT, None),
    ("hinted index missing", _failure(2, message="error processing query: planner returned error :: caused by :: "
                                                 "hint provided does not correspond to an existing index"),
     Unavailable, grpc.StatusCode.UNAVAILABLE, 1000),
    ("write conflict in a transaction", _failure(112, TRANSIENT), WriteConflict, grpc.StatusCode.ABORTED, 50),
    ("write conflict", _failure(112), WriteConflict, grpc.StatusCode.ABORTED, 50),
    ("transaction lost", _failure(251, TRANSIENT), Aborted, grpc.StatusCode.ABORTED, 50),
    ("transient transaction error", _labelled(pymongo.errors.PyMongoError("aborted"), TRANSIENT), Aborted,
     grpc.StatusCode.ABORTED, 50),
    ("server time limit", pymongo.errors.ExecutionTimeout("operation exceeded time limit", 50), TimeLimitExceeded,
     grpc.StatusCode.UNAVAILABLE, 200),
    ("server time limit by code", _failure(50), TimeLimitExceeded, grpc.StatusCode.UNAVAILABLE, 200),
    ("exceeded time limit", _failure(262), Unavailable, grpc.StatusCode.UNAVAILABLE, 200),
    ("write concern timeout", _failure(64, cls=pymongo.errors.WTimeoutError), Unavailable,
     grpc.StatusCode.UNAVAILABLE, 200),
    ("socket timeout", pymongo.errors.NetworkTimeout("timed out"), Unavailable, grpc.StatusCode.UNAVAILABLE, 200),
    ("no server", pymongo.errors.ServerSelectionTimeoutError("127.0.0.1:9: connection refused"), Unavailable,
     grpc.StatusCode.UNAVAILABLE, 500),
    ("connection lost", pymongo.errors.AutoReconnect("connection closed"), Unavailable,
     grpc.StatusCode.UNAVAILABLE, 500),
    ("connection lost in a transaction", _labelled(pymongo.errors.AutoReconnect("connection closed"), TRANSIENT),
     Unavailable, grpc.StatusCode.UNAVAILABLE, 500),
    ("not primary", pymongo.errors.NotPrimaryError("not primary"), Unavailable, grpc.StatusCode.UNAVAILABLE, 500),
    ("primary stepped down", _failure(189), Unavailable, grpc.StatusCode.UNAVAILABLE, 500),
    ("shutting down", _failure(91), Unavailable, grpc.StatusCode.UNAVAILABLE, 500),
    ("commit outcome unknown", _labelled(pymongo.errors.PyMongoError("commit"), UNKNOWN_COMMIT), Unavailable,
     grpc.StatusCode.UNAVAILABLE, 200),
    ("retryable write failed", _labelled(pymongo.errors.PyMongoError("write"), "RetryableWriteError"), Unavailable,
     grpc.StatusCode.UNAVAILABLE, 200),
]


@pytest.mark.parametrize(("driver_error", "domain", "code", "retry_ms"), [row[1:] for row in TABLE],
                         ids=[row[0] for row in TABLE])
def test_each_driver_error_has_one_domain_error(driver_error: BaseException, domain: type, code: grpc.StatusCode,
                                                retry_ms: int | None) -> None:
    translated_error = translate_mongo_error(driver_error)
    assert type(translated_error) is domain
    assert translated_error.code == code
    assert getattr(translated_error, "retry_after_ms", None) == retry_ms


@pytest.mark.parametrize("unexpected", [
    pymongo.errors.OperationFailure("unknown operator: $frob", 2),
    pymongo.errors.InvalidOperation("cannot use a closed client"),
    ValueError("not a driver error"),
], ids=["bad query", "misuse", "foreign"])
def test_unexpected_errors_are_left_to_the_interceptor(unexpected: BaseException) -> None:
    assert translate_mongo_error(unexpected) is None


def test_translated_keeps_the_driver_error_as_cause_and_the_transaction_label() -> None:
    conflict = _failure(112, TRANSIENT)
    with pytest.raises(WriteConflict) as caught, translated():
        raise conflict
    assert caught.value.__cause__ is conflict
    assert transaction_is_retryable(caught.value)
    with pytest.raises(DuplicateKey) as duplicate, translated():
        raise pymongo.errors.DuplicateKeyError("E11000", 11000)
    assert not transaction_is_retryable(duplicate.value)
    with pytest.raises(pymongo.errors.InvalidOperation), translated():
        raise pymongo.errors.InvalidOperation("a bug stays a bug")


# The same translation of errors a real server (or its absence) produces.

@pytest.fixture
def mongo(settings: Settings) -> Iterator[Any]:
    client: Any = pymongo.MongoClient(settings.mongodb_uri.get_secret_value(), serverSelectionTimeoutMS=5000)
    database = client[f"{settings.mongodb_database}_errors_{uuid.uuid4().hex[:6]}"]
    try:
        yield database
    finally:
        client.drop_database(database.name)
        client.close()


def test_real_duplicate_key_and_missing_index(mongo: Any) -> None:
    mongo.probe.insert_one({"_id": 1})
    with pytest.raises(pymongo.errors.DuplicateKeyError) as duplicate:
        mongo.probe.insert_one({"_id": 1})
    assert isinstance(translate_mongo_error(duplicate.value), DuplicateKey)
    with pytest.raises(pymongo.errors.OperationFailure) as unindexed:
        list(mongo.probe.find({}, hint="no_such_index"))
    assert isinstance(translate_mongo_error(unindexed.value), Unavailable)


def test_real_write_conflict_between_transactions(mongo: Any) -> None:
    mongo.probe.insert_one({"_id": "contended", "n": 0})
    client = mongo.client
    options = dict(read_concern=ReadConcern("snapshot"), write_concern=WriteConcern(w="majority"))
    with client.start_session() as first, client.start_session() as second:
        first.start_transaction(**options)
        second.start_transaction(**options)
        mongo.probe.update_one({"_id": "contended"}, {"$inc": {"n": 1}}, session=first)
        with pytest.raises(pymongo.errors.OperationFailure) as caught:
            mongo.probe.update_one({"_id": "contended"}, {"$inc": {"n": 1}}, session=second)
        first.abort_transaction()
    assert caught.value.code == 112
    domain = translate_mongo_error(caught.value)
    assert isinstance(domain, WriteConflict) and domain.code == grpc.StatusCode.ABORTED


def test_real_unreachable_server() -> None:
    with pymongo.MongoClient("mongodb://127.0.0.1:9/?directConnection=true", serverSelectionTimeoutMS=200) as client:
        with pytest.raises(pymongo.errors.ServerSelectionTimeoutError) as caught:
            client.admin.command("ping")
    domain = translate_mongo_error(caught.value)
    assert isinstance(domain, Unavailable) and domain.retry_after_ms == 500


# Only the storage package's connection, transaction and translation modules
# handle driver errors; domain code catches domain errors.
DRIVER_ERROR_MODULES = {"db.py", "transactions.py", "mongo_errors.py"}


def test_driver_errors_are_handled_only_at_the_storage_boundary() -> None:
    services = Path(__file__).resolve().parents[2] / "services" / "framevault"
    handling = sorted(
        str(path.relative_to(services)) for path in services.rglob("*.py")
        if ("pymongo.errors" in path.read_text() or "bson.errors" in path.read_text())
        and not (path.parent.name == "metadata" and path.name in DRIVER_ERROR_MODULES))
    assert handling == []
