"""``Dataset`` and ``DatasetVersion``: the catalog and the frames of a version.

Every operation exists twice with one implementation: ``await
DatasetVersion.acreate_version(...)`` in asyncio code and
``DatasetVersion.create_version(...)`` in plain scripts (see
:mod:`framevault.sdk.runtime`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.protobuf import field_mask_pb2

from framevault.api.metadata_values import dict_to_metadata, metadata_to_dict
from framevault.sdk.errors import AlreadyExistsError
from framevault.sdk.refs import DEFAULT_DRAFT_NAME, dataset_ref, version_ref
from framevault.sdk.runtime import current_client, sync_classmethod, sync_twin
from framevault.sdk.version_frames import VersionFrameOperations
from framevault.sdk.version_history import VersionHistoryOperations
from framevault.sdk.version_state import list_pages, proto_time
from framevault.sdk.version_statistics import VersionStatisticsOperations
from framevault.v1 import dataset_pb2, metadata_service_pb2

MaskValue = tuple[int, int, int] | Sequence[int] | int


# --- datasets -----------------------------------------------------------------


@dataclass
class Dataset:
    """A named, versioned collection of frames."""

    id: str
    name: str
    description: str = ""
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    create_time: datetime | None = None
    update_time: datetime | None = None
    etag: str = ""

    @classmethod
    def from_proto(cls, proto: dataset_pb2.Dataset) -> Dataset:
        return cls(
            id=proto.id,
            name=proto.name,
            description=proto.description,
            tags=list(proto.tags),
            metadata=metadata_to_dict(proto.meta),
            create_time=proto_time(proto.create_time),
            update_time=proto_time(proto.update_time),
            etag=proto.etag,
        )

    @classmethod
    async def acreate(
        cls,
        dataset_name: str,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        raise_if_exists: bool = False,
    ) -> Dataset:
        """Creates a dataset (and its draft version ``Current``); returns the existing one of that name
        unless ``raise_if_exists``.

        Raises:
            AlreadyExistsError: it exists and ``raise_if_exists``.
            InvalidArgumentError: a bad name, description, tag or metadata key.
        """
        client = current_client()
        proto = dataset_pb2.Dataset(name=dataset_name, description=description or "", tags=list(tags or []))
        if metadata:
            proto.meta.CopyFrom(dict_to_metadata(metadata))
        created = await client.unary(
            client.metadata.CreateDataset,
            metadata_service_pb2.CreateDatasetRequest(dataset=proto, fail_if_exists=raise_if_exists),
            # Without fail_if_exists a repeated create returns the same dataset.
            idempotent=not raise_if_exists,
        )
        return cls.from_proto(created)

    create = sync_classmethod(acreate)

    @classmethod
    async def aget(cls, dataset_name: str | None = None, dataset_id: str | None = None) -> Dataset:
        """The dataset of that name (or id).

        Raises:
            NotFoundError: no such dataset.
        """
        client = current_client()
        proto = await client.unary(
            client.metadata.GetDataset,
            metadata_service_pb2.GetDatasetRequest(dataset=dataset_ref(dataset_name, dataset_id)),
            idempotent=True,
        )
        return cls.from_proto(proto)

    get = sync_classmethod(aget)

    @classmethod
    async def alist_datasets(cls, name_prefix: str | None = None, tags: Sequence[str] | None = None) -> list[Dataset]:
        """Every dataset (whose name starts with ``name_prefix`` and has all ``tags``), by name."""
        client = current_client()
        request = metadata_service_pb2.ListDatasetsRequest(page_size=1000, name_prefix=name_prefix or "",
                                                           tags=list(tags or []))
        return [cls.from_proto(d) async for d in list_pages(client.metadata.ListDatasets, request, "datasets")]

    list_datasets = sync_classmethod(alist_datasets)

    async def adelete(self, force: bool = False) -> None:
        """Deletes the dataset with all versions and frames (``force`` when some are published).

        Raises:
            FailedPreconditionError: published versions exist and not ``force``.
        """
        client = current_client()
        await client.unary(
            client.metadata.DeleteDataset,
            metadata_service_pb2.DeleteDatasetRequest(dataset=dataset_ref(dataset_id=self.id), force=force),
            idempotent=False,
        )

    delete = sync_twin(adelete)

    async def aget_versions(self) -> list[DatasetVersion]:
        """The dataset's versions, oldest first."""
        return await DatasetVersion.aget_versions(dataset_name=self.name, dataset_id=self.id)

    get_versions = sync_twin(aget_versions)

    async def aget_current_version(self) -> DatasetVersion:
        """The draft ``Current``."""
        return await DatasetVersion.aget_version(dataset_id=self.id, dataset_name=self.name)

    get_current_version = sync_twin(aget_current_version)


