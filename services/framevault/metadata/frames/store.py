"""What the frame operations need of storage: revisions and write leases.

The domain modules of frames (``revisions``, ``write_leases``,
``operations``, ``upload``) see only this protocol; ``mongo_store`` is the
MongoDB implementation. A ``Session`` is the store's handle of one
transaction (``transaction()``); the domain passes it through untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from bson import ObjectId

from framevault.common.config import Settings
from framevault.metadata.catalog.page_tokens import Cursor
from framevault.metadata.frame_documents import SequentialKey
from framevault.metadata.frames.known_versions import KnownVersions
from framevault.metadata.lineage import VersionHandle, VersionReader
from framevault.metadata.transactions import TransactionSessions

Session = Any
Revision = dict[str, Any]


class FrameStore(VersionReader, Protocol):
    settings: Settings
    # What GetFrame remembers of versions (one per process, like the store).
    known_versions: KnownVersions

    def transaction(self) -> AbstractAsyncContextManager[Session]:
        """One snapshot transaction, committed when the block ends without an
        exception and aborted otherwise (transactions.py)."""
        ...

    def transaction_sessions(self) -> TransactionSessions:
        """Transactions like ``transaction``'s for a writer that runs them
        one after another, sharing one session (transactions.py)."""
        ...

    # -- revisions ------------------------------------------------------------

    async def visible_revisions(
        self, version: VersionHandle, frame_ids: list[str], fields: dict[str, int] | None, session: Session
    ) -> dict[str, Revision]:
        """The revision of each of the distinct, non-empty ``frame_ids``
        visible in ``version``, by frame id (absent ids have none), with
        ``fields`` (None: whole documents)."""
        ...

    async def stored_revision(self, version: VersionHandle, frame_id: str) -> Mapping[str, Any] | None:
        """The whole revision of ``frame_id`` visible in ``version`` as stored
        (read-only; for sending it), None when it has none."""
        ...

    async def version_with_revision(
        self, version_id: str, frame_id: str
    ) -> tuple[VersionHandle, Revision | None] | None:
        """The version and the whole revision of ``frame_id`` visible in it
        (None when it has none), read in one round trip from one snapshot;
        None when the version does not exist."""
        ...

    async def write_revisions(
        self, session: Session, version_id: str, inserts: Sequence[Revision],
        replacements: Sequence[tuple[ObjectId, Revision]], hide: Sequence[ObjectId],
    ) -> None:
        """Inserts revisions, replaces revisions by ``_id`` and adds
        ``version_id`` to the ``hidden_in`` of the revisions ``hide`` names."""
        ...

    async def remove_revisions(
        self, session: Session, version_id: str, delete: Sequence[ObjectId], hide: Sequence[ObjectId]
    ) -> None:
        """Deletes the revisions ``delete`` names and hides those ``hide``
        names in ``version_id``."""
        ...

    def sequential_page(self, version: VersionHandle, after: SequentialKey | None, limit: int) -> Cursor:
        """Up to ``limit`` revisions visible in ``version`` in sequential order,
        from the first key after ``after``."""
        ...

    def referenced_uris(self, batch_size: int) -> AsyncIterator[tuple[str, int]]:
        """Every distinct ``blob:`` URI of any revision (sources, previews,
        masks) with its number of references, in batches of ``batch_size``."""
        ...

    # -- write leases -----------------------------------------------------------

    async def register_lease(self, version: VersionHandle) -> ObjectId | None:
        """A new lease of draft ``version`` (write_leases.py); None when the
        version is no draft any more (the lease is withdrawn again)."""
        ...

    async def claim_lease(self, session: Session, lease_id: ObjectId, frame_count_delta: int) -> bool:
        """Inside a frame transaction: moves the lease's frame count by
        ``frame_count_delta``, always as a real write; False when the lease
        is gone."""
        ...

    async def version_handle(self, version_id: str, session: Session) -> VersionHandle | None:
        """The version ``version_id`` as the session sees it; None if it does not exist."""
        ...
