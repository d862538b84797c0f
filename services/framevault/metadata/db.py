"""The one module that owns the MongoDB connection of the metadata service.

The MongoDB stores (``mongo_versions.py`` and each area's ``mongo_store.py``,
STORAGE.md "Where the storage code lives") receive a ``Database`` and use its
collection handles; domain modules see only the stores' protocols. The
driver is chosen here only (``FRAMEVAULT_MONGODB_DRIVER``), since motor and
PyMongo's native async client share the interface we use. The handles are the
storage boundary: their driver errors come out as domain errors
(mongo_errors.py).
"""

from __future__ import annotations

import hashlib
import inspect
import socket
import uuid
from typing import Any

import pymongo
import structlog
from pymongo import ASCENDING, IndexModel
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from framevault.common.config import Settings
from framevault.common.errors import DuplicateKey
from framevault.metadata.mongo_errors import translated, translating

log = structlog.get_logger("framevault.db")

# Bumped when stored documents change shape; checked at start.
SCHEMA_VERSION = 1

DATASETS = "datasets"
VERSIONS = "versions"
FRAMES = "frames"
SCHEMA = "schema"
WRITE_LEASES = "write_leases"

# Indexes per collection; created idempotently at start. See
# services/framevault/metadata/STORAGE.md for why each exists.
INDEXES: dict[str, list[IndexModel]] = {
    DATASETS: [
        IndexModel([("name", ASCENDING)], name="name_unique", unique=True),
        IndexModel([("tags", ASCENDING)], name="tags"),
    ],
    VERSIONS: [
        IndexModel([("dataset_id", ASCENDING), ("name", ASCENDING)], name="dataset_name_unique", unique=True),
        IndexModel([("dataset_id", ASCENDING), ("create_time", ASCENDING), ("_id", ASCENDING)], name="dataset_created"),
        IndexModel([("parent_ids", ASCENDING)], name="parents"),
    ],
    # frames/write_leases.py: counted and settled per version, dropped per dataset.
    WRITE_LEASES: [
        IndexModel([("version_id", ASCENDING)], name="lease_version"),
        IndexModel([("dataset_id", ASCENDING)], name="lease_dataset"),
    ],
    FRAMES: [
        # One revision of a frame per version that wrote it.
        IndexModel([("version_id", ASCENDING), ("frame_id", ASCENDING)], name="revision_unique", unique=True),
        # Resolving a frame id across a version's lineage.
        IndexModel([("dataset_id", ASCENDING), ("frame_id", ASCENDING), ("version_id", ASCENDING)], name="frame_lineage"),
        # Sequential order: grouped by context, timestamp inside, id as tie breaker.
        IndexModel(
            [("dataset_id", ASCENDING), ("context_id", ASCENDING), ("timestamp", ASCENDING), ("frame_id", ASCENDING)],
            name="sequential_order",
        ),
        # Random order and sharding.
        IndexModel([("dataset_id", ASCENDING), ("shuffle_key", ASCENDING)], name="shuffle_order"),
        # Diffs and merges: the frames a version hid, in frame id order.
        IndexModel(
            [("hidden_in", ASCENDING), ("frame_id", ASCENDING)],
            name="hidden_frames",
            partialFilterExpression={"hidden_in": {"$exists": True}},
        ),
    ],
}


def service_slot(settings: Settings) -> str | None:
    """What a restarted service has in common with the process it replaces:
    host, listening address and database (hashed, to fit MongoDB's appName).
    None when the address has no fixed port: then there is no successor."""
    if settings.metadata_address.rsplit(":", 1)[-1] in ("", "0"):
        return None
    where = f"{socket.gethostname()}|{settings.metadata_address}|{settings.mongodb_database}"
    return hashlib.sha256(where.encode()).hexdigest()[:16]


# This process: distinguishes it from earlier processes of the same slot.
INCARNATION = uuid.uuid4().hex[:16]
_APP_NAME = "framevault-metadata"


