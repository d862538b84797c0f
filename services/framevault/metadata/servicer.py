"""The MetadataService servicer: one mixin of RPCs per area.

Each area (catalog = datasets and versions, frames, views) keeps its RPC
methods in ``<area>/rpc.py`` and its logic beside them; the mixins reach
shared dependencies through ``self.deps``, one typed object that app.py
builds once. RPCs no area implements answer
UNIMPLEMENTED through the generated base class.
"""

from __future__ import annotations

from dataclasses import dataclass

from framevault.common.config import Settings
from framevault.metadata.blobs import BlobGateway
from framevault.metadata.catalog.rpc import Catalog, CatalogRpcs
from framevault.metadata.db import Database
from framevault.metadata.frames.rpc import FrameRpcs
from framevault.metadata.views.rpc import ViewRpcs
from framevault.metadata.views.service import ViewService
from framevault.v1 import metadata_service_pb2_grpc


@dataclass(frozen=True)
class MetadataDeps:
    """What the RPC mixins reach: settings, storage handles and the areas' domain services."""

    settings: Settings
    db: Database
    blobs: BlobGateway
    catalog: Catalog
    views: ViewService


class MetadataServicer(CatalogRpcs, FrameRpcs, ViewRpcs, metadata_service_pb2_grpc.MetadataServiceServicer):
    def __init__(self, deps: MetadataDeps):
        self.deps = deps
