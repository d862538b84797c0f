"""What the catalog (datasets, versions, diff, merge, statistics) needs of
storage. The catalog's domain modules see only this protocol;
``mongo_store.MongoCatalogStore`` is the MongoDB implementation.

Writes that must be all-or-nothing (a dataset with its first draft, a
snapshot, a version insert racing a dataset delete) are one call each, so the
store runs them in one transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Sequence
from typing import Any, Protocol

from framevault.common.config import Settings
from framevault.metadata.catalog.page_tokens import Cursor
from framevault.metadata.lineage import VersionHandle, VersionReader

Document = dict[str, Any]


class CatalogStore(VersionReader, Protocol):
    settings: Settings

    # -- datasets ---------------------------------------------------------

    async def insert_dataset_with_draft(self, dataset: Document, draft: Document) -> None:
        """Raises DuplicateKey when the name is taken; then nothing is written."""
        ...

    def list_datasets(self, name_prefix: str, tags: Sequence[str], after_name: str | None, limit: int) -> Cursor:
        """Up to ``limit`` datasets whose name starts with ``name_prefix`` and
        that carry every tag of ``tags``, after ``after_name``, by name."""
        ...

    async def update_dataset(self, dataset_id: str, etag: str, changes: Document) -> Document | None:
        """The updated document (new etag and update time), or None when the
        id or the etag (when given) did not match. Raises DuplicateKey when a
        new name is taken."""
        ...

    async def delete_dataset(self, dataset: Document, force: bool) -> int:
        """Deletes the dataset, its versions and its role bindings at once
        (refused while it has published versions, unless ``force``); the
        number of versions. Its frame revisions are then invisible and are
        removed by ``purge_revisions``."""
        ...

    async def deleted_dataset_has_leftovers(self, dataset_id: str) -> bool:
        """Whether revisions or role bindings of ``dataset_id`` remain while no
        version of it does: only then are they left-overs of a deleted dataset."""
        ...

    async def delete_role_bindings(self, dataset_id: str) -> int:
        """Deletes the role bindings of a dataset; the number deleted."""
        ...

    async def dataset_of_deleted_version_leftovers(self, version_id: str) -> str | None:
        """The dataset of revisions ``version_id`` wrote, if they are invisible
        left-overs of a deleted version; None when there are none or when a
        version document is, or descends from, ``version_id`` (a version's
        descendants see what it wrote)."""
        ...

    # -- versions ---------------------------------------------------------

    async def insert_version(self, version: Document) -> None:
        """Raises DuplicateKey when the name is taken in the dataset, NotFound
        when the dataset is gone."""
        ...

    async def version_graph(self, dataset_id: str) -> list[Document]:
        """Every version of the dataset with its ``parent_ids``,
        ``create_time`` and ``lineage``."""
        ...

    def list_versions(self, dataset_id: str, after: tuple[Any, str] | None, limit: int) -> Cursor:
        """Up to ``limit`` versions of the dataset after ``after`` (creation
        time, id), oldest first."""
        ...

    async def update_version(
        self, version_id: str, changes: Document, *, etag: str = "", status: str | None = None
    ) -> Document | None:
        """The updated document (new etag and update time), or None when the
        id, the etag (when given) or the status (when given) did not match.
        Raises DuplicateKey when a new name is taken."""
        ...

    async def publish(self, version_id: str) -> Document | None:
        """Draft → published, its write leases folded into ``frame_count``;
        None if it was no draft."""
        ...

    async def snapshot(
        self, version_id: str, snapshot_changes: Document, make_draft: Callable[[Document], Document]
    ) -> tuple[Document, Document] | None:
        """Publishes the draft with ``snapshot_changes`` and inserts
        ``make_draft(published)``, all or nothing; None if it was no draft.
        Raises DuplicateKey when the snapshot name is taken."""
        ...

    async def delete_draft(self, version_id: str) -> str | None:
        """Deletes a childless draft's document; why not, if it was refused
        (``NOT_FOUND``, ``PUBLISHED`` or ``HAS_CHILDREN``)."""
        ...

    async def set_statistics_cache(self, version_id: str, statistics: Document) -> None:
        """Caches statistics of a published (immutable) version."""
        ...

    # -- frame revisions (diff, merge, statistics, purges) -------------------

    def frame_ids_written_by(self, version_ids: Sequence[str], *, after: str | None = None
                             ) -> AsyncIterable[Document]:
        """``{"frame_id"}`` of every revision the versions wrote, by frame id
        (index keys only; from the first frame id above ``after`` when given)."""
        ...

    def frame_ids_hidden_by(self, version_ids: Sequence[str], *, after: str | None = None
                            ) -> AsyncIterable[Document]:
        """``{"frame_id"}`` of every revision the versions hid, by frame id
        (index keys only; from the first frame id above ``after`` when given)."""
        ...

    async def revisions_of(
        self, dataset_id: str, frame_ids: Sequence[str], version_ids: Sequence[str], *, full: bool
    ) -> list[Document]:
        """Every revision of ``frame_ids`` written by one of ``version_ids``:
        whole documents when ``full``, else their identity fields (``_id``,
        ``frame_id``, ``version_id``, ``hidden_in``, ``etag``)."""
        ...

    async def insert_revisions(self, revisions: Sequence[Document]) -> None:
        """Inserts revisions outside any transaction (a merge's, before its
        version document exists)."""
        ...

    async def hide_revisions(self, revision_ids: Sequence[Any], version_id: str) -> None:
        """Adds ``version_id`` to the ``hidden_in`` of the revisions."""
        ...

    async def purge_revisions(self, *, dataset_id: str | None = None, version_id: str | None = None) -> int:
        """Deletes the revisions of the dataset or written by the version, in
        batches; how many."""
        ...

    async def unhide_everywhere(self, version_id: str) -> None:
        """Removes ``version_id`` from every revision's ``hidden_in``."""
        ...

    async def frame_statistics(
        self, version: VersionHandle, meta_paths: Sequence[tuple[str, ...]], *, base: bool
    ) -> Document:
        """Aggregates the frames visible in ``version``: with ``base``,
        ``frames`` (``[{frames, annotated, rois}]``) and ``labels``
        (``[{_id: label, count}]``); for each meta path ``i``, ``meta<i>``:
        ``[{_id: {present, value}, count}]``, the missing group first, most
        frequent next, at most ``MAX_DISTRIBUTION_VALUES + 1`` rows."""
        ...
