"""Client channels for calls one service makes to the other.

Same transport rules on every service-to-service channel: keepalive matching
the servers' ping policy, explicit message limits, and gRPC's built-in retry
for ``UNAVAILABLE`` only (the one code that says the request never ran).
Callers still put a deadline on every call. Transport security (TLS, mutual
TLS, or plaintext where allowed) follows ``framevault.common.tls``.

A target may name several replicas of the other service (``host:port,host:port``
or ``dns:///name:port``, read by ``framevault.api.transport.parse_target``):
calls are spread over them round-robin, and a retried call goes to a replica
that is still up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from grpc import aio

from framevault.api.retry import RetryPolicy
from framevault.api.transport import TokenSource, client_channel_options, parse_target, with_token
from framevault.common.config import Settings, env_name
from framevault.common.tls import TransportSettingsError, calls_use_tls, channel_credentials

# The settings naming where a service reaches the other one.
TARGET_SETTINGS = ("blob_target", "metadata_target")
# gRPC itself retries on these channels; only UNAVAILABLE, which says the request never ran.
SERVICE_CHANNEL_RETRY = RetryPolicy(max_attempts=5, initial_backoff_seconds=0.05, max_backoff_seconds=2.0)


def retry_service_config(service_names: Sequence[str], policy: RetryPolicy = SERVICE_CHANNEL_RETRY) -> str:
    return json.dumps({
        "methodConfig": [{
            "name": [{"service": name} for name in service_names],
            "retryPolicy": policy.grpc_retry_policy(),
        }]
    })


def service_channel(target: str, settings: Settings, service_names: Sequence[str],
                    token: TokenSource | None = None) -> aio.Channel:
    """A channel to the other service; ``token`` (the service's own identity) goes with every call.

    Raises:
        TransportSettingsError: ``target`` cannot be dialled as written (the message names its setting).
    """
    try:
        dialled = parse_target(target, tls=calls_use_tls(settings))
    except ValueError as exc:
        raise TransportSettingsError(f"{_setting_holding(settings, target)}: {exc}") from None
    credentials = channel_credentials(settings, target)
    options = [
        *dialled.channel_options(),
        *client_channel_options(max_message_bytes=settings.grpc_max_message_bytes,
                                keepalive_time_ms=settings.grpc_keepalive_time_ms,
                                keepalive_timeout_ms=settings.grpc_keepalive_timeout_ms,
                                stream_window_bytes=settings.grpc_stream_window_bytes,
                                retry_service_config=retry_service_config(service_names)),
    ]
    if credentials is None:
        channel = aio.insecure_channel(dialled.uri, options=options)
    else:
        channel = aio.secure_channel(dialled.uri, credentials, options=options)
    return with_token(channel, credentials is not None, target, token)


def _setting_holding(settings: Settings, target: str) -> str:
    """The setting (and its variable) a target came from, for error messages."""
    for name in TARGET_SETTINGS:
        if getattr(settings, name) == target:
            return f"{name} ({env_name(name)})"
    return f"target {target!r}"
