"""Resolving dataset and version references, and which frame revisions a
version sees. Shared by every area of the metadata service; see STORAGE.md.

``VersionReader`` is the part of storage every area reads: each area's store
protocol extends it, and ``mongo_versions.MongoVersionReader`` implements it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from framevault.common.errors import FailedPrecondition, FieldErrors, NotFound, PreconditionViolation
from framevault.v1 import dataset_pb2

DRAFT = "draft"
PUBLISHED = "published"
_ID = re.compile(r"[0-9a-f]{24}")


@dataclass(frozen=True)
class VersionHandle:
    """What readers and writers need to know of a version."""

    id: str
    dataset_id: str
    name: str
    status: str
    # First-parent chain from the root version to this one, inclusive.
    lineage: tuple[str, ...]

    @property
    def is_draft(self) -> bool:
        return self.status == DRAFT

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> VersionHandle:
        return cls(doc["_id"], doc["dataset_id"], doc["name"], doc["status"], tuple(doc["lineage"]))


class VersionReader(Protocol):
    """The reads of datasets and versions that every area makes."""

    async def find_dataset(self, *, dataset_id: str | None = None, name: str | None = None) -> dict[str, Any] | None:
        """The dataset document matching every given field (at least one); None if there is none."""
        ...

    async def find_version(
        self, *, version_id: str | None = None, dataset_id: str | None = None, name: str | None = None
    ) -> dict[str, Any] | None:
        """The version document matching every given field (at least one); None if there is none."""
        ...

    async def exact_frame_counts(self, version_ids: Iterable[str]) -> dict[str, int]:
        """The exact frame count of each existing version among ``version_ids``
        (frames/write_leases.py: a draft's document count plus its leases')."""
        ...


def visible_filter(version: VersionHandle) -> dict[str, Any]:
    """Matches exactly the frame revisions visible in ``version``.

    A revision is visible when a version of the lineage wrote it and no
    version of the lineage hid it (overwrote or deleted the frame).
    """
    lineage = list(version.lineage)
    return {
        "dataset_id": version.dataset_id,
        "version_id": {"$in": lineage} if len(lineage) > 1 else lineage[0],
        "hidden_in": {"$nin": lineage},
    }


def visible_expression(lineage: Any) -> dict[str, Any]:
    """``visible_filter`` as an aggregation expression on a frame revision,
    for a lineage given as an expression (``"$$lineage"`` inside a
    ``$lookup``); the dataset is matched by the caller."""
    return {"$and": [
        {"$in": ["$version_id", lineage]},
        {"$eq": [{"$size": {"$setIntersection": [{"$ifNull": ["$hidden_in", []]}, lineage]}}, 0]},
    ]}


def is_visible(revision: dict[str, Any], lineage: frozenset[str]) -> bool:
    """``visible_filter`` applied to a fetched revision document, for code
    that reads revisions of several versions at once and sorts them out."""
    return revision["version_id"] in lineage and not lineage.intersection(revision.get("hidden_in", ()))


def require_draft(version: VersionHandle) -> None:
    if not version.is_draft:
        raise FailedPrecondition(
            f"version {version.name!r} ({version.id}) is published and read-only",
            [PreconditionViolation("VERSION_STATUS", version.id, "version is published; only drafts accept writes")],
            reason="VERSION_PUBLISHED",
        )


def _one_of(ref: Any, field: str, errors: FieldErrors) -> tuple[str, str] | None:
    kind = ref.WhichOneof("ref")
    if kind is None:
        errors.add(field, "set exactly one of id or name")
        return None
    value = getattr(ref, kind)
    if not value:
        errors.add(f"{field}.{kind}", "must not be empty")
        return None
    if kind == "id" and not _ID.fullmatch(value):
        errors.add(f"{field}.id", "malformed id (24 lowercase hex characters)")
        return None
    return kind, value


def plain_version_id(ref: dataset_pb2.VersionRef) -> str | None:
    """The id of a reference naming a version by a well-formed id alone (no
    dataset), which needs no other lookup; None for any other reference
    (``resolve_version_document`` checks and resolves those)."""
    if ref.WhichOneof("ref") != "id" or ref.HasField("dataset") or not _ID.fullmatch(ref.id):
        return None
    return ref.id


async def resolve_dataset(store: VersionReader, ref: dataset_pb2.DatasetRef, field: str) -> dict[str, Any]:
    """The dataset document named by ``ref``; ``field`` names it in errors."""
    errors = FieldErrors()
    chosen = _one_of(ref, field, errors)
    errors.raise_if_any()
    assert chosen is not None
    kind, value = chosen
    doc = await (store.find_dataset(dataset_id=value) if kind == "id" else store.find_dataset(name=value))
    if doc is None:
        raise NotFound("dataset", value, field=f"{field}.{kind}")
    return doc


async def resolve_version_document(store: VersionReader, ref: dataset_pb2.VersionRef, field: str) -> dict[str, Any]:
    """The version document named by ``ref``; ``field`` names it in errors."""
    errors = FieldErrors()
    chosen = _one_of(ref, field, errors)
    if chosen and chosen[0] == "name" and not ref.HasField("dataset"):
        errors.add(f"{field}.dataset", "required when the version is named by name")
    errors.raise_if_any()
    assert chosen is not None
    kind, value = chosen
    if kind == "id":
        dataset_id = None
        if ref.HasField("dataset"):
            dataset_id = (await resolve_dataset(store, ref.dataset, f"{field}.dataset"))["_id"]
        doc = await store.find_version(version_id=value, dataset_id=dataset_id)
    else:
        dataset = await resolve_dataset(store, ref.dataset, f"{field}.dataset")
        doc = await store.find_version(dataset_id=dataset["_id"], name=value)
    if doc is None:
        raise NotFound("version", value, field=f"{field}.{kind}")
    return doc


async def resolve_version(store: VersionReader, ref: dataset_pb2.VersionRef, field: str) -> VersionHandle:
    return VersionHandle.from_document(await resolve_version_document(store, ref, field))


async def live_frame_counts(store: VersionReader, versions: Iterable[dict[str, Any]]) -> None:
    """Sets ``frame_count`` of the draft documents among ``versions`` to the
    exact count (``VersionReader.exact_frame_counts``)."""
    drafts = [doc for doc in versions if doc.get("status") == DRAFT]
    counts = await store.exact_frame_counts(doc["_id"] for doc in drafts)
    for doc in drafts:
        if doc["_id"] in counts:
            doc["frame_count"] = counts[doc["_id"]]
