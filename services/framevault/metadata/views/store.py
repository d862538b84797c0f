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
from framevault.metadata.views.plan import FrameScope

__all__ = ["SequentialKey", "ViewStore", "sequential_key"]


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
