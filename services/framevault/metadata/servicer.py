"""The MetadataService servicer: one mixin of RPCs per area.

Each area (catalog = datasets and versions, frames, views) keeps its RPC
methods in ``<area>/rpc.py`` and its logic beside them; the mixins reach
shared dependencies through ``self.deps``, one typed object (``deps.py``)
that app.py builds once. RPCs no area implements answer
UNIMPLEMENTED through the generated base class.
"""

from __future__ import annotations

from framevault.metadata.catalog.rpc import CatalogRpcs
from framevault.metadata.deps import MetadataDeps
from framevault.metadata.frames.rpc import FrameRpcs
from framevault.metadata.views.rpc import ViewRpcs
from framevault.v1 import metadata_service_pb2_grpc


class MetadataServicer(CatalogRpcs, FrameRpcs, ViewRpcs, metadata_service_pb2_grpc.MetadataServiceServicer):
    def __init__(self, deps: MetadataDeps):
        self.deps = deps
