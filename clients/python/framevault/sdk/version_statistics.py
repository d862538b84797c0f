"""Statistics of a version's current frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from framevault.api.metadata_values import value_to_python
from framevault.sdk.runtime import current_client, sync_twin
from framevault.sdk.version_state import VersionState
from framevault.v1 import metadata_service_pb2


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


class VersionStatisticsOperations(VersionState):
    """Statistics of a version (part of :class:`~framevault.sdk.DatasetVersion`)."""

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
