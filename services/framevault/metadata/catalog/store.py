"""The MongoDB side of datasets and versions: every query and write of the
catalog's own documents. Domain modules decide; this module stores.

Writes that must be all-or-nothing (a dataset with its first draft, a
snapshot, a version insert racing a dataset delete) run in one transaction.
Transactions that create a version also bump the dataset's ``version_seq``,
so they conflict with a concurrent DeleteDataset instead of leaving a version
without its dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from framevault.common.errors import FailedPrecondition, NotFound, PreconditionViolation
from framevault.metadata.catalog.documents import new_etag, now
from framevault.metadata.db import Database
from framevault.metadata.frames.write_leases import settle_leases
from framevault.metadata.lineage import DRAFT, PUBLISHED
from framevault.metadata.transactions import in_transaction

Query = dict[str, Any]


class CatalogStore:
    def __init__(self, db: Database):
        self.db = db

    # -- datasets ---------------------------------------------------------

    async def insert_dataset_with_draft(self, dataset: dict[str, Any], draft: dict[str, Any]) -> None:
        """Raises DuplicateKey when the name is taken; then nothing is written."""

        async def work(session: Any) -> None:
            await self.db.datasets.insert_one(dataset, session=session)
            await self.db.versions.insert_one(draft, session=session)

        await in_transaction(self.db, work)

    async def find_dataset_by_name(self, name: str) -> dict[str, Any] | None:
        return await self.db.datasets.find_one({"name": name})

    def list_datasets(self, query: Query, after_name: str | None, limit: int) -> Any:
        """A cursor over the datasets matching ``query`` after ``after_name``, by name."""
        if after_name is not None:
            query = {"$and": [query, {"name": {"$gt": after_name}}]}
        return self.db.datasets.find(query).sort("name", ASCENDING).limit(limit).batch_size(limit)

    async def update_dataset(self, dataset_id: str, etag: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """The updated document, or None when the id or the etag did not match."""
        query: Query = {"_id": dataset_id}
        if etag:
            query["etag"] = etag
        return await self.db.datasets.find_one_and_update(
            query,
            {"$set": {**changes, "update_time": now(), "etag": new_etag()}},
            return_document=ReturnDocument.AFTER,
        )

    async def delete_dataset(self, dataset: dict[str, Any], force: bool) -> int:
        """Deletes the dataset and its versions at once; the number of versions.

        Its frame revisions are then invisible (no lineage names their
        versions) and are purged by ``purge_frames``.
        """

        async def work(session: Any) -> int:
            if not force:
                published = await self.db.versions.find_one(
                    {"dataset_id": dataset["_id"], "status": PUBLISHED}, {"name": 1}, session=session
                )
                if published is not None:
                    raise FailedPrecondition(
                        f"dataset {dataset['name']!r} has published versions (e.g. {published['name']!r}); "
                        "set force to delete it anyway",
                        [PreconditionViolation("PUBLISHED_VERSIONS", dataset["_id"],
                                               "published versions exist and force is false")],
                        reason="DATASET_HAS_PUBLISHED_VERSIONS",
                    )
            removed = await self.db.datasets.delete_one({"_id": dataset["_id"]}, session=session)
            if removed.deleted_count == 0:
                raise NotFound("dataset", dataset["_id"], field="dataset.id")
            versions = await self.db.versions.delete_many({"dataset_id": dataset["_id"]}, session=session)
            await settle_leases(self.db, session, {"dataset_id": dataset["_id"]})
            return int(versions.deleted_count)

        return await in_transaction(self.db, work)

    async def deleted_dataset_has_leftovers(self, dataset_id: str) -> bool:
        """Whether revisions of ``dataset_id`` remain while no version of it
        does: only then are they invisible left-overs of a deleted dataset."""
        if await self.db.versions.find_one({"dataset_id": dataset_id}, {"_id": 1}) is not None:
            return False
        return await self.db.frames.find_one({"dataset_id": dataset_id}, {"_id": 1}) is not None

    async def dataset_of_deleted_version_leftovers(self, version_id: str) -> str | None:
        """The dataset of revisions ``version_id`` wrote, if they are invisible
        left-overs of a deleted version; None when there are none or when a
        version document is, or descends from, ``version_id`` (a version's
        descendants see what it wrote)."""
        if await self.db.versions.find_one({"$or": [{"_id": version_id}, {"parent_ids": version_id}]},
                                           {"_id": 1}) is not None:
            return None
        leftover = await self.db.frames.find_one({"version_id": version_id}, {"dataset_id": 1})
        return None if leftover is None else str(leftover["dataset_id"])

    async def purge_frames(self, query: Query) -> int:
        """Deletes the revisions matching ``query`` in batches; how many."""
        deleted = 0
        size = self.db.settings.catalog_purge_batch_frames
        while True:
            batch = await self.db.frames.find(query, {"_id": 1}).limit(size).to_list(length=size)
            if not batch:
                return deleted
            result = await self.db.frames.delete_many({"_id": {"$in": [d["_id"] for d in batch]}})
            deleted += int(result.deleted_count)

    async def unhide_everywhere(self, version_id: str) -> None:
        """Removes ``version_id`` from every revision's ``hidden_in``."""
        await self.db.frames.update_many({"hidden_in": version_id}, {"$pull": {"hidden_in": version_id}})

    # -- versions ---------------------------------------------------------

    async def _touch_dataset(self, dataset_id: str, session: Any) -> None:
        touched = await self.db.datasets.update_one({"_id": dataset_id}, {"$inc": {"version_seq": 1}}, session=session)
        if touched.matched_count == 0:
            raise NotFound("dataset", dataset_id, field="dataset.id")

    async def insert_version(self, version: dict[str, Any]) -> None:
        """Raises DuplicateKey when the name is taken in the dataset."""

        async def work(session: Any) -> None:
            await self._touch_dataset(version["dataset_id"], session)
            await self.db.versions.insert_one(version, session=session)

        await in_transaction(self.db, work)

    async def get_version(self, version_id: str) -> dict[str, Any] | None:
        return await self.db.versions.find_one({"_id": version_id})

    async def versions_of_dataset(self, dataset_id: str, projection: dict[str, int]) -> list[dict[str, Any]]:
        return await self.db.versions.find({"dataset_id": dataset_id}, projection).to_list(length=None)

    def list_versions(self, dataset_id: str, after: tuple[Any, str] | None, limit: int) -> Any:
        """A cursor over the dataset's versions after ``after`` (creation time, id), oldest first."""
        query: Query = {"dataset_id": dataset_id}
        if after is not None:
            created, version_id = after
            query["$or"] = [
                {"create_time": {"$gt": created}},
                {"create_time": created, "_id": {"$gt": version_id}},
            ]
        return (
            self.db.versions.find(query).sort([("create_time", ASCENDING), ("_id", ASCENDING)])
            .limit(limit).batch_size(limit)
        )

    async def update_version(self, query: Query, changes: dict[str, Any]) -> dict[str, Any] | None:
        return await self.db.versions.find_one_and_update(
            query,
            {"$set": {**changes, "update_time": now(), "etag": new_etag()}},
            return_document=ReturnDocument.AFTER,
        )

    async def publish(self, version_id: str, changes: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Draft → published in one transaction with a conditional update;
        None if it was no draft. The draft's write leases are settled in it,
        so a publish is ordered strictly before or after each frame write."""

        async def work(session: Any) -> dict[str, Any] | None:
            moment = now()
            published = await self.db.versions.find_one_and_update(
                {"_id": version_id, "status": DRAFT},
                {"$set": {**(changes or {}), "status": PUBLISHED, "publish_time": moment, "update_time": moment,
                          "etag": new_etag()}},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            return None if published is None else await self._settle_frame_count(published, session)

        return await in_transaction(self.db, work)

    async def _settle_frame_count(self, published: dict[str, Any], session: Any) -> dict[str, Any]:
        """Folds the write leases of a version just published into its
        ``frame_count`` (frames/write_leases.py); the updated document."""
        held = await settle_leases(self.db, session, {"version_id": published["_id"]})
        if not held:
            return published
        settled = await self.db.versions.find_one_and_update(
            {"_id": published["_id"]}, {"$inc": {"frame_count": held}},
            return_document=ReturnDocument.AFTER, session=session)
        assert settled is not None
        return dict(settled)

    async def snapshot(
        self, version_id: str, snapshot_changes: dict[str, Any], make_draft: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Publishes the draft with ``snapshot_changes`` and inserts
        ``make_draft(published)`` in one transaction; None if it was no draft.
        Raises DuplicateKey when the snapshot name is taken."""

        async def work(session: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
            moment = now()
            published = await self.db.versions.find_one_and_update(
                {"_id": version_id, "status": DRAFT},
                {"$set": {**snapshot_changes, "status": PUBLISHED, "publish_time": moment, "update_time": moment,
                          "etag": new_etag()}},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if published is None:
                return None
            published = await self._settle_frame_count(published, session)
            draft = make_draft(published)
            await self._touch_dataset(published["dataset_id"], session)
            await self.db.versions.insert_one(draft, session=session)
            return published, draft

        return await in_transaction(self.db, work)

    async def delete_draft(self, version_id: str) -> str | None:
        """Deletes a childless draft's document; why not, if it was refused
        (``NOT_FOUND``, ``PUBLISHED`` or ``HAS_CHILDREN``)."""

        async def work(session: Any) -> str | None:
            current = await self.db.versions.find_one({"_id": version_id}, {"status": 1}, session=session)
            if current is None:
                return "NOT_FOUND"
            if current["status"] != DRAFT:
                return "PUBLISHED"
            if await self.db.versions.find_one({"parent_ids": version_id}, {"_id": 1}, session=session):
                return "HAS_CHILDREN"
            # Conditional, so a publish committed after our snapshot read
            # makes this a write conflict and the transaction is retried.
            await self.db.versions.delete_one({"_id": version_id, "status": DRAFT}, session=session)
            await settle_leases(self.db, session, {"version_id": version_id})
            return None

        return await in_transaction(self.db, work)

    async def set_statistics_cache(self, version_id: str, statistics: dict[str, Any]) -> None:
        """Caches statistics of a published (immutable) version."""
        await self.db.versions.update_one(
            {"_id": version_id, "status": PUBLISHED}, {"$set": {"statistics": statistics}}
        )

