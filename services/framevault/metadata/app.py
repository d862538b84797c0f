"""Assembles the metadata service: database, blob gateway, servicer."""

from __future__ import annotations

import pymongo.errors
from grpc import aio

from framevault.common.config import Settings
from framevault.common.errors import Aborted, DeadlineExceeded, FramevaultError, Unavailable
from framevault.common.server import ServiceSpec
from framevault.metadata.blob_gateway import GrpcBlobGateway
from framevault.metadata.db import Database
from framevault.metadata.servicer import MetadataDeps, MetadataServicer
from framevault.v1 import metadata_service_pb2, metadata_service_pb2_grpc

SERVICE_NAME = metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name


def translate_mongo_error(exc: BaseException) -> FramevaultError | None:
    """Driver errors a caller should retry, as domain errors."""
    if isinstance(exc, pymongo.errors.ExecutionTimeout):
        return DeadlineExceeded("database operation timed out")
    if isinstance(exc, pymongo.errors.PyMongoError) and exc.has_error_label("TransientTransactionError"):
        return Aborted("concurrent modification; retry", retry_after_ms=50)
    if isinstance(exc, (pymongo.errors.ConnectionFailure, pymongo.errors.NotPrimaryError)):
        return Unavailable("database unavailable; retry", retry_after_ms=500)
    if isinstance(exc, pymongo.errors.OperationFailure) and exc.code == 112:  # WriteConflict
        return Aborted("concurrent modification; retry", retry_after_ms=50)
    return None


def build_service(settings: Settings, *, db: Database | None = None) -> ServiceSpec:
    database = db or Database(settings)
    blobs = GrpcBlobGateway(settings.blob_target, settings)
    servicer = MetadataServicer(MetadataDeps(settings=settings, db=database, blobs=blobs))

    def register(server: aio.Server) -> None:
        metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server(servicer, server)

    async def ready() -> bool:
        return await database.ping()

    async def close() -> None:
        await blobs.close()
        await database.close()

    return ServiceSpec(
        name="metadata",
        address=settings.metadata_address,
        service_names=[SERVICE_NAME],
        register=register,
        ready=ready,
        translate_error=translate_mongo_error,
        close=close,
        metrics_address=settings.metadata_metrics_address,
        prepare=database.prepare,
    )