def make_client(settings: Settings) -> Any:
    slot = service_slot(settings)
    common: dict[str, Any] = dict(
        # Names this process's sessions in $currentOp (end_predecessor_transactions).
        appname=f"{_APP_NAME} {slot or '-'} {INCARNATION}",
        serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
        connectTimeoutMS=settings.mongodb_timeout_ms,
        maxPoolSize=settings.mongodb_max_pool_size,
        w="majority",
        retryWrites=True,
        tz_aware=True,
    )
    if settings.mongodb_driver == "pymongo":
        return pymongo.AsyncMongoClient(settings.mongodb_uri.get_secret_value(), **common)
    if settings.mongodb_driver == "motor":
        from motor.motor_asyncio import AsyncIOMotorClient

        return AsyncIOMotorClient(settings.mongodb_uri.get_secret_value(), **common)
    raise SystemExit(f"FRAMEVAULT_MONGODB_DRIVER must be 'motor' or 'pymongo', not {settings.mongodb_driver!r}")


class Database:
    """Collection handles with majority write concern, and start-up checks."""

    def __init__(self, settings: Settings, client: Any | None = None):
        self.settings = settings
        self.client = client or make_client(settings)
        self.db = self.client.get_database(
            settings.mongodb_database,
            write_concern=WriteConcern(w="majority"),
            read_concern=ReadConcern("majority"),
        )
        self.datasets = translating(self.db[DATASETS])
        self.versions = translating(self.db[VERSIONS])
        self.frames = translating(self.db[FRAMES])
        self.schema = translating(self.db[SCHEMA])
        self.write_leases = translating(self.db[WRITE_LEASES])

    async def ping(self) -> bool:
        with translated():
            await self.client.admin.command("ping")
        return True

    async def prepare(self) -> None:
        """Ends transactions a killed predecessor left open, creates indexes
        (idempotent) and records or checks the schema version."""
        await self.end_predecessor_transactions()
        for name, indexes in INDEXES.items():
            with translated():
                await self.db[name].create_indexes(indexes)
        current = await self.schema.find_one({"_id": "schema"})
        if current is None:
            try:
                await self.schema.insert_one({"_id": "schema", "version": SCHEMA_VERSION})
            except DuplicateKey:
                current = await self.schema.find_one({"_id": "schema"})
        if current is not None and current["version"] > SCHEMA_VERSION:
            raise SystemExit(
                f"database {self.settings.mongodb_database!r} has schema version {current['version']}, "
                f"newer than this service's {SCHEMA_VERSION}"
            )

    async def end_predecessor_transactions(self) -> None:
        """Kills the sessions of earlier processes of this service slot.

        A process killed inside a transaction leaves it open in MongoDB,
        holding what it wrote, until ``transactionLifetimeLimitSeconds``
        (60 s by default) ends it; whoever writes the same documents till
        then conflicts. A restart in the same slot (host, address, database)
        can only follow a process that is gone, so its sessions are ended at
        once. Users may kill their own sessions; without the right to list
        them this is skipped and the transactions simply time out."""
        slot = service_slot(self.settings)
        if slot is None:
            return
        mine = f"{_APP_NAME} {slot} "
        try:
            cursor = self.client.admin.aggregate([
                {"$currentOp": {"idleSessions": True}},
                {"$match": {"appName": {"$regex": f"^{mine}"}, "lsid": {"$exists": True}}},
            ])
            if inspect.isawaitable(cursor):  # motor returns the cursor, PyMongo's async API a coroutine
                cursor = await cursor
            stale = [{"id": op["lsid"]["id"]} async for op in cursor if op["appName"] != mine + INCARNATION]
            if stale:
                await self.client.admin.command("killSessions", stale)
                log.info("predecessor_sessions_ended", sessions=len(stale))
        except pymongo.errors.PyMongoError as exc:
            log.warning("predecessor_sessions_not_ended", error=str(exc))

    def start_session(self) -> Any:
        with translated():
            return translating(self.client.start_session())

    async def close(self) -> None:
        result = self.client.close()
        if hasattr(result, "__await__"):
            await result
