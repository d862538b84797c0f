"""What the RPC mixins of the servicer reach, built once by app.py.

The areas' domain services and stores are typed by what the domain sees (the
store protocols), so the wiring in app.py is the one place that names the
MongoDB implementations. This module imports no RPC mixin.
"""

from __future__ import annotations

from dataclasses import dataclass

from framevault.common.config import Settings
from framevault.metadata.blobs import BlobGateway
from framevault.metadata.catalog.service import Catalog
from framevault.metadata.frames.store import FrameStore
from framevault.metadata.views.service import ViewService


@dataclass(frozen=True)
class MetadataDeps:
    """Settings, the blob gateway, the catalog and view services, the frame store."""

    settings: Settings
    blobs: BlobGateway
    catalog: Catalog
    frames: FrameStore
    views: ViewService
