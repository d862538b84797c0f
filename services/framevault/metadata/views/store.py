"""What view iteration needs of storage: a few bounded reads of the frames in
a scope, besides the version reads every area makes.

The views' domain modules (``plan``, ``engine``, ``service``) see only this
protocol; ``mongo_store.MongoViewStore`` is the MongoDB implementation.
"""

from __future__ import annotations

from typing import Any, Protocol

from bson import ObjectId

from framevault.metadata.frame_documents import SequentialKey, sequential_key
from framevault.metadata.lineage import VersionReader
from framevault.metadata.views.plan import FrameScope, MetadataOrder

__all__ = ["ContextKey", "MetadataKey", "SequentialKey", "SortTimeLimitExceeded", "ViewStore", "sequential_key"]

# A frame's position inside its context: (timestamp, frame id).
ContextKey = tuple[int, str]
# A frame's position in a metadata order: (1 when the frame lacks the key, else 0; the key's
# value as stored (None when missing); frame id).
MetadataKey = tuple[int, Any, str]


class SortTimeLimitExceeded(Exception):
    """A metadata-order batch took longer than the time limit it was given."""


class ViewStore(VersionReader, Protocol):
    async def sequential_batch(
        self, scope: FrameScope, after: SequentialKey | None, limit: int, fields: list[str] | None
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` documents in sequential order starting at ``after``
        (inclusive: the caller drops the document it already has)."""
        ...

    async def bucket_members(self, scope: FrameScope, low: int, high: int | None) -> list[tuple[str, ObjectId]]:
        """``(frame_id, _id)`` of every document with ``low <= shuffle_key < high``."""
        ...

    async def documents(self, scope: FrameScope, ids: list[ObjectId], fields: list[str] | None) -> list[dict[str, Any]]:
        """The documents of ``ids`` still in scope (any order)."""
        ...

    async def count(self, scope: FrameScope) -> int: ...

    async def metadata_order_batch(self, scope: FrameScope, order: MetadataOrder, after: MetadataKey | None,
                                   limit: int, fields: list[str] | None, max_time_ms: int
                                   ) -> list[tuple[dict[str, Any], MetadataKey]]:
        """Up to ``limit`` documents in ``order`` (MetadataOrder in view.proto) strictly after
        ``after`` (None: from the start), each with its position; SortTimeLimitExceeded when the
        sort takes longer than ``max_time_ms``."""
        ...

    async def next_context_first(self, scope: FrameScope, after_context: str | None,
                                 fields: list[str] | None) -> dict[str, Any] | None:
        """The first document (sequential order) of the first context after ``after_context``
        (None: the first context); None when no context follows."""
        ...

    async def context_count(self, scope: FrameScope, context_id: str, limit: int) -> int:
        """Documents of one context, counted up to ``limit``."""
        ...

    async def context_batch(self, scope: FrameScope, context_id: str, after: ContextKey | None, limit: int,
                            fields: list[str] | None, descending: bool) -> list[dict[str, Any]]:
        """Up to ``limit`` documents of one context in timestamp order (frame id breaking ties), or
        the reverse, strictly after ``after`` in that direction (None: from the start)."""
        ...

    async def context_key(self, scope: FrameScope, context_id: str, frame_id: str) -> ContextKey | None:
        """The position of a frame within its context; None when the context holds no such frame."""
        ...
