"""Statistics of a version, aggregated on the frames visible in it
(``CatalogStore.frame_statistics``).

Drafts are computed on every call, so they are right after any upload,
update or delete. Published versions never change: their base statistics
(everything but metadata distributions) are cached in the version document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from framevault.api.metadata_values import python_to_value
from framevault.common.errors import FieldErrors
from framevault.metadata.catalog.store import CatalogStore
from framevault.metadata.catalog.validation import MAX_STATISTICS_KEYS, check_meta_key_path
from framevault.metadata.lineage import PUBLISHED, VersionHandle, resolve_version_document
from framevault.v1 import dataset_pb2
from framevault.v1 import metadata_service_pb2 as ms

MAX_DISTRIBUTION_VALUES = 1000


@dataclass
class Distribution:
    key: str
    values: list[tuple[Any, int]]
    missing_count: int


@dataclass
class Statistics:
    version_id: str
    frame_count: int = 0
    annotated_frame_count: int = 0
    roi_count: int = 0
    roi_label_counts: dict[str, int] = field(default_factory=dict)
    distributions: list[Distribution] = field(default_factory=list)


def validate_meta_keys(keys: Sequence[str]) -> list[tuple[str, ...]]:
    errors = FieldErrors()
    if len(keys) > MAX_STATISTICS_KEYS:
        errors.add("meta_keys", f"at most {MAX_STATISTICS_KEYS} keys")
    paths: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key in seen:
            errors.add(f"meta_keys[{i}]", f"duplicate key {key!r}")
            continue
        seen.add(key)
        segments = check_meta_key_path(key, f"meta_keys[{i}]", errors)
        if segments is not None:
            paths.append(segments)
    errors.raise_if_any()
    return paths


class VersionStatisticsService:
    def __init__(self, store: CatalogStore):
        self.store = store

    async def compute(self, request: ms.GetVersionStatisticsRequest) -> Statistics:
        paths = validate_meta_keys(request.meta_keys)
        doc = await resolve_version_document(self.store, request.version, "version")
        version = VersionHandle.from_document(doc)
        cached = doc.get("statistics") if doc["status"] == PUBLISHED else None
        stats = Statistics(version_id=doc["_id"])
        if cached is None or paths:
            result = await self.store.frame_statistics(version, paths, base=cached is None)
        else:
            result = {}
        if cached is None:
            totals = (result.get("frames") or [{}])[0]
            cached = {
                "frame_count": int(totals.get("frames", 0)),
                "annotated_frame_count": int(totals.get("annotated", 0)),
                "roi_count": int(totals.get("rois", 0)),
                "roi_label_counts": [[row["_id"], int(row["count"])] for row in result.get("labels", [])],
            }
            if doc["status"] == PUBLISHED:
                await self.store.set_statistics_cache(doc["_id"], cached)
        stats.frame_count = cached["frame_count"]
        stats.annotated_frame_count = cached["annotated_frame_count"]
        stats.roi_count = cached["roi_count"]
        stats.roi_label_counts = {label: count for label, count in cached["roi_label_counts"]}
        for i, segments in enumerate(paths):
            rows = result.get(f"meta{i}", [])
            missing = sum(int(r["count"]) for r in rows if not r["_id"]["present"])
            values = [(r["_id"].get("value"), int(r["count"])) for r in rows if r["_id"]["present"]]
            values = values[:MAX_DISTRIBUTION_VALUES]
            stats.distributions.append(Distribution(".".join(segments), values, missing))
        return stats


def statistics_to_proto(stats: Statistics) -> dataset_pb2.VersionStatistics:
    out = dataset_pb2.VersionStatistics(
        version_id=stats.version_id,
        frame_count=stats.frame_count,
        annotated_frame_count=stats.annotated_frame_count,
        roi_count=stats.roi_count,
        roi_label_counts=stats.roi_label_counts,
    )
    for distribution in stats.distributions:
        out.meta_distributions.append(
            dataset_pb2.MetadataDistribution(
                key=distribution.key,
                missing_count=distribution.missing_count,
                values=[dataset_pb2.MetadataValueCount(value=python_to_value(value), count=count)
                        for value, count in distribution.values],
            )
        )
    return out
