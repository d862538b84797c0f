"""Versions GetFrame read recently, so reading one frame by version id is one
query on the frames (``revisions.find_version_with_revision``).

What a frame read needs of a version, its id, dataset and lineage (the
first-parent chain), is fixed when the version is created and never changes
while it exists; versions are never moved, their ids never reused. What can
change, its name and its status, is not relied on. The one event a
remembered version can miss is its deletion: a frame not found is therefore
always answered after reading the version again (NOT_FOUND names the version
or the frame exactly as without this), and a version that was deleted
(DeleteVersion of a draft, DeleteDataset) while its revisions are being
removed, or whose removal was interrupted, can serve its frames here for at
most ``frame_read_version_cache_seconds``. Frame revisions themselves are never
remembered: every read sees the latest committed write.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from framevault.auth.expiring_cache import ExpiringCache
from framevault.common.config import Settings
from framevault.metadata.lineage import VersionHandle


class KnownVersions:
    """Bounded (``frame_read_version_cache_entries``, oldest dropped first) and
    expiring (``frame_read_version_cache_seconds``)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic):
        self._handles: ExpiringCache[str, VersionHandle] = ExpiringCache(
            settings.frame_read_version_cache_seconds, settings.frame_read_version_cache_entries, clock)

    def readable(self, version_id: str) -> VersionHandle | None:
        """The version as it was read recently, for reading its frames only:
        its id, dataset and lineage are exact, its name and status may be stale."""
        return self._handles.get(version_id)

    def remember(self, version: VersionHandle) -> None:
        self._handles.put(version.id, version)

    def forget(self, version_id: str) -> None:
        self._handles.forget(version_id)
