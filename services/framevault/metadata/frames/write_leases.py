"""Write leases: how frame writes into a draft are fenced against publishing
and counted, without a document that every writer updates (STORAGE.md
"Write leases").

A writer (one transaction at a time) holds a lease of the draft: a small
document of its own in ``write_leases``. Every frame transaction updates its
lease (``claim``), moving the lease's ``frame_count_delta`` by the frames that
appeared or disappeared; writers of different frames therefore share no
document and never conflict, and a transaction that dies with its process
holds nothing that other writers need. Ending the draft (publish, snapshot,
delete) removes its leases in the same transaction (``settle_leases``), which
write-conflicts with every frame transaction in flight, so each of them lands
strictly before (and is counted) or fails. A draft's exact frame count is
its document's ``frame_count`` plus the deltas of its leases
(``lineage.live_frame_counts``); publishing folds them in.

Leases are registered once and reused: each process keeps the leases no
transaction is using, per version. The lease documents are written by the
store (``store.FrameStore``; ``mongo_versions.settle_leases`` for the catalog).
"""

from __future__ import annotations

import contextlib
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bson import ObjectId

from framevault.common.errors import Aborted, FailedPrecondition, NotFound
from framevault.metadata.frames.store import FrameStore, Session
from framevault.metadata.lineage import VersionHandle, require_draft


@dataclass(frozen=True)
class WriteLease:
    id: ObjectId
    version: VersionHandle


class _LeaseWithdrawn(Aborted):
    """The lease vanished although the version is still a draft; the
    transaction is retried with a new lease."""


class _IdleLeases:
    """The leases of one process that no transaction is using, by version."""

    def __init__(self, remembered_versions: int) -> None:
        self._remembered_versions = remembered_versions
        self._by_version: OrderedDict[str, list[ObjectId]] = OrderedDict()

    def take(self, version_id: str) -> ObjectId | None:
        idle = self._by_version.get(version_id)
        if not idle:
            return None
        self._by_version.move_to_end(version_id)
        return idle.pop()

    def give_back(self, version_id: str, lease_id: ObjectId) -> None:
        self._by_version.setdefault(version_id, []).append(lease_id)
        self._by_version.move_to_end(version_id)
        while len(self._by_version) > self._remembered_versions:
            self._by_version.popitem(last=False)


# Per store: the store (one per service) holds the leases it registered.
_idle: weakref.WeakKeyDictionary[FrameStore, _IdleLeases] = weakref.WeakKeyDictionary()


def _idle_leases(store: FrameStore) -> _IdleLeases:
    pool = _idle.get(store)
    if pool is None:
        pool = _idle[store] = _IdleLeases(store.settings.upload_remembered_lease_drafts)
    return pool


@contextlib.asynccontextmanager
async def write_lease(store: FrameStore, version: VersionHandle) -> AsyncIterator[WriteLease]:
    """A lease of draft ``version`` for one transaction, registered if the
    process has no idle one. Raises FailedPrecondition (published) or
    NotFound (deleted)."""
    pool = _idle_leases(store)
    lease_id = pool.take(version.id) or await _register(store, version)
    try:
        yield WriteLease(lease_id, version)
    except (FailedPrecondition, NotFound, _LeaseWithdrawn):
        raise  # the lease is gone with the draft: not reused
    except BaseException:
        pool.give_back(version.id, lease_id)
        raise
    pool.give_back(version.id, lease_id)


async def _register(store: FrameStore, version: VersionHandle) -> ObjectId:
    """A new lease; raises like ``write_lease`` when the version is no draft."""
    lease_id = await store.register_lease(version)
    if lease_id is not None:
        return lease_id
    await _raise_not_draft(store, version.id, session=None)
    raise AssertionError("unreachable")


async def claim(store: FrameStore, session: Session, lease: WriteLease, frame_count_delta: int) -> None:
    """Inside a frame transaction: moves the lease's frame count. Always a
    real write (``writes`` counts up), so a settle of the draft and this
    transaction conflict; fails unless the draft is still a draft."""
    if await store.claim_lease(session, lease.id, frame_count_delta):
        return
    await _raise_not_draft(store, lease.version.id, session=session)
    raise _LeaseWithdrawn(f"write lease of version {lease.version.id} was withdrawn", retry_after_ms=0)


async def _raise_not_draft(store: FrameStore, version_id: str, session: Session) -> None:
    """Raises FailedPrecondition or NotFound unless ``version_id`` is a draft."""
    current = await store.version_handle(version_id, session)
    if current is None:
        raise NotFound("version", version_id)
    require_draft(current)
