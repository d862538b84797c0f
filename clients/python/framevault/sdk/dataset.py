"""``Dataset`` and ``DatasetVersion``: the catalog and the frames of a version.

Every operation exists twice with one implementation: ``await
DatasetVersion.acreate_version(...)`` in asyncio code and
``DatasetVersion.create_version(...)`` in plain scripts (see
:mod:`framevault.sdk.runtime`).
"""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2

from framevault.api.metadata_values import dict_to_metadata, metadata_to_dict, value_to_python
from framevault.sdk.blobs import BlobTransfer
from framevault.sdk.errors import AlreadyExistsError, FramevaultError
from framevault.sdk.frame_codec import frame_from_proto
from framevault.sdk.frames import Frame, FrameGroup, FrameLike, SingleFrame
from framevault.sdk.refs import DEFAULT_DRAFT_NAME, dataset_ref, version_ref
from framevault.sdk.runtime import SyncIterator, current_client, sync_classmethod, sync_twin
from framevault.sdk.upload import FailedFrame, FramePreparer, UploadTotals, upload_frames
from framevault.v1 import dataset_pb2, frame_pb2, metadata_service_pb2

MAX_DELETE_IDS = 10_000
UPDATE_CONCURRENCY = 8

MaskValue = tuple[int, int, int] | Sequence[int] | int


def _time(stamp: timestamp_pb2.Timestamp) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if stamp.seconds or stamp.nanos else None


async def _pages(method: Any, request: Any, items_field: str) -> AsyncIterator[Any]:
    """Every item of a paginated List call."""
    client = current_client()
    while True:
        response = await client.unary(method, request, idempotent=True)
        for item in getattr(response, items_field):
            yield item
        if not response.next_page_token:
            return
        request.page_token = response.next_page_token


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
            create_time=_time(proto.create_time),
            update_time=_time(proto.update_time),
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
        return [cls.from_proto(d) async for d in _pages(client.metadata.ListDatasets, request, "datasets")]

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


# --- versions -------------------------------------------------------------------


class VersionStatus(enum.Enum):
    """Lifecycle state of a version."""

    draft = "draft"
    published = "published"
    unknown = "unknown"

    @classmethod
    def from_proto(cls, status: int) -> VersionStatus:
        return {dataset_pb2.VERSION_STATUS_DRAFT: cls.draft,
                dataset_pb2.VERSION_STATUS_PUBLISHED: cls.published}.get(status, cls.unknown)  # type: ignore[call-overload]


class ChangeKind(enum.Enum):
    """What happened to a frame between two versions."""

    added = "added"
    changed = "changed"
    removed = "removed"

    @classmethod
    def from_proto(cls, kind: int) -> ChangeKind:
        return {
            metadata_service_pb2.FrameChange.KIND_ADDED: cls.added,
            metadata_service_pb2.FrameChange.KIND_CHANGED: cls.changed,
            metadata_service_pb2.FrameChange.KIND_REMOVED: cls.removed,
        }[kind]  # type: ignore[index]


@dataclass
class FrameChange:
    """One frame that differs between two versions (frames only with ``include_frames``)."""

    frame_id: str
    kind: ChangeKind
    base: Frame | None = None
    target: Frame | None = None

    @classmethod
    def from_proto(cls, change: metadata_service_pb2.FrameChange) -> FrameChange:
        return cls(
            frame_id=change.frame_id,
            kind=ChangeKind.from_proto(change.kind),
            base=frame_from_proto(change.base) if change.HasField("base") else None,
            target=frame_from_proto(change.target) if change.HasField("target") else None,
        )


class MergeStrategy(enum.Enum):
    """How a merge resolves frames changed differently on both sides."""

    fail = metadata_service_pb2.MERGE_STRATEGY_FAIL
    ours = metadata_service_pb2.MERGE_STRATEGY_OURS
    theirs = metadata_service_pb2.MERGE_STRATEGY_THEIRS


@dataclass
class MergeConflict:
    """A frame changed differently on both sides of a merge."""

    frame_id: str
    ours: ChangeKind | None
    theirs: ChangeKind | None


@dataclass
class MergeResult:
    """Outcome of :meth:`DatasetVersion.merge_versions`; ``version`` is None when conflicts stopped it."""

    version: DatasetVersion | None
    conflicts: list[MergeConflict]
    conflict_count: int
    applied_changes: int
    merge_base_id: str


