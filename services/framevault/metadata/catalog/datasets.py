"""Datasets: create (with the first draft `Current`), get, list, update, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from framevault.api.metadata_values import metadata_to_dict
from framevault.common.errors import Aborted, AlreadyExists, DuplicateKey, FieldErrors, NotFound
from framevault.metadata.catalog import page_tokens
from framevault.metadata.catalog.documents import dataset_to_proto, new_etag, new_id, new_version_document, now
from framevault.metadata.catalog.store import CatalogStore
from framevault.metadata.catalog.validation import (
    check_description,
    check_meta,
    check_name,
    check_name_prefix,
    check_tags,
    fields_to_update,
)
from framevault.metadata.lineage import resolve_dataset
from framevault.v1 import dataset_pb2
from framevault.v1 import metadata_service_pb2 as ms

DEFAULT_DRAFT_NAME = "Current"
UPDATABLE_FIELDS = ("name", "description", "tags", "meta")


@dataclass
class DatasetPage:
    datasets: list[dataset_pb2.Dataset]
    next_page_token: str


@dataclass
class DeletedDataset:
    versions: int
    frames: int


def _check_dataset_fields(dataset: dataset_pb2.Dataset, fields: tuple[str, ...], errors: FieldErrors) -> None:
    if "name" in fields:
        check_name(dataset.name, "dataset.name", errors)
    if "description" in fields:
        check_description(dataset.description, "dataset.description", errors)
    if "tags" in fields:
        check_tags(dataset.tags, "dataset.tags", errors)
    if "meta" in fields:
        check_meta(dataset.meta, "dataset.meta", errors)


def _field_values(dataset: dataset_pb2.Dataset, fields: tuple[str, ...] | list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in fields:
        if name == "tags":
            values["tags"] = list(dataset.tags)
        elif name == "meta":
            values["meta"] = metadata_to_dict(dataset.meta)
        else:
            values[name] = getattr(dataset, name)
    return values


class Datasets:
    def __init__(self, store: CatalogStore, tokens: page_tokens.PageTokens):
        self.store = store
        self.tokens = tokens

    async def create(self, request: ms.CreateDatasetRequest) -> dict[str, Any]:
        errors = FieldErrors()
        _check_dataset_fields(request.dataset, UPDATABLE_FIELDS, errors)
        errors.raise_if_any()
        existing = await self.store.find_dataset(name=request.dataset.name)
        if existing is None:
            created = now()
            dataset = {
                "_id": new_id(),
                **_field_values(request.dataset, UPDATABLE_FIELDS),
                "create_time": created,
                "update_time": created,
                "etag": new_etag(),
                "version_seq": 0,
            }
            draft = new_version_document(
                version_id=new_id(), dataset_id=dataset["_id"], name=DEFAULT_DRAFT_NAME, created=created
            )
            try:
                await self.store.insert_dataset_with_draft(dataset, draft)
                return dataset
            except DuplicateKey:
                # Created concurrently under the same name: that one is the dataset.
                existing = await self.store.find_dataset(name=request.dataset.name)
                if existing is None:
                    raise
        if request.fail_if_exists:
            raise AlreadyExists("dataset", request.dataset.name, field="dataset.name")
        return existing

    async def get(self, ref: dataset_pb2.DatasetRef, field: str = "dataset") -> dict[str, Any]:
        return await resolve_dataset(self.store, ref, field)

    async def list(self, request: ms.ListDatasetsRequest) -> DatasetPage:
        errors = FieldErrors()
        page_size = page_tokens.check_page_size(request.page_size, "page_size", errors)
        check_name_prefix(request.name_prefix, "name_prefix", errors)
        check_tags(request.tags, "tags", errors)
        errors.raise_if_any()
        query_key = page_tokens.query_digest("datasets", request.name_prefix, sorted(request.tags))
        after = None
        if request.page_token:
            after = self.tokens.decode(request.page_token, query_key, [page_tokens.as_text])[0]
        datasets, token = await page_tokens.collect_page(
            self.store.list_datasets(request.name_prefix, request.tags, after, page_size + 1), page_size, dataset_to_proto,
            lambda last: self.tokens.encode([last["name"]], query_key),
        )
        return DatasetPage(datasets, token)

    async def update(self, request: ms.UpdateDatasetRequest) -> dict[str, Any]:
        errors = FieldErrors()
        fields = fields_to_update(request.update_mask.paths, request.dataset, UPDATABLE_FIELDS, errors)
        _check_dataset_fields(request.dataset, tuple(fields), errors)
        errors.raise_if_any()
        current = await resolve_dataset(self.store, request.dataset_ref, "dataset_ref")
        if request.etag and request.etag != current["etag"]:
            raise Aborted("dataset was modified since the etag was read", reason="ETAG_MISMATCH")
        try:
            updated = await self.store.update_dataset(current["_id"], request.etag, _field_values(request.dataset, fields))
        except DuplicateKey as exc:
            raise AlreadyExists("dataset", request.dataset.name, field="dataset.name") from exc
        if updated is None:
            if request.etag:
                raise Aborted("dataset was modified since the etag was read", reason="ETAG_MISMATCH")
            raise NotFound("dataset", current["_id"], field="dataset_ref")
        return updated

    async def delete(self, request: ms.DeleteDatasetRequest) -> DeletedDataset:
        try:
            dataset = await resolve_dataset(self.store, request.dataset, "dataset")
        except NotFound:
            # A delete interrupted after its transaction left invisible
            # revisions behind (and a dataset deleted before bindings went with
            # it, its role bindings): the same call by id finishes the purge.
            if request.dataset.WhichOneof("ref") == "id" and await self.store.deleted_dataset_has_leftovers(
                    request.dataset.id):
                await self.store.delete_role_bindings(request.dataset.id)
                return DeletedDataset(0, await self.store.purge_revisions(dataset_id=request.dataset.id))
            raise
        versions = await self.store.delete_dataset(dataset, request.force)
        frames = await self.store.purge_revisions(dataset_id=dataset["_id"])
        return DeletedDataset(versions, frames)

