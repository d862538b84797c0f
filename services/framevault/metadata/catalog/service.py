"""The catalog's domain services over one store, built once by app.py."""

from __future__ import annotations

from framevault.common.config import Settings
from framevault.metadata.catalog.datasets import Datasets
from framevault.metadata.catalog.diff import VersionDiffer
from framevault.metadata.catalog.merge import Merger
from framevault.metadata.catalog.page_tokens import PageTokens
from framevault.metadata.catalog.statistics import VersionStatisticsService
from framevault.metadata.catalog.store import CatalogStore
from framevault.metadata.catalog.versions import Versions


class Catalog:
    """Datasets, versions, diff, merge and statistics over one catalog store."""

    def __init__(self, store: CatalogStore, settings: Settings):
        tokens = PageTokens.from_settings(settings)
        self.datasets = Datasets(store, tokens)
        self.versions = Versions(store, tokens)
        self.differ = VersionDiffer(store, tokens)
        self.merger = Merger(store)
        self.statistics = VersionStatisticsService(store)
