"""The MongoDB side of the catalog (``store.CatalogStore``): every query and
write of datasets, versions, and the frame revisions diff, merge, statistics
and purges read or write. Domain modules decide; this module stores.

Writes that must be all-or-nothing (a dataset with its first draft, a
snapshot, a version insert racing a dataset delete) run in one transaction.
Transactions that create a version also bump the dataset's ``version_seq``,
so they conflict with a concurrent DeleteDataset instead of leaving a version
without its dataset.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Sequence
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from framevault.auth.mongo_store import dataset_has_roles, delete_dataset_roles
from framevault.common.errors import FailedPrecondition, NotFound, PreconditionViolation
from framevault.metadata.catalog.documents import new_etag, now
from framevault.metadata.catalog.page_tokens import Cursor
from framevault.metadata.catalog.statistics import MAX_DISTRIBUTION_VALUES
from framevault.metadata.lineage import DRAFT, PUBLISHED, VersionHandle, visible_filter
from framevault.metadata.mongo_versions import MongoVersionReader, aggregate, equality_query, settle_leases
from framevault.metadata.transactions import in_transaction

Query = dict[str, Any]
# Fields enough to decide visibility and equality, without the content.
IDENTITY_FIELDS = {"_id": 1, "frame_id": 1, "version_id": 1, "hidden_in": 1, "etag": 1}


def base_facets() -> dict[str, list[dict[str, Any]]]:
    roi_list = {"$ifNull": ["$rois", []]}
    return {
        "frames": [
            {
                "$group": {
                    "_id": None,
                    "frames": {"$sum": 1},
                    "annotated": {"$sum": {"$cond": [{"$gt": [{"$size": roi_list}, 0]}, 1, 0]}},
                    "rois": {"$sum": {"$size": roi_list}},
                }
            }
        ],
        "labels": [
            {"$project": {"_id": 0, "rois.labels": 1}},
            {"$unwind": "$rois"},
            # An ROI counts once per label even if it lists the label twice.
            {"$project": {"label": {"$setUnion": [{"$ifNull": ["$rois.labels", []]}, []]}}},
            {"$unwind": "$label"},
            {"$group": {"_id": "$label", "count": {"$sum": 1}}},
        ],
    }


def distribution_facet(segments: tuple[str, ...]) -> list[dict[str, Any]]:
    # Segments were checked by split_key_path: no '$', no '.', so the path
    # addresses exactly the caller's nested key and cannot act as an operator.
    path = "$meta." + ".".join(segments)
    return [
        # Grouping on (present, value) keeps "no such key" apart from null.
        {"$group": {"_id": {"present": {"$ne": [{"$type": path}, "missing"]}, "value": path}, "count": {"$sum": 1}}},
        # The "missing" group first, so the limit never cuts it off.
        {"$sort": {"_id.present": 1, "count": -1, "_id.value": 1}},
        {"$limit": MAX_DISTRIBUTION_VALUES + 1},
    ]


def statistics_pipeline(version: VersionHandle, paths: Sequence[tuple[str, ...]], *, base: bool) -> list[dict[str, Any]]:
    facets: dict[str, list[dict[str, Any]]] = base_facets() if base else {}
    for i, segments in enumerate(paths):
        facets[f"meta{i}"] = distribution_facet(segments)
    return [{"$match": visible_filter(version)}, {"$facet": facets}]


class MongoCatalogStore(MongoVersionReader):

    # -- datasets ---------------------------------------------------------

    async def insert_dataset_with_draft(self, dataset: dict[str, Any], draft: dict[str, Any]) -> None:
        """Raises DuplicateKey when the name is taken; then nothing is written."""

        async def work(session: Any) -> None:
            await self._db.datasets.insert_one(dataset, session=session)
            await self._db.versions.insert_one(draft, session=session)

        await in_transaction(self._db, work)

    def list_datasets(self, name_prefix: str, tags: Sequence[str], after_name: str | None, limit: int) -> Cursor:
        query: Query = {}
        if name_prefix:
            # A key range rather than a regex: caller text is only ever a value.
            query["name"] = {"$gte": name_prefix, "$lt": name_prefix[:-1] + chr(ord(name_prefix[-1]) + 1)}
        if tags:
            query["tags"] = {"$all": list(tags)}
        if after_name is not None:
            query = {"$and": [query, {"name": {"$gt": after_name}}]}
        cursor: Cursor = self._db.datasets.find(query).sort("name", ASCENDING).limit(limit).batch_size(limit)
        return cursor

    async def update_dataset(self, dataset_id: str, etag: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        query: Query = {"_id": dataset_id}
        if etag:
            query["etag"] = etag
        return await self._db.datasets.find_one_and_update(
            query,
            {"$set": {**changes, "update_time": now(), "etag": new_etag()}},
            return_document=ReturnDocument.AFTER,
        )

    async def delete_dataset(self, dataset: dict[str, Any], force: bool) -> int:
        # Its frame revisions are then invisible: no lineage names their versions.

        async def work(session: Any) -> int:
            if not force:
                published = await self._db.versions.find_one(
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
            removed = await self._db.datasets.delete_one({"_id": dataset["_id"]}, session=session)
            if removed.deleted_count == 0:
                raise NotFound("dataset", dataset["_id"], field="dataset.id")
            versions = await self._db.versions.delete_many({"dataset_id": dataset["_id"]}, session=session)
            await settle_leases(self._db, session, {"dataset_id": dataset["_id"]})
            await delete_dataset_roles(self._db, dataset["_id"], session)
            return int(versions.deleted_count)

        return await in_transaction(self._db, work)

    async def deleted_dataset_has_leftovers(self, dataset_id: str) -> bool:
        if await self._db.versions.find_one({"dataset_id": dataset_id}, {"_id": 1}) is not None:
            return False
        return await self._db.frames.find_one({"dataset_id": dataset_id}, {"_id": 1}) is not None \
            or await dataset_has_roles(self._db, dataset_id)

    async def delete_role_bindings(self, dataset_id: str) -> int:
        return await delete_dataset_roles(self._db, dataset_id)

    async def dataset_of_deleted_version_leftovers(self, version_id: str) -> str | None:
        if await self._db.versions.find_one({"$or": [{"_id": version_id}, {"parent_ids": version_id}]},
                                           {"_id": 1}) is not None:
            return None
        leftover = await self._db.frames.find_one({"version_id": version_id}, {"dataset_id": 1})
        return None if leftover is None else str(leftover["dataset_id"])

    async def purge_revisions(self, *, dataset_id: str | None = None, version_id: str | None = None) -> int:
        query = equality_query(dataset_id=dataset_id, version_id=version_id)
        deleted = 0
        size = self.settings.catalog_purge_batch_frames
        while True:
            batch = await self._db.frames.find(query, {"_id": 1}).limit(size).to_list(length=size)
            if not batch:
                return deleted
            result = await self._db.frames.delete_many({"_id": {"$in": [d["_id"] for d in batch]}})
            deleted += int(result.deleted_count)

    async def unhide_everywhere(self, version_id: str) -> None:
        await self._db.frames.update_many({"hidden_in": version_id}, {"$pull": {"hidden_in": version_id}})

    # -- versions ---------------------------------------------------------

    async def _touch_dataset(self, dataset_id: str, session: Any) -> None:
        touched = await self._db.datasets.update_one({"_id": dataset_id}, {"$inc": {"version_seq": 1}}, session=session)
        if touched.matched_count == 0:
            raise NotFound("dataset", dataset_id, field="dataset.id")

    async def insert_version(self, version: dict[str, Any]) -> None:

        async def work(session: Any) -> None:
            await self._touch_dataset(version["dataset_id"], session)
            await self._db.versions.insert_one(version, session=session)

        await in_transaction(self._db, work)

    async def version_graph(self, dataset_id: str) -> list[dict[str, Any]]:
        return await self._db.versions.find(
            {"dataset_id": dataset_id}, {"parent_ids": 1, "create_time": 1, "lineage": 1}).to_list(length=None)

    def list_versions(self, dataset_id: str, after: tuple[Any, str] | None, limit: int) -> Cursor:
        query: Query = {"dataset_id": dataset_id}
        if after is not None:
            created, version_id = after
            query["$or"] = [
                {"create_time": {"$gt": created}},
                {"create_time": created, "_id": {"$gt": version_id}},
            ]
        cursor: Cursor = (
            self._db.versions.find(query).sort([("create_time", ASCENDING), ("_id", ASCENDING)])
            .limit(limit).batch_size(limit)
        )
        return cursor

    async def update_version(
        self, version_id: str, changes: dict[str, Any], *, etag: str = "", status: str | None = None
    ) -> dict[str, Any] | None:
        query: Query = {"_id": version_id}
        if etag:
            query["etag"] = etag
        if status is not None:
            query["status"] = status
        return await self._db.versions.find_one_and_update(
            query,
            {"$set": {**changes, "update_time": now(), "etag": new_etag()}},
            return_document=ReturnDocument.AFTER,
        )

    async def publish(self, version_id: str) -> dict[str, Any] | None:
        # One transaction with a conditional update. The draft's write leases
        # are settled in it, so a publish is ordered strictly before or after
        # each frame write.

        async def work(session: Any) -> dict[str, Any] | None:
            moment = now()
            published = await self._db.versions.find_one_and_update(
                {"_id": version_id, "status": DRAFT},
                {"$set": {"status": PUBLISHED, "publish_time": moment, "update_time": moment,
                          "etag": new_etag()}},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            return None if published is None else await self._settle_frame_count(published, session)

        return await in_transaction(self._db, work)

    async def _settle_frame_count(self, published: dict[str, Any], session: Any) -> dict[str, Any]:
        """Folds the write leases of a version just published into its
        ``frame_count`` (frames/write_leases.py); the updated document."""
        held = await settle_leases(self._db, session, {"version_id": published["_id"]})
        if not held:
            return published
        settled = await self._db.versions.find_one_and_update(
            {"_id": published["_id"]}, {"$inc": {"frame_count": held}},
            return_document=ReturnDocument.AFTER, session=session)
        assert settled is not None
        return dict(settled)

    async def snapshot(
        self, version_id: str, snapshot_changes: dict[str, Any], make_draft: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:

        async def work(session: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
            moment = now()
            published = await self._db.versions.find_one_and_update(
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
            await self._db.versions.insert_one(draft, session=session)
            return published, draft

        return await in_transaction(self._db, work)

    async def delete_draft(self, version_id: str) -> str | None:

        async def work(session: Any) -> str | None:
            current = await self._db.versions.find_one({"_id": version_id}, {"status": 1}, session=session)
            if current is None:
                return "NOT_FOUND"
            if current["status"] != DRAFT:
                return "PUBLISHED"
            if await self._db.versions.find_one({"parent_ids": version_id}, {"_id": 1}, session=session):
                return "HAS_CHILDREN"
            # Conditional, so a publish committed after our snapshot read
            # makes this a write conflict and the transaction is retried.
            await self._db.versions.delete_one({"_id": version_id, "status": DRAFT}, session=session)
            await settle_leases(self._db, session, {"version_id": version_id})
            return None

        return await in_transaction(self._db, work)

    async def set_statistics_cache(self, version_id: str, statistics: dict[str, Any]) -> None:
        await self._db.versions.update_one(
            {"_id": version_id, "status": PUBLISHED}, {"$set": {"statistics": statistics}}
        )

    # -- frame revisions (diff, merge, statistics, purges) -------------------

    def _frame_ids(self, field: str, version_ids: Sequence[str], index: str, after: str | None
                   ) -> AsyncIterable[dict[str, Any]]:
        selector: Any = {"$in": list(version_ids)} if len(version_ids) > 1 else version_ids[0]
        query: dict[str, Any] = {field: selector}
        if after is not None:
            # A bound on the index's second key: each version's range starts at ``after``.
            query["frame_id"] = {"$gt": after}
        cursor: AsyncIterable[dict[str, Any]] = (
            self._db.frames.find(query, {"_id": 0, "frame_id": 1},
                                batch_size=self.settings.mongodb_cursor_batch_size)
            .sort("frame_id", ASCENDING)
            .hint(index)
        )
        return cursor

    def frame_ids_written_by(self, version_ids: Sequence[str], *, after: str | None = None
                             ) -> AsyncIterable[dict[str, Any]]:
        return self._frame_ids("version_id", version_ids, "revision_unique", after)

    def frame_ids_hidden_by(self, version_ids: Sequence[str], *, after: str | None = None
                            ) -> AsyncIterable[dict[str, Any]]:
        return self._frame_ids("hidden_in", version_ids, "hidden_frames", after)

    async def revisions_of(
        self, dataset_id: str, frame_ids: Sequence[str], version_ids: Sequence[str], *, full: bool
    ) -> list[dict[str, Any]]:
        cursor = self._db.frames.find(
            {"dataset_id": dataset_id, "frame_id": {"$in": list(frame_ids)}, "version_id": {"$in": list(version_ids)}},
            None if full else IDENTITY_FIELDS,
            batch_size=self.settings.mongodb_cursor_batch_size,
        ).hint("frame_lineage")
        return list(await cursor.to_list(length=None))

    async def insert_revisions(self, revisions: Sequence[dict[str, Any]]) -> None:
        await self._db.frames.insert_many(revisions, ordered=False)

    async def hide_revisions(self, revision_ids: Sequence[Any], version_id: str) -> None:
        await self._db.frames.update_many({"_id": {"$in": list(revision_ids)}}, {"$addToSet": {"hidden_in": version_id}})

    async def frame_statistics(
        self, version: VersionHandle, meta_paths: Sequence[tuple[str, ...]], *, base: bool
    ) -> dict[str, Any]:
        cursor = await aggregate(self._db.frames, statistics_pipeline(version, meta_paths, base=base), allowDiskUse=True)
        rows = await cursor.to_list(length=1)
        return dict(rows[0]) if rows else {}

