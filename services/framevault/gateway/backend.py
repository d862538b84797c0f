"""The gateway's channels to the metadata and blob services.

The gateway has no identity of its own for user data: every call carries the
credential of the browser or script it answers (``authorization: Bearer``),
so the services decide what that caller may see, exactly as for the SDK.
Channels are the services' own (``framevault.common.channels``): keepalive,
limits, retry of UNAVAILABLE, and the TLS settings of the services (mutual
TLS when the services require client certificates).
"""

from __future__ import annotations

from typing import cast

from grpc import aio

from framevault.common.channels import service_channel
from framevault.common.config import Settings
from framevault.v1 import access_pb2, access_pb2_grpc, blob_pb2, blob_pb2_grpc, metadata_service_pb2_grpc

METADATA_SERVICE = "framevault.v1.MetadataService"
ACCESS_SERVICE = access_pb2.DESCRIPTOR.services_by_name["AccessService"].full_name
BLOB_SERVICE = blob_pb2.DESCRIPTOR.services_by_name["BlobService"].full_name

Metadata = tuple[tuple[str, str], ...]


class Backends:
    """Stubs of both services over one channel each, shared by every request."""

    def __init__(self, settings: Settings):
        self.timeout = settings.service_call_timeout_seconds
        self._metadata_channel = service_channel(settings.metadata_target, settings,
                                                 [METADATA_SERVICE, ACCESS_SERVICE])
        self._blob_channel = service_channel(settings.blob_target, settings, [BLOB_SERVICE])
        self.metadata = cast("metadata_service_pb2_grpc.MetadataServiceAsyncStub",
                             metadata_service_pb2_grpc.MetadataServiceStub(self._metadata_channel))
        self.access = cast("access_pb2_grpc.AccessServiceAsyncStub",
                           access_pb2_grpc.AccessServiceStub(self._metadata_channel))
        self.blob = cast("blob_pb2_grpc.BlobServiceAsyncStub", blob_pb2_grpc.BlobServiceStub(self._blob_channel))

    @property
    def channels(self) -> tuple[aio.Channel, aio.Channel]:
        return self._metadata_channel, self._blob_channel

    async def close(self) -> None:
        await self._metadata_channel.close()
        await self._blob_channel.close()


def caller_metadata(token: str | None) -> Metadata:
    """The call metadata that forwards the caller's token; none for an anonymous caller."""
    return (("authorization", f"Bearer {token}"),) if token else ()
