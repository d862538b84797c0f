"""MongoDB implementation of ``store.AccessStore``: collections ``api_keys``
and ``role_bindings`` beside the catalog's, reached through the same
translating handles (driver errors become domain errors here)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from framevault.auth.permissions import ADMIN
from framevault.auth.store import GLOBAL, Document
from framevault.common.errors import NotFound
from framevault.metadata.db import FRAMES, Database
from framevault.metadata.mongo_errors import translated, translating
from framevault.metadata.transactions import in_transaction

API_KEYS = "api_keys"
ROLE_BINDINGS = "role_bindings"

# The frame fields that hold blob URIs (sources, their previews and masks),
# each with the index CheckBlobAccess finds frames by. Each index is partial:
# it holds only frames that reference a blob in that field, so frames of
# external URIs (s3, https, file) and frames without previews or masks cost
# ingest no index entry. ``blob:`` URIs sort between these bounds (";" follows
# ":"). A query names only the URIs (``$in``): the planner proves that URIs in
# the bounds lie inside the partial filter. Naming the bounds as well let it
# weigh plans bounded by them alone (the fields are multikey, so it may not
# intersect them with the URIs), reading every frame that references a blob.
_BLOB_URI_RANGE = {"$gte": "blob:", "$lt": "blob;"}
_BLOB_URI_INDEXES = {"sources.uri": "blob_source_uris", "sources.preview.uri": "blob_preview_uris",
                     "sources.masks.uri": "blob_mask_uris"}

INDEXES: dict[str, list[IndexModel]] = {
    API_KEYS: [
        IndexModel([("create_time", DESCENDING), ("_id", DESCENDING)], name="newest"),
        IndexModel([("principal", ASCENDING), ("create_time", DESCENDING), ("_id", DESCENDING)],
                   name="principal_newest"),
    ],
    ROLE_BINDINGS: [
        IndexModel([("principal", ASCENDING), ("dataset_id", ASCENDING)], name="principal_dataset_unique",
                   unique=True),
        IndexModel([("dataset_id", ASCENDING), ("principal", ASCENDING)], name="dataset_principal"),
    ],
    FRAMES: [IndexModel([(path, ASCENDING)], name=name, partialFilterExpression={path: _BLOB_URI_RANGE})
             for path, name in _BLOB_URI_INDEXES.items()],
}


async def delete_dataset_roles(db: Database, dataset_id: str, session: Any = None) -> int:
    """Deletes every role binding of a dataset. DeleteDataset calls it in the
    transaction that deletes the dataset, and again when it finishes an
    interrupted delete."""
    result = await translating(db.db[ROLE_BINDINGS]).delete_many({"dataset_id": dataset_id}, session=session)
    return int(result.deleted_count)


async def dataset_has_roles(db: Database, dataset_id: str) -> bool:
    return await translating(db.db[ROLE_BINDINGS]).find_one({"dataset_id": dataset_id}, {"_id": 1}) is not None


class MongoAccessStore:
    def __init__(self, db: Database):
        self._db = db
        self.api_keys = translating(db.db[API_KEYS])
        self.role_bindings = translating(db.db[ROLE_BINDINGS])

    async def prepare(self) -> None:
        for name, indexes in INDEXES.items():
            with translated():
                await self._db.db[name].create_indexes(indexes)

    # -- API keys -----------------------------------------------------------------

    async def insert_api_key(self, key: Document) -> None:
        await self.api_keys.insert_one(key)

    async def find_api_key(self, key_id: str) -> Document | None:
        return await self.api_keys.find_one({"_id": key_id})

    async def list_api_keys(self, principal: str, include_revoked: bool,
                            after: tuple[dt.datetime, str] | None, limit: int) -> Any:
        query: dict[str, Any] = {}
        if principal:
            query["principal"] = principal
        if not include_revoked:
            query["revoke_time"] = None
        if after is not None:
            time, key_id = after
            query["$or"] = [{"create_time": {"$lt": time}}, {"create_time": time, "_id": {"$lt": key_id}}]
        return self.api_keys.find(query).sort([("create_time", DESCENDING), ("_id", DESCENDING)]) \
            .limit(limit).batch_size(limit)

    async def revoke_api_key(self, key_id: str, when: dt.datetime) -> Document | None:
        revoked = await self.api_keys.find_one_and_update(
            {"_id": key_id, "revoke_time": None}, {"$set": {"revoke_time": when}},
            return_document=ReturnDocument.AFTER)
        return revoked if revoked is not None else await self.find_api_key(key_id)

    async def insert_bootstrap_admin_key(self, binding: Document, key: Document, now: dt.datetime) -> bool:
        async def work(session: Any) -> bool:
            if await self._active_admin_key_exists(now, session):
                return False
            # Every bootstrap writes the admin binding (the counter makes it a
            # real write even when an earlier bootstrap left it as it is), so
            # two concurrent bootstraps conflict and the one retried finds the
            # other's key.
            await self.role_bindings.update_one(
                {"principal": binding["principal"], "dataset_id": binding["dataset_id"]},
                {"$set": binding, "$inc": {"bootstrap_seq": 1}}, upsert=True, session=session)
            await self.api_keys.insert_one(key, session=session)
            return True

        return await in_transaction(self._db, work)

    async def _active_admin_key_exists(self, now: dt.datetime, session: Any) -> bool:
        admins = [doc["principal"] async for doc in
                  self.role_bindings.find({"dataset_id": GLOBAL, "role": ADMIN}, {"principal": 1}, session=session)]
        if not admins:
            return False
        key = await self.api_keys.find_one({
            "principal": {"$in": admins}, "revoke_time": None,
            "$or": [{"expire_time": None}, {"expire_time": {"$gt": now}}],
        }, {"_id": 1}, session=session)
        return key is not None

    # -- role bindings ------------------------------------------------------------

    async def put_role(self, binding: Document) -> Document:
        if binding["dataset_id"] == GLOBAL:
            return await self._upsert_role(binding, None)

        async def work(session: Any) -> Document:
            # A write to the dataset document makes a grant and a concurrent
            # DeleteDataset (which deletes the dataset's bindings in its
            # transaction) conflict, so no binding outlives its dataset.
            touched = await self._db.datasets.update_one({"_id": binding["dataset_id"]},
                                                         {"$inc": {"role_seq": 1}}, session=session)
            if touched.matched_count == 0:
                raise NotFound("dataset", binding["dataset_id"], field="dataset")
            return await self._upsert_role(binding, session)

        return await in_transaction(self._db, work)

    async def _upsert_role(self, binding: Document, session: Any) -> Document:
        stored = await self.role_bindings.find_one_and_update(
            {"principal": binding["principal"], "dataset_id": binding["dataset_id"]},
            {"$set": binding}, upsert=True, return_document=ReturnDocument.AFTER, session=session)
        assert stored is not None  # an upsert returns the document
        return dict(stored)

    async def delete_role(self, principal: str, dataset_id: str) -> Document | None:
        return await self.role_bindings.find_one_and_delete({"principal": principal, "dataset_id": dataset_id})

    async def roles_on(self, principal: str, dataset_ids: Sequence[str]) -> dict[str, int]:
        cursor = self.role_bindings.find({"principal": principal, "dataset_id": {"$in": list(dataset_ids)}},
                                         {"dataset_id": 1, "role": 1})
        return {doc["dataset_id"]: int(doc["role"]) async for doc in cursor}

    async def roles_of(self, principal: str, limit: int) -> list[Document]:
        cursor = self.role_bindings.find({"principal": principal}).sort("dataset_id", ASCENDING).limit(limit)
        return [doc async for doc in cursor]

    async def list_roles(self, dataset_id: str | None, principal: str | None,
                         after: tuple[str, str] | None, limit: int) -> Any:
        query: dict[str, Any] = {}
        if dataset_id is not None:
            query["dataset_id"] = dataset_id
        if principal:
            query["principal"] = principal
        if after is not None:
            last_dataset, last_principal = after
            query["$or"] = [{"dataset_id": {"$gt": last_dataset}},
                            {"dataset_id": last_dataset, "principal": {"$gt": last_principal}}]
        return self.role_bindings.find(query).sort([("dataset_id", ASCENDING), ("principal", ASCENDING)]) \
            .limit(limit).batch_size(limit)

    # -- catalog facts --------------------------------------------------------------

    async def dataset_id_by_name(self, name: str) -> str | None:
        doc = await self._db.datasets.find_one({"name": name}, {"_id": 1})
        return None if doc is None else str(doc["_id"])

    async def dataset_exists(self, dataset_id: str) -> bool:
        return await self._db.datasets.find_one({"_id": dataset_id}, {"_id": 1}) is not None

    async def dataset_of_version(self, version_id: str) -> str | None:
        doc = await self._db.versions.find_one({"_id": version_id}, {"dataset_id": 1})
        return None if doc is None else str(doc["dataset_id"])

    async def referenced_blob_uris(self, uris: Sequence[str], dataset_ids: Sequence[str] | None) -> set[str]:
        wanted = list(dict.fromkeys(uris))
        found: set[str] = set()
        for path in _BLOB_URI_INDEXES:
            remaining = [uri for uri in wanted if uri not in found]
            if not remaining:
                break
            values = await self._db.frames.distinct(path, _blob_uri_query(path, remaining, dataset_ids))
            found.update(value for value in values if value in remaining)
        return found

    async def explain_referenced_blob_uris(self, uris: Sequence[str], dataset_ids: Sequence[str] | None
                                           ) -> list[Document]:
        """The plans of ``referenced_blob_uris``'s queries, one per URI field."""
        with translated():
            return [await self._db.db.command({"explain": {"distinct": FRAMES, "key": path,
                                                           "query": _blob_uri_query(path, list(uris), dataset_ids)},
                                               "verbosity": "executionStats"})
                    for path in _BLOB_URI_INDEXES]


def _blob_uri_query(path: str, uris: list[str], dataset_ids: Sequence[str] | None) -> dict[str, Any]:
    query: dict[str, Any] = {path: {"$in": uris}}
    if dataset_ids is not None:
        query["dataset_id"] = {"$in": list(dataset_ids)}
    return query
