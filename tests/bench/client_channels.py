"""How the harness and its client processes reach the services of a phase: plaintext, or mutual TLS
with a bearer token when the phase runs with security on (``processes.running_services(secure=True)``
hands its clients ``FRAMEVAULT_CA_FILE``, the client certificate and ``FRAMEVAULT_TOKEN``). The token
goes with every call as the SDK sends it (``framevault.api.transport.with_token``)."""

from __future__ import annotations

import os

import grpc
from grpc import aio

try:
    from framevault.api.transport import with_token
except ImportError:
    # The API package of an A/B side that predates with_token: its clients sent the token as
    # call credentials, and so do the bench clients running with it.
    with_token = None  # type: ignore[assignment]

# The services' message limits.
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


def channel_credentials() -> grpc.ChannelCredentials | None:
    """``None`` = plaintext; with ``FRAMEVAULT_CA_FILE`` set, mutual TLS with the client certificate."""
    if not os.environ.get("FRAMEVAULT_CA_FILE"):
        return None

    def pem(variable: str) -> bytes:
        with open(os.environ[variable], "rb") as file:
            return file.read()

    tls = grpc.ssl_channel_credentials(pem("FRAMEVAULT_CA_FILE"), pem("FRAMEVAULT_CLIENT_KEY_FILE"),
                                       pem("FRAMEVAULT_CLIENT_CERT_FILE"))
    token = _token()
    if with_token is None and token:
        return grpc.composite_channel_credentials(tls, grpc.access_token_call_credentials(token))
    return tls


def _token() -> str | None:
    return os.environ.get("FRAMEVAULT_TOKEN") or None


def async_channel(target: str) -> aio.Channel:
    credentials = channel_credentials()
    if credentials is None:
        opened = aio.insecure_channel(target, options=CHANNEL_OPTIONS)
    else:
        opened = aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
    return opened if with_token is None else with_token(opened, credentials is not None, target, _token())


def channel(target: str) -> grpc.Channel:
    credentials = channel_credentials()
    if credentials is None:
        opened = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    else:
        opened = grpc.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
    return opened if with_token is None else with_token(opened, credentials is not None, target, _token())
