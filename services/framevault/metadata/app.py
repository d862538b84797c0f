"""Assembles the metadata service: database, the areas' MongoDB stores, blob
gateway, servicer. The one module that picks the storage implementations."""

from __future__ import annotations

from grpc import aio

from framevault.auth.startup import metadata_security
from framevault.common.config import Settings
from framevault.common.server import ServiceSpec
from framevault.metadata.blob_gateway import GrpcBlobGateway
from framevault.metadata.catalog.mongo_store import MongoCatalogStore
from framevault.metadata.catalog.service import Catalog
from framevault.metadata.db import Database
from framevault.metadata.deps import MetadataDeps
from framevault.metadata.frames.mongo_store import MongoFrameStore
from framevault.metadata.frames.rpc import upload_frames_handler
from framevault.metadata.mongo_errors import translate_mongo_error
from framevault.metadata.servicer import MetadataServicer
from framevault.metadata.views.mongo_store import MongoViewStore
from framevault.metadata.views.service import ViewService
from framevault.v1 import metadata_service_pb2, metadata_service_pb2_grpc

SERVICE_NAME = metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name


def build_service(settings: Settings, *, db: Database | None = None) -> ServiceSpec:
    database = db or Database(settings)
    blobs = GrpcBlobGateway(settings.blob_target, settings)
    servicer = MetadataServicer(MetadataDeps(
        settings=settings,
        blobs=blobs,
        catalog=Catalog(MongoCatalogStore(database), settings),
        frames=MongoFrameStore(database),
        views=ViewService(MongoViewStore(database), settings),
    ))

    security = metadata_security(settings, database)

    def register(server: aio.Server) -> None:
        metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server(servicer, server)
        server.add_registered_method_handlers(SERVICE_NAME, {"UploadFrames": upload_frames_handler(servicer)})
        security.register(server)

    async def prepare() -> None:
        await database.prepare()
        await security.prepare()

    async def ready() -> bool:
        return await database.ping()

    async def close() -> None:
        await blobs.close()
        await database.close()

    return ServiceSpec(
        name="metadata",
        address=settings.metadata_address,
        service_names=[SERVICE_NAME, *security.service_names],
        register=register,
        ready=ready,
        # The stores' collection handles translate at the storage boundary; the same
        # table here covers a driver error raised past them (session set-up),
        # so every path answers alike.
        translate_error=translate_mongo_error,
        close=close,
        metrics_address=settings.metadata_metrics_address,
        prepare=prepare,
        interceptors=security.interceptors,
    )
