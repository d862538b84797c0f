"""How the metadata service reaches the blob service: a narrow interface.

The upload stream checks that referenced blobs exist and stores inline bytes
through this interface, so its retry loop covers blob-store hiccups too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from framevault.api.digests import BlobDigest


class BlobGateway(Protocol):
    async def find_missing(self, digests: Sequence[BlobDigest]) -> set[BlobDigest]:
        """The subset of ``digests`` the blob service does not hold.

        Raises ``framevault.common.errors.Unavailable`` when the blob service
        cannot be reached (a transient failure the caller may retry).
        """
        ...

    async def store(self, data: bytes) -> BlobDigest:
        """Stores small bytes (idempotent) and returns their digest."""
        ...

    async def close(self) -> None: ...
