"""How versions relate: the frames that differ between two versions, and the
three-way merge of two published versions into a new draft.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc

from framevault.sdk.client import retry_policy
from framevault.sdk.dataview import RESUME_CODES
from framevault.sdk.frame_codec import frame_from_proto
from framevault.sdk.frames import Frame
from framevault.sdk.runtime import SyncIterator, current_client, sync_classmethod, sync_twin
from framevault.sdk.version_state import VersionState
from framevault.v1 import dataset_pb2, metadata_service_pb2

VersionT = TypeVar("VersionT", bound=VersionState)


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
class DiffPage:
    """A page of :meth:`DatasetVersion.diff_page`."""

    changes: list[FrameChange]
    # Continues after ``changes``; empty on the last page.
    next_page_token: str


@dataclass
class MergeConflict:
    """A frame changed differently on both sides of a merge."""

    frame_id: str
    ours: ChangeKind | None
    theirs: ChangeKind | None


@dataclass
class MergeResult(Generic[VersionT]):
    """Outcome of :meth:`DatasetVersion.merge_versions`; ``version`` is None when conflicts stopped it."""

    version: VersionT | None
    conflicts: list[MergeConflict]
    conflict_count: int
    applied_changes: int
    merge_base_id: str



class VersionHistoryOperations(VersionState):
    """Diff and merge of versions (part of :class:`~framevault.sdk.DatasetVersion`)."""

    @classmethod
    async def amerge_versions(
        cls: type[VersionT],
        ours: VersionState,
        theirs: VersionState,
        version_name: str,
        strategy: MergeStrategy | str = MergeStrategy.fail,
        description: str | None = None,
    ) -> MergeResult[VersionT]:
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

    async def aiter_diff(
        self, target: VersionState, include_frames: bool = False, *, page_token: str = "",
    ) -> AsyncIterator[FrameChange]:
        """Frames added, changed and removed from this version to ``target``, by frame id.

        A broken stream resumes after the last message received. ``page_token`` (a
        :attr:`DiffPage.next_page_token` of the same two versions) starts after the changes before it."""
        request = self._diff_request(target, include_frames, page_token)
        async for message in _diff_messages(request):
            for change in message.changes:
                yield FrameChange.from_proto(change)

    def iter_diff(
        self, target: VersionState, include_frames: bool = False, *, page_token: str = "",
    ) -> SyncIterator[FrameChange]:
        """Synchronous form of :meth:`aiter_diff`."""
        return SyncIterator(self.aiter_diff(target, include_frames, page_token=page_token))

    async def adiff(self, target: VersionState, include_frames: bool = False) -> list[FrameChange]:
        """All changes from this version to ``target`` (see :meth:`aiter_diff`)."""
        return [change async for change in self.aiter_diff(target, include_frames)]

    diff = sync_twin(adiff)

    async def adiff_page(
        self, target: VersionState, page_size: int, page_token: str = "", include_frames: bool = False,
    ) -> DiffPage:
        """At most ``page_size`` changes from this version to ``target``, starting after the
        changes ``page_token`` (from the previous page) stands for; the service seeks there, so
        every page costs about its own size."""
        if page_size < 1:
            raise ValueError("page_size must be 1 or more")
        request = self._diff_request(target, include_frames, page_token)
        request.max_changes = page_size
        changes: list[FrameChange] = []
        next_page_token = ""
        async for message in _diff_messages(request):
            changes.extend(FrameChange.from_proto(change) for change in message.changes)
            next_page_token = message.cursor
        return DiffPage(changes, next_page_token)

    diff_page = sync_twin(adiff_page)

    def _diff_request(self, target: VersionState, include_frames: bool,
                      page_token: str) -> metadata_service_pb2.DiffVersionsRequest:
        return metadata_service_pb2.DiffVersionsRequest(base=self.ref(), target=target.ref(),
                                                        include_frames=include_frames, resume_cursor=page_token)


async def _diff_messages(
    request: metadata_service_pb2.DiffVersionsRequest,
) -> AsyncIterator[metadata_service_pb2.DiffVersionsResponse]:
    """The messages of a DiffVersions stream; a broken stream reopens after the last message
    received (its cursor), for the changes still owed when the request had ``max_changes``."""
    client = current_client()
    paged = request.max_changes > 0
    failures = 0
    received_all = False
    while True:
        try:
            async for message in client.metadata.DiffVersions(request):
                failures = 0
                yield message
                # An empty cursor: no change follows.
                received_all = not message.cursor or (paged and request.max_changes <= len(message.changes))
                if paged:
                    request.max_changes = max(1, request.max_changes - len(message.changes))
                request.resume_cursor = message.cursor
            return
        except grpc.RpcError as rpc_error:
            if received_all:
                return
            error = await client.call_error(rpc_error, client.metadata.DiffVersions)
            failures += 1
            # The first stream and then up to stream_reconnect_attempts resumptions.
            policy = retry_policy(client.settings, client.settings.stream_reconnect_attempts + 1, RESUME_CODES)
            if not policy.retries(error.code, failures):
                raise error from None
            await asyncio.sleep(policy.delay(failures, error.retry_delay))
