"""Assembles the blob service: S3 storage, domain, servicer, and with security
on its access control (``framevault.blob.access``)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import grpc
import urllib3.exceptions
from grpc import aio
from minio.error import S3Error, ServerError

from framevault.blob import wire
from framevault.blob.access import blob_security
from framevault.blob.direct import DirectUploads
from framevault.blob.gc import GarbageCollector, MetadataReferences, ReferenceSource
from framevault.blob.previews import PreviewMaker, preview_sources
from framevault.blob.servicer import BlobDeps, BlobServicer
from framevault.blob.storage import BlobStorage, DeleteFailed, S3BlobStorage, verify_conditional_writes
from framevault.blob.store import BlobStore
from framevault.blob.uploads import BlobWriter
from framevault.common.config import Settings
from framevault.common.errors import FramevaultError, Unavailable
from framevault.common.server import ServiceSpec
from framevault.v1 import blob_pb2, blob_pb2_grpc

SERVICE_NAME = blob_pb2.DESCRIPTOR.services_by_name["BlobService"].full_name

# S3 error codes that mean "try again later", not "your request is wrong".
_TRANSIENT_S3_CODES = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout",
                                 "RequestTimeTooSkewed", "OperationAborted"})


def translate_storage_error(exc: BaseException) -> FramevaultError | None:
    """Backend failures a caller should retry, as domain errors."""
    if isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, ServerError)):
        return Unavailable("object storage unavailable; retry", retry_after_ms=500)
    if isinstance(exc, (S3Error, DeleteFailed)) and exc.code in _TRANSIENT_S3_CODES:
        return Unavailable(f"object storage busy ({exc.code}); retry", retry_after_ms=500)
    return None


class _DecodingWritesByHand:
    """The server as the generated registration sees it, with WriteBlob's requests decoded by
    ``wire.write_request`` (its chunks as views, not copies) and every other method as generated."""

    def __init__(self, server: aio.Server):
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        # The same methods are registered by name next (add_registered_method_handlers), from one table.
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        generated = handlers["WriteBlob"]
        table = {**handlers, "WriteBlob": grpc.stream_unary_rpc_method_handler(
            generated.stream_unary, request_deserializer=wire.write_request,
            response_serializer=generated.response_serializer)}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, table),))
        self._server.add_registered_method_handlers(service, table)


def build_service(settings: Settings, *, storage: BlobStorage | None = None,
                  references: ReferenceSource | None = None) -> ServiceSpec:
    backend = storage or S3BlobStorage(settings)
    security = blob_security(settings, partial(preview_sources, backend))
    referenced = references or MetadataReferences(settings.metadata_target, settings,
                                                  token=security.service_token)
    blobs = BlobStore(backend, settings)
    writer = BlobWriter(backend, settings)
    direct = DirectUploads(backend, blobs, settings)
    servicer = BlobServicer(BlobDeps(
        settings=settings,
        blobs=blobs,
        writer=writer,
        previews=PreviewMaker(backend, blobs, settings),
        garbage=GarbageCollector(backend, referenced, settings),
        direct=direct,
    ))

    def register(server: aio.Server) -> None:
        blob_pb2_grpc.add_BlobServiceServicer_to_server(servicer, _DecodingWritesByHand(server))

    async def ready() -> bool:
        return await backend.bucket_exists()

    async def prepare() -> None:
        # A store without conditional writes is refused: the service stays UNAVAILABLE and logs why.
        await verify_conditional_writes(backend)
        await direct.probe_store()

    async def close() -> None:
        # Streams cut by the stop still record their committed parts before storage goes away.
        await writer.drain(timeout=settings.grpc_shutdown_grace_seconds)
        await referenced.close()
        await security.close()
        await backend.close()

    return ServiceSpec(
        name="blob",
        address=settings.blob_address,
        service_names=[SERVICE_NAME],
        register=register,
        ready=ready,
        translate_error=translate_storage_error,
        close=close,
        metrics_address=settings.blob_metrics_address,
        prepare=prepare,
        interceptors=security.interceptors,
    )
