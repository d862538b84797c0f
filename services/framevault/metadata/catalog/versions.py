"""Versions: create (root or copy-free child), get, list, update, publish,
snapshot, delete."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from framevault.api.metadata_values import metadata_to_dict
from framevault.common.errors import (
    Aborted,
    AlreadyExists,
    DuplicateKey,
    FailedPrecondition,
    FieldErrors,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
)
from framevault.metadata.catalog import page_tokens
from framevault.metadata.catalog.datasets import DEFAULT_DRAFT_NAME
from framevault.metadata.catalog.documents import (
    mask_labels_to_docs,
    new_id,
    new_version_document,
    now,
    version_to_proto,
)
from framevault.metadata.catalog.store import CatalogStore
from framevault.metadata.catalog.validation import (
    check_description,
    check_mask_labels,
    check_meta,
    check_name,
    fields_to_update,
)
from framevault.metadata.lineage import (
    PUBLISHED,
    VersionHandle,
    live_frame_counts,
    require_draft,
    resolve_dataset,
    resolve_version_document,
)
from framevault.v1 import dataset_pb2
from framevault.v1 import metadata_service_pb2 as ms

UPDATABLE_FIELDS = ("name", "description", "meta", "mask_labels")
# Fields that describe a version rather than its content: changeable after publishing.
DESCRIPTIVE_FIELDS = ("name", "description")


@dataclass
class VersionPage:
    versions: list[dataset_pb2.Version]
    next_page_token: str


def check_version_fields(version: dataset_pb2.Version, fields: tuple[str, ...], errors: FieldErrors) -> None:
    if "name" in fields:
        check_name(version.name, "version.name", errors)
    if "description" in fields:
        check_description(version.description, "version.description", errors)
    if "meta" in fields:
        check_meta(version.meta, "version.meta", errors)
    if "mask_labels" in fields:
        check_mask_labels(version.mask_labels, "version.mask_labels", errors)


def version_published_error(doc: dict[str, Any], action: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"version {doc['name']!r} ({doc['_id']}) is published; {action}",
        [PreconditionViolation("VERSION_STATUS", doc["_id"], f"version is published; {action}")],
        reason="VERSION_PUBLISHED",
    )


def default_snapshot_name(moment: dt.datetime, *, precise: bool = False) -> str:
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if precise:
        stamp += f".{moment.microsecond // 1000:03d}"
    return f"snapshot {stamp}Z"


class Versions:
    def __init__(self, store: CatalogStore, tokens: page_tokens.PageTokens):
        self.store = store
        self.tokens = tokens

    async def create(self, request: ms.CreateVersionRequest) -> dict[str, Any]:
        errors = FieldErrors()
        check_version_fields(request.version, UPDATABLE_FIELDS, errors)
        errors.raise_if_any()
        dataset = await resolve_dataset(self.store, request.dataset, "dataset")
        parents: list[dict[str, Any]] = []
        if request.HasField("parent"):
            parent = await resolve_version_document(self.store, request.parent, "parent")
            if parent["dataset_id"] != dataset["_id"]:
                raise InvalidArgument.field("parent", f"version {parent['_id']} belongs to another dataset")
            if parent["status"] != PUBLISHED:
                raise FailedPrecondition(
                    f"parent version {parent['name']!r} ({parent['_id']}) is a draft; only published versions "
                    "can have children",
                    [PreconditionViolation("VERSION_STATUS", parent["_id"], "parent must be published")],
                    reason="PARENT_NOT_PUBLISHED",
                )
            parents.append(parent)
        mask_labels = mask_labels_to_docs(request.version.mask_labels)
        if not mask_labels and parents:
            # The child holds the parent's masks, so it keeps their meaning.
            mask_labels = parents[0].get("mask_labels", [])
        doc = new_version_document(
            version_id=new_id(),
            dataset_id=dataset["_id"],
            name=request.version.name,
            description=request.version.description,
            parents=parents,
            meta=metadata_to_dict(request.version.meta),
            mask_labels=mask_labels,
            # A published parent's count is final: frame writes only touch drafts.
            frame_count=int(parents[0]["frame_count"]) if parents else 0,
        )
        try:
            await self.store.insert_version(doc)
        except DuplicateKey as exc:
            raise AlreadyExists("version", request.version.name, field="version.name") from exc
        return doc

    async def get(self, ref: dataset_pb2.VersionRef, field: str = "version") -> dict[str, Any]:
        doc = await resolve_version_document(self.store, ref, field)
        await live_frame_counts(self.store, [doc])
        return doc

    async def list(self, request: ms.ListVersionsRequest) -> VersionPage:
        errors = FieldErrors()
        page_size = page_tokens.check_page_size(request.page_size, "page_size", errors)
        errors.raise_if_any()
        dataset = await resolve_dataset(self.store, request.dataset, "dataset")
        query_key = page_tokens.query_digest("versions", dataset["_id"])
        after = None
        if request.page_token:
            created, version_id = self.tokens.decode(
                request.page_token, query_key, [page_tokens.as_time, page_tokens.as_id])
            after = (created, version_id)
        versions, token = await page_tokens.collect_page(
            self.store.list_versions(dataset["_id"], after, page_size + 1), page_size, version_to_proto,
            lambda last: self.tokens.encode([last["create_time"], last["_id"]], query_key),
        )
        counts = await self.store.exact_frame_counts(v.id for v in versions if v.status == dataset_pb2.VERSION_STATUS_DRAFT)
        for version in versions:
            version.frame_count = counts.get(version.id, version.frame_count)
        return VersionPage(versions, token)

    async def update(self, request: ms.UpdateVersionRequest) -> dict[str, Any]:
        errors = FieldErrors()
        fields = fields_to_update(request.update_mask.paths, request.version, UPDATABLE_FIELDS, errors)
        check_version_fields(request.version, tuple(fields), errors)
        errors.raise_if_any()
        current = await resolve_version_document(self.store, request.version_ref, "version_ref")
        content_fields = [f for f in fields if f not in DESCRIPTIVE_FIELDS]
        if content_fields and current["status"] == PUBLISHED:
            raise version_published_error(current, f"{', '.join(content_fields)} can only change on drafts")
        if request.etag and request.etag != current["etag"]:
            raise Aborted("version was modified since the etag was read", reason="ETAG_MISMATCH")
        changes: dict[str, Any] = {}
        for name in fields:
            if name == "meta":
                changes["meta"] = metadata_to_dict(request.version.meta)
            elif name == "mask_labels":
                changes["mask_labels"] = mask_labels_to_docs(request.version.mask_labels)
            else:
                changes[name] = getattr(request.version, name)
        try:
            updated = await self.store.update_version(
                current["_id"], changes, etag=request.etag, status=current["status"] if content_fields else None)
        except DuplicateKey as exc:
            raise AlreadyExists("version", request.version.name, field="version.name") from exc
        if updated is None:
            latest = await self.store.find_version(version_id=current["_id"])
            if latest is None:
                raise NotFound("version", current["_id"], field="version_ref")
            if content_fields and latest["status"] == PUBLISHED:
                raise version_published_error(latest, f"{', '.join(content_fields)} can only change on drafts")
            raise Aborted("version was modified since the etag was read", reason="ETAG_MISMATCH")
        await live_frame_counts(self.store, [updated])
        return updated

    async def publish(self, request: ms.PublishVersionRequest) -> dict[str, Any]:
        current = await resolve_version_document(self.store, request.version, "version")
        require_draft(VersionHandle.from_document(current))
        published = await self.store.publish(current["_id"])
        if published is None:
            await self._raise_not_draft(current["_id"])
        assert published is not None
        return published

    async def _raise_not_draft(self, version_id: str) -> None:
        latest = await self.store.find_version(version_id=version_id)
        if latest is None:
            raise NotFound("version", version_id, field="version.id")
        require_draft(VersionHandle.from_document(latest))
        raise Aborted("version changed concurrently; retry")

    async def snapshot(self, request: ms.SnapshotVersionRequest) -> tuple[dict[str, Any], dict[str, Any]]:
        errors = FieldErrors()
        if request.snapshot_name:
            check_name(request.snapshot_name, "snapshot_name", errors)
        check_description(request.description, "description", errors)
        ref = request.version
        if ref.WhichOneof("ref") is None:
            if not ref.HasField("dataset"):
                errors.add("version.dataset", "name the draft, or its dataset to snapshot its draft `Current`")
            ref = dataset_pb2.VersionRef(dataset=ref.dataset, name=DEFAULT_DRAFT_NAME)
        errors.raise_if_any()
        current = await resolve_version_document(self.store, ref, "version")
        require_draft(VersionHandle.from_document(current))
        snapshot_name = request.snapshot_name
        if not snapshot_name:
            moment = now()
            snapshot_name = default_snapshot_name(moment)
            taken = await self.store.find_version(dataset_id=current["dataset_id"], name=snapshot_name)
            if taken is not None:
                snapshot_name = default_snapshot_name(moment, precise=True)
        snapshot_changes: dict[str, Any] = {"name": snapshot_name}
        if request.description:
            snapshot_changes["description"] = request.description

        def make_draft(published: dict[str, Any]) -> dict[str, Any]:
            return new_version_document(
                version_id=new_id(),
                dataset_id=published["dataset_id"],
                name=current["name"],
                description=current.get("description", ""),
                parents=[published],
                meta=published.get("meta", {}),
                mask_labels=published.get("mask_labels", []),
                frame_count=int(published["frame_count"]),
            )

        try:
            result = await self.store.snapshot(current["_id"], snapshot_changes, make_draft)
        except DuplicateKey as exc:
            raise AlreadyExists("version", snapshot_name, field="snapshot_name") from exc
        if result is None:
            await self._raise_not_draft(current["_id"])
        assert result is not None
        return result

    async def delete(self, request: ms.DeleteVersionRequest) -> int:
        try:
            current = await resolve_version_document(self.store, request.version, "version")
        except NotFound:
            finished = await self._finish_interrupted_delete(request.version)
            if finished is None:
                raise
            return finished
        if current["status"] == PUBLISHED:
            raise version_published_error(current, "only drafts can be deleted")
        refusal = await self.store.delete_draft(current["_id"])
        if refusal == "PUBLISHED":
            raise version_published_error(current, "only drafts can be deleted")
        if refusal == "HAS_CHILDREN":
            raise FailedPrecondition(
                f"version {current['name']!r} ({current['_id']}) has child versions",
                [PreconditionViolation("VERSION_CHILDREN", current["_id"], "delete its children first")],
                reason="VERSION_HAS_CHILDREN",
            )
        if refusal == "NOT_FOUND":
            raise NotFound("version", current["_id"], field="version")
        return await self._purge_revisions(current["_id"])

    async def _finish_interrupted_delete(self, ref: dataset_pb2.VersionRef) -> int | None:
        """A delete interrupted after removing the version document left
        invisible revisions behind: the same call by id purges them. None when
        ``ref`` names no such left-overs — in particular whenever a version
        document with that id exists (in whichever dataset), or descends from
        it, since its revisions are then still seen."""
        if ref.WhichOneof("ref") != "id":
            return None
        dataset_id = await self.store.dataset_of_deleted_version_leftovers(ref.id)
        if dataset_id is None:
            return None
        if ref.HasField("dataset") and (await resolve_dataset(self.store, ref.dataset, "version.dataset"))["_id"] != dataset_id:
            return None
        return await self._purge_revisions(ref.id)

    async def _purge_revisions(self, version_id: str) -> int:
        # No lineage names the version any more, so what remains is invisible
        # to every reader while it is cleaned up.
        deleted = await self.store.purge_revisions(version_id=version_id)
        await self.store.unhide_everywhere(version_id)
        return deleted

