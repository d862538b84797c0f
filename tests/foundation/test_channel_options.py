"""The servers and every client channel (the SDK's, and the services' calls to each other) take their
message limits, keepalive and stream window from framevault.api.transport, and agree: what one side
may send the other takes, clients ping idle connections no more often than the servers allow, and every
receiver holds at most its fixed stream window of what a peer sent ahead."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from framevault.api import transport
from framevault.common import channels
from framevault.common.config import Settings
from framevault.common.server import server_options
from framevault.sdk.client import channel_options
from framevault.sdk.settings import ClientSettings


def _defaults(settings_class: type, *names: str) -> tuple[Any, ...]:
    fields = {f.name: f.default for f in dataclasses.fields(settings_class)}
    return tuple(fields[name] for name in names)


def _service_channel_options(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The options ``service_channel`` opens its channel with."""
    opened: list[list[tuple[str, Any]]] = []

    def capture(target: str, *args: Any, options: list[tuple[str, Any]], **kwargs: Any) -> object:
        opened.append(options)
        return object()

    monkeypatch.setattr(channels.aio, "secure_channel", capture)
    monkeypatch.setattr(channels.aio, "insecure_channel", capture)
    channels.service_channel(settings.blob_target, settings, ["framevault.v1.BlobService"])
    (options,) = opened
    return dict(options)


def test_service_and_sdk_settings_start_from_the_same_limits_and_keepalive() -> None:
    shared = (transport.MAX_MESSAGE_BYTES, transport.KEEPALIVE_TIME_MS, transport.KEEPALIVE_TIMEOUT_MS,
              transport.STREAM_WINDOW_BYTES)
    assert _defaults(Settings, "grpc_max_message_bytes", "grpc_keepalive_time_ms", "grpc_keepalive_timeout_ms",
                     "grpc_stream_window_bytes") == shared
    assert _defaults(ClientSettings, "max_message_bytes", "keepalive_time_ms", "keepalive_timeout_ms",
                     "stream_window_bytes") == shared


def test_servers_and_client_channels_agree_on_message_limits_and_keepalive(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    server = dict(server_options(settings))
    clients = {
        "sdk": dict(channel_options(ClientSettings())),
        "service to service": _service_channel_options(settings, monkeypatch),
    }
    for name, client in clients.items():
        # What one side may send, the other receives.
        assert client["grpc.max_send_message_length"] <= server["grpc.max_receive_message_length"], name
        assert server["grpc.max_send_message_length"] <= client["grpc.max_receive_message_length"], name
        assert client["grpc.max_receive_message_length"] == transport.MAX_MESSAGE_BYTES, name
        # Keepalive pings, also on connections without calls, come no more often than the server takes
        # pings without data; faster ones would make it end the connection (too_many_pings).
        assert client["grpc.keepalive_time_ms"] >= server["grpc.http2.min_ping_interval_without_data_ms"], name
        assert client["grpc.keepalive_permit_without_calls"] == server["grpc.keepalive_permit_without_calls"] == 1
        assert client["grpc.http2.max_pings_without_data"] == 0, name
        assert (client["grpc.keepalive_time_ms"], client["grpc.keepalive_timeout_ms"]) == (
            server["grpc.keepalive_time_ms"], server["grpc.keepalive_timeout_ms"]), name
        # Both receive into a fixed window: gRPC's probe would grow it with the link, not with memory.
        for side in (client, server):
            assert side["grpc.http2.bdp_probe"] == 0, name
            assert side["grpc.http2.lookahead_bytes"] == transport.STREAM_WINDOW_BYTES, name
    # The SDK retries per call; the services' channels let gRPC retry UNAVAILABLE under their policy.
    assert clients["sdk"]["grpc.enable_retries"] == 0 and "grpc.service_config" not in clients["sdk"]
    assert clients["service to service"]["grpc.enable_retries"] == 1
    assert "retryPolicy" in clients["service to service"]["grpc.service_config"]


def test_changed_limits_reach_both_sides(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    changed = dataclasses.replace(settings, grpc_max_message_bytes=8 * 1024 * 1024, grpc_keepalive_time_ms=45_000,
                                  grpc_stream_window_bytes=1024 * 1024)
    server = dict(server_options(changed))
    service_client = _service_channel_options(changed, monkeypatch)
    for options in (server, service_client):
        assert options["grpc.max_receive_message_length"] == options["grpc.max_send_message_length"] == 8 * 1024 * 1024
        assert options["grpc.keepalive_time_ms"] == 45_000
        assert options["grpc.http2.lookahead_bytes"] == 1024 * 1024
    sdk = dict(channel_options(ClientSettings(max_message_bytes=8 * 1024 * 1024, keepalive_time_ms=45_000,
                                              stream_window_bytes=2 * 1024 * 1024)))
    assert (sdk["grpc.max_send_message_length"], sdk["grpc.keepalive_time_ms"], sdk["grpc.http2.lookahead_bytes"]) == (
        8 * 1024 * 1024, 45_000, 2 * 1024 * 1024)