def _mask_labels_proto(mapping: Mapping[Any, str | Sequence[str]]) -> list[dataset_pb2.MaskLabel]:
    out = []
    for value, labels in mapping.items():
        rgb = [int(value)] * 3 if isinstance(value, int) else [int(v) for v in value]
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise ValueError(f"mask values are (r, g, b) with 0..255 each (or one gray level), got {value!r}")
        out.append(dataset_pb2.MaskLabel(value=rgb, labels=[labels] if isinstance(labels, str) else list(labels)))
    return out


class DatasetVersion(VersionFrameOperations, VersionHistoryOperations, VersionStatisticsOperations):
    """One version of a dataset: a draft (writable) or published (read-only forever).

    Get one with :meth:`get_version`, :meth:`create_version` or
    :meth:`create_snapshot`; every method has an async twin named with a
    leading ``a`` (``add_frames`` / ``aadd_frames``).

    Its parts: the version's state and attributes
    (:class:`~framevault.sdk.version_state.VersionState`), frame operations
    (:mod:`~framevault.sdk.version_frames`), diff and merge
    (:mod:`~framevault.sdk.version_history`) and statistics
    (:mod:`~framevault.sdk.version_statistics`); the catalog calls (create,
    get, list, publish, delete, version settings) are here.
    """

    # -- datasets --

    # The reference product's name for Dataset.create: a dataset with its empty draft "Current".
    acreate_new_dataset = staticmethod(Dataset.acreate)
    create_new_dataset = staticmethod(Dataset.create)

    # -- versions --

    @classmethod
    async def acreate_version(
        cls,
        dataset_name: str | None = None,
        version_name: str = "",
        parent_version_ids: Sequence[str] | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        parent_version_name: str | None = None,
        dataset_id: str | None = None,
        raise_if_exists: bool = False,
        mask_labels: Mapping[Any, str | Sequence[str]] | None = None,
    ) -> DatasetVersion:
        """Creates a version: a child of a published parent (holding all its frames,
        without copying them) or, with no parent, an empty root version.

        Args:
            dataset_name: the dataset (or ``dataset_id``).
            version_name: the new version's name, unique within the dataset.
            parent_version_ids: ``[parent_id]``; or name the parent with ``parent_version_name``.
            raise_if_exists: without it, an existing version of that name is returned.

        Raises:
            FailedPreconditionError: the parent is a draft.
            NotFoundError: no such dataset or parent.
            AlreadyExistsError: the name is taken and ``raise_if_exists``.
        """
        if not version_name:
            raise ValueError("version_name is required")
        parents = list(parent_version_ids or [])
        if len(parents) > 1:
            raise ValueError("a new version has one parent; use merge_versions to join two")
        client = current_client()
        request = metadata_service_pb2.CreateVersionRequest(
            dataset=dataset_ref(dataset_name, dataset_id),
            version=dataset_pb2.Version(name=version_name, description=description or ""),
        )
        if metadata:
            request.version.meta.CopyFrom(dict_to_metadata(metadata))
        if mask_labels:
            request.version.mask_labels.extend(_mask_labels_proto(mask_labels))
        if parents:
            request.parent.CopyFrom(version_ref(version_id=parents[0]))
        elif parent_version_name:
            request.parent.CopyFrom(version_ref(dataset_name, parent_version_name, dataset_id=dataset_id))
        try:
            created = await client.unary(client.metadata.CreateVersion, request, idempotent=False)
        except AlreadyExistsError:
            if raise_if_exists:
                raise
            return await cls.aget_version(dataset_name, version_name, dataset_id=dataset_id)
        return cls(created, dataset_name)

    create_version = sync_classmethod(acreate_version)

    @classmethod
    async def acreate_snapshot(
        cls,
        dataset_name: str | None = None,
        snapshot_name: str | None = None,
        version_name: str | None = None,
        description: str | None = None,
        *,
        dataset_id: str | None = None,
    ) -> DatasetVersion:
        """Publishes the draft (default ``Current``) as a snapshot and opens a new draft
        of the draft's name holding the same frames (copy-free).

        Returns:
            The published snapshot. The new draft is ``get_version(dataset_name, version_name)``.

        Raises:
            FailedPreconditionError: the version is not a draft.
            AlreadyExistsError: ``snapshot_name`` is taken.
        """
        client = current_client()
        response = await client.unary(
            client.metadata.SnapshotVersion,
            metadata_service_pb2.SnapshotVersionRequest(
                version=version_ref(dataset_name, version_name or DEFAULT_DRAFT_NAME, dataset_id=dataset_id),
                snapshot_name=snapshot_name or "",
                description=description or "",
            ),
            idempotent=False,
        )
        return cls(response.snapshot, dataset_name)

    create_snapshot = sync_classmethod(acreate_snapshot)

    @classmethod
    async def aget_version(
        cls,
        dataset_name: str | None = None,
        version_name: str | None = None,
        *,
        version_id: str | None = None,
        dataset_id: str | None = None,
    ) -> DatasetVersion:
        """A version by dataset and name (default: the draft ``Current``), or by ``version_id``.

        Raises:
            NotFoundError: no such dataset or version.
        """
        client = current_client()
        proto = await client.unary(
            client.metadata.GetVersion,
            metadata_service_pb2.GetVersionRequest(
                version=version_ref(dataset_name, version_name, dataset_id=dataset_id, version_id=version_id)
            ),
            idempotent=True,
        )
        return cls(proto, dataset_name)

    get_version = sync_classmethod(aget_version)

    @classmethod
    async def aget_versions(
        cls, dataset_name: str | None = None, *, dataset_id: str | None = None,
    ) -> list[DatasetVersion]:
        """Every version of a dataset, oldest first, with parent links (``parent_ids``).

        Raises:
            NotFoundError: no such dataset.
        """
        client = current_client()
        request = metadata_service_pb2.ListVersionsRequest(dataset=dataset_ref(dataset_name, dataset_id),
                                                           page_size=1000)
        return [cls(v, dataset_name) async for v in list_pages(client.metadata.ListVersions, request, "versions")]

    get_versions = sync_classmethod(aget_versions)

    async def areload(self) -> DatasetVersion:
        """Reads the version again (status, frame count, metadata); returns self."""
        client = current_client()
        self._proto = await client.unary(
            client.metadata.GetVersion, metadata_service_pb2.GetVersionRequest(version=self.ref()), idempotent=True,
        )
        return self

    reload = sync_twin(areload)

    async def apublish_version(self) -> DatasetVersion:
        """Publishes this draft: from now on it is read-only. Returns self, updated.

        Raises:
            FailedPreconditionError: it is already published.
        """
        client = current_client()
        self._proto = await client.unary(
            client.metadata.PublishVersion,
            metadata_service_pb2.PublishVersionRequest(version=self.ref()),
            idempotent=False,
        )
        return self

    publish_version = sync_twin(apublish_version)

    async def adelete_version(self) -> int:
        """Deletes this draft and the frame revisions it wrote; returns how many.

        Raises:
            FailedPreconditionError: it is published or has children.
        """
        client = current_client()
        response = await client.unary(
            client.metadata.DeleteVersion, metadata_service_pb2.DeleteVersionRequest(version=self.ref()),
            idempotent=False,
        )
        return int(response.deleted_frames)

    delete_version = sync_twin(adelete_version)

    async def _update_version(self, version: dataset_pb2.Version, paths: list[str]) -> None:
        client = current_client()
        self._proto = await client.unary(
            client.metadata.UpdateVersion,
            metadata_service_pb2.UpdateVersionRequest(
                version_ref=self.ref(), version=version, update_mask=field_mask_pb2.FieldMask(paths=paths),
            ),
            idempotent=True,
        )

    async def aset_masks_labels(self, mask_labels: Mapping[Any, str | Sequence[str]]) -> None:
        """Sets the version's mask pixel value to labels mapping, e.g. ``{(0, 0, 0): "background",
        (255, 0, 0): ["person"]}`` (an int means a gray level ``(v, v, v)``). Drafts only.

        Raises:
            ValueError: a value that is not an RGB triple of 0..255.
            FailedPreconditionError: the version is published.
        """
        await self._update_version(dataset_pb2.Version(mask_labels=_mask_labels_proto(mask_labels)), ["mask_labels"])

    set_masks_labels = sync_twin(aset_masks_labels)

    async def aget_masks_labels(self) -> dict[tuple[int, int, int], list[str]]:
        """The mask pixel value to labels mapping, read from the service."""
        await self.areload()
        return self.mask_labels

    get_masks_labels = sync_twin(aget_masks_labels)

    async def aget_metadata(self) -> dict[str, Any]:
        """The version's metadata, read from the service."""
        await self.areload()
        return self.metadata

    get_metadata = sync_twin(aget_metadata)

    async def aset_metadata(self, metadata: dict[str, Any]) -> None:
        """Replaces the version's metadata. Drafts only.

        Raises:
            FailedPreconditionError: the version is published.
        """
        await self._update_version(dataset_pb2.Version(meta=dict_to_metadata(metadata)), ["meta"])

    set_metadata = sync_twin(aset_metadata)
