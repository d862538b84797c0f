"""A service's own identity on the channel it opens to the other service.

The token is the service's short-lived service token
(``credentials.ServiceTokenMinter``), attached to every call on the channel
as gRPC call credentials, so no call site passes it and none can pass an end
caller's token instead (docs/SECURITY.md, "Service-to-service identity").
"""

from __future__ import annotations

import threading

import grpc

from framevault.auth.credentials import ServiceTokenMinter
from framevault.common.config import Settings


class _ServiceTokenPlugin(grpc.AuthMetadataPlugin):
    """Supplies the current service token for each call; gRPC calls it on its own threads."""

    def __init__(self, minter: ServiceTokenMinter):
        self._minter = minter
        self._lock = threading.Lock()

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        try:
            with self._lock:
                metadata = self._minter.call_metadata()
        except Exception as exc:  # noqa: BLE001 - gRPC fails the call with it
            callback((), exc)
            return
        callback(metadata, None)


def service_call_credentials(settings: Settings, service: str, audience_service: str) -> grpc.CallCredentials:
    """Call credentials carrying ``service``'s token for calls to ``audience_service``."""
    minter = ServiceTokenMinter(settings, service, audience_service)
    return grpc.metadata_call_credentials(_ServiceTokenPlugin(minter), name=f"service:{service}")