@dataclass
class VersionStatistics:
    """Statistics of a version's current frames."""

    frame_count: int
    annotated_frame_count: int
    roi_count: int
    roi_label_counts: dict[str, int]
    # Per requested metadata key: (value, count) pairs, most frequent first.
    meta_distributions: dict[str, list[tuple[Any, int]]]
    # Per requested metadata key: frames without it.
    meta_missing_counts: dict[str, int]


def _mask_labels_proto(mapping: Mapping[Any, str | Sequence[str]]) -> list[dataset_pb2.MaskLabel]:
    out = []
    for value, labels in mapping.items():
        rgb = [int(value)] * 3 if isinstance(value, int) else [int(v) for v in value]
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise ValueError(f"mask values are (r, g, b) with 0..255 each (or one gray level), got {value!r}")
        out.append(dataset_pb2.MaskLabel(value=rgb, labels=[labels] if isinstance(labels, str) else list(labels)))
    return out


def _frame_id(frame: FrameLike | str) -> str:
    if isinstance(frame, str):
        return frame
    if isinstance(frame, frame_pb2.Frame):
        return frame.id
    return frame.id or ""


class DatasetVersion:
    """One version of a dataset: a draft (writable) or published (read-only forever).

    Get one with :meth:`get_version`, :meth:`create_version` or
    :meth:`create_snapshot`; every method has an async twin named with a
    leading ``a`` (``add_frames`` / ``aadd_frames``).
    """

    def __init__(self, proto: dataset_pb2.Version, dataset_name: str | None = None) -> None:
        self._proto = proto
        self.dataset_name = dataset_name

    def __repr__(self) -> str:
        return (f"DatasetVersion(dataset={self.dataset_name or self.dataset_id!r}, name={self.version_name!r}, "
                f"id={self.version_id!r}, status={self.status.value}, frames={self.frame_count})")

    # -- attributes --

    @property
    def version_id(self) -> str:
        """The version's id (unique across datasets)."""
        return self._proto.id

    id = version_id

    @property
    def version_name(self) -> str:
        """The version's name, unique within its dataset."""
        return self._proto.name

    name = version_name

    @property
    def dataset_id(self) -> str:
        return self._proto.dataset_id

    @property
    def description(self) -> str:
        return self._proto.description

    @property
    def status(self) -> VersionStatus:
        return VersionStatus.from_proto(self._proto.status)

    @property
    def is_draft(self) -> bool:
        return self.status is VersionStatus.draft

    @property
    def is_published(self) -> bool:
        return self.status is VersionStatus.published

    @property
    def parent_ids(self) -> list[str]:
        """Parent versions: the one whose frames this version inherits first; a merge has two."""
        return list(self._proto.parent_ids)

    @property
    def parent_id(self) -> str | None:
        return self._proto.parent_ids[0] if self._proto.parent_ids else None

    @property
    def metadata(self) -> dict[str, Any]:
        return metadata_to_dict(self._proto.meta)

    @property
    def mask_labels(self) -> dict[tuple[int, int, int], list[str]]:
        """Mask pixel value (r, g, b) to labels."""
        return {tuple(m.value): list(m.labels) for m in self._proto.mask_labels}  # type: ignore[misc]

    @property
    def frame_count(self) -> int:
        """Frames in the version when it was last read from the service."""
        return int(self._proto.frame_count)

    @property
    def create_time(self) -> datetime | None:
        return _time(self._proto.create_time)

    @property
    def update_time(self) -> datetime | None:
        return _time(self._proto.update_time)

    @property
    def publish_time(self) -> datetime | None:
        return _time(self._proto.publish_time)

    @property
    def etag(self) -> str:
        return self._proto.etag

    def to_proto(self) -> dataset_pb2.Version:
        """A copy of the version as last read from the service."""
        copy = dataset_pb2.Version()
        copy.CopyFrom(self._proto)
        return copy

    def ref(self) -> dataset_pb2.VersionRef:
        """A reference to this version (by id)."""
        return version_ref(version_id=self.version_id)

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
        return [cls(v, dataset_name) async for v in _pages(client.metadata.ListVersions, request, "versions")]

    get_versions = sync_classmethod(aget_versions)

    @classmethod
    async def amerge_versions(
        cls,
        ours: DatasetVersion,
        theirs: DatasetVersion,
        version_name: str,
        strategy: MergeStrategy | str = MergeStrategy.fail,
        description: str | None = None,
    ) -> MergeResult:
        """Three-way merge of two published versions into a new draft ``version_name``.

        With ``strategy="fail"`` and conflicts nothing is written; the result
        lists the conflicts and has no version.

        Raises:
            FailedPreconditionError: a draft input, or versions of different datasets.
        """
        chosen = strategy if isinstance(strategy, MergeStrategy) else MergeStrategy[strategy]
        client = current_client()
        response = await client.unary(
            client.metadata.MergeVersions,
            metadata_service_pb2.MergeVersionsRequest(
                ours=ours.ref(), theirs=theirs.ref(), strategy=chosen.value,
                version=dataset_pb2.Version(name=version_name, description=description or ""),
            ),
            idempotent=False,
        )
        return MergeResult(
            version=cls(response.version, ours.dataset_name) if response.HasField("version") else None,
            conflicts=[
                MergeConflict(
                    c.frame_id,
                    ChangeKind.from_proto(c.ours) if c.ours else None,
                    ChangeKind.from_proto(c.theirs) if c.theirs else None,
                )
                for c in response.conflicts
            ],
            conflict_count=int(response.conflict_count),
            applied_changes=int(response.applied_changes),
            merge_base_id=response.merge_base_id,
        )

    merge_versions = sync_classmethod(amerge_versions)

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

    async def aget_statistics(self, meta_keys: Sequence[str] = ()) -> VersionStatistics:
        """Frame, annotated-frame and ROI counts, ROIs per label, and the value
        distribution of the frame-metadata keys in ``meta_keys`` (dot paths)."""
        client = current_client()
        stats = await client.unary(
            client.metadata.GetVersionStatistics,
            metadata_service_pb2.GetVersionStatisticsRequest(version=self.ref(), meta_keys=list(meta_keys)),
            idempotent=True,
        )
        return VersionStatistics(
            frame_count=int(stats.frame_count),
            annotated_frame_count=int(stats.annotated_frame_count),
            roi_count=int(stats.roi_count),
            roi_label_counts=dict(stats.roi_label_counts),
            meta_distributions={
                d.key: [(value_to_python(v.value), int(v.count)) for v in d.values] for d in stats.meta_distributions
            },
            meta_missing_counts={d.key: int(d.missing_count) for d in stats.meta_distributions},
        )

    get_statistics = sync_twin(aget_statistics)

    # -- frames --

    async def aget_count(self) -> int:
        """Number of frames in the version now."""
        client = current_client()
        response = await client.unary(
            client.metadata.CountFrames, metadata_service_pb2.CountFramesRequest(version=self.ref()), idempotent=True,
        )
        return int(response.count)

    get_count = sync_twin(aget_count)

    async def aget_single_frame(self, frame_id: str) -> Frame:
        """One frame by id: a :class:`SingleFrame`, or a :class:`FrameGroup` for several sources.

        Raises:
            NotFoundError: no frame of that id in the version.
        """
        client = current_client()
        proto = await client.unary(
            client.metadata.GetFrame,
            metadata_service_pb2.GetFrameRequest(version=self.ref(), frame_id=frame_id),
            idempotent=True,
        )
        return frame_from_proto(proto)

    get_single_frame = sync_twin(aget_single_frame)

    async def aiterate_frames(self, page_size: int = 500) -> AsyncIterator[Frame]:
        """Every frame of the version in sequential order (paged; use a DataView to filter or shuffle)."""
        client = current_client()
        request = metadata_service_pb2.ListFramesRequest(version=self.ref(), page_size=page_size)
        async for proto in _pages(client.metadata.ListFrames, request, "frames"):
            yield frame_from_proto(proto)

    def iterate_frames(self, page_size: int = 500) -> SyncIterator[Frame]:
        """Synchronous form of :meth:`aiterate_frames`."""
        return SyncIterator(self.aiterate_frames(page_size))

    async def aadd_frames(
        self,
        frames: Iterable[FrameLike] | AsyncIterable[FrameLike],
        upload_retries: int = 3,
        *,
        auto_upload: bool = True,
        progress: bool | None = None,
    ) -> list[FailedFrame]:
        """Adds (or updates, by frame id) frames in this draft through the upload stream.

        ``frames`` may be any iterable or async iterable (a generator is read
        as it goes, never whole). Local files among sources, previews and
        masks are uploaded to the blob service first (only what it lacks) and
        referenced as ``blob:`` URIs; with ``auto_upload=False`` they are sent
        as ``file://`` URIs instead.

        Args:
            upload_retries: attempts after the first for a frame failing
                transiently on the service side (0..10).
            progress: show progress bars (default: when stderr is a terminal).

        Returns:
            The frames that were not registered, each with its error.

        Raises:
            FramevaultError: the upload as a whole failed (e.g. the version is
                published: FAILED_PRECONDITION).
        """
        totals = await self.aadd_frames_with_totals(frames, upload_retries, auto_upload=auto_upload,
                                                    progress=progress)
        return totals.failed

    add_frames = sync_twin(aadd_frames)

    async def aadd_frames_with_totals(
        self,
        frames: Iterable[FrameLike] | AsyncIterable[FrameLike],
        upload_retries: int = 3,
        *,
        auto_upload: bool = True,
        progress: bool | None = None,
    ) -> UploadTotals:
        """Like :meth:`add_frames`, returning created/updated counts too."""
        return await upload_frames(current_client(), self.ref(), frames, upload_retries=upload_retries,
                                   auto_upload=auto_upload, progress=progress)

    add_frames_with_totals = sync_twin(aadd_frames_with_totals)

    async def aupdate_frames(
        self, frames: Iterable[SingleFrame | FrameGroup | frame_pb2.Frame], *, auto_upload: bool = True,
    ) -> list[FailedFrame]:
        """Replaces existing frames (matched by id) of this draft; local files are uploaded first.

        Unlike :meth:`add_frames`, a frame that does not exist fails (NOT_FOUND).

        Returns:
            The frames that were not updated, each with its error.
        """
        client = current_client()
        failed: list[FailedFrame] = []
        preparer = FramePreparer(BlobTransfer(client, progress=False) if auto_upload else None, failed)
        limit = asyncio.Semaphore(UPDATE_CONCURRENCY)

        async def update_one(original: FrameLike, proto: frame_pb2.Frame) -> None:
            if not proto.id:
                failed.append(FailedFrame(original, FramevaultError.client_side(
                    grpc.StatusCode.INVALID_ARGUMENT, "updating a frame needs its id", field="id")))
                return
            async with limit:
                try:
                    await client.unary(
                        client.metadata.UpdateFrame,
                        metadata_service_pb2.UpdateFrameRequest(version=self.ref(), frame=proto),
                        # A whole-frame replacement without etag ends in the same state when repeated.
                        idempotent=True,
                    )
                except FramevaultError as error:
                    failed.append(FailedFrame(original, error, proto.id))

        iterator = iter(frames)
        while batch := list(itertools.islice(iterator, client.settings.upload_prepare_batch_frames)):
            prepared = await preparer.prepare(batch)
            await asyncio.gather(*(update_one(p.original, p.proto) for p in prepared))
        return failed

    update_frames = sync_twin(aupdate_frames)

    async def adelete_frames(self, frames: Iterable[FrameLike | str]) -> int:
        """Deletes frames (objects or ids) from this draft; returns how many were deleted.

        Ids that do not exist are skipped.

        Raises:
            FailedPreconditionError: the version is published.
        """
        client = current_client()
        ids = [i for i in (_frame_id(f) for f in frames) if i]
        deleted = 0
        for start in range(0, len(ids), MAX_DELETE_IDS):
            response = await client.unary(
                client.metadata.DeleteFrames,
                metadata_service_pb2.DeleteFramesRequest(version=self.ref(), frame_ids=ids[start:start + MAX_DELETE_IDS]),
                # Deleting twice leaves the same state; the second answer says NOT_FOUND per id.
                idempotent=True,
            )
            deleted += int(response.deleted_count)
        return deleted

    delete_frames = sync_twin(adelete_frames)

    # -- diff --

    async def aiter_diff(self, target: DatasetVersion, include_frames: bool = False) -> AsyncIterator[FrameChange]:
        """Frames added, changed and removed from this version to ``target``, by frame id."""
        client = current_client()
        request = metadata_service_pb2.DiffVersionsRequest(base=self.ref(), target=target.ref(),
                                                           include_frames=include_frames)
        try:
            async for message in client.metadata.DiffVersions(request):
                for change in message.changes:
                    yield FrameChange.from_proto(change)
        except grpc.RpcError as rpc_error:
            raise FramevaultError.from_rpc_error(rpc_error) from None

    def iter_diff(self, target: DatasetVersion, include_frames: bool = False) -> SyncIterator[FrameChange]:
        """Synchronous form of :meth:`aiter_diff`."""
        return SyncIterator(self.aiter_diff(target, include_frames))

    async def adiff(self, target: DatasetVersion, include_frames: bool = False) -> list[FrameChange]:
        """All changes from this version to ``target`` (see :meth:`aiter_diff`)."""
        return [change async for change in self.aiter_diff(target, include_frames)]

    diff = sync_twin(adiff)
