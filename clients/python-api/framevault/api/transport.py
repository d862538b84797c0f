"""Channel security shared by the SDK and the services' own channels: tokens and plaintext.

A token travels as gRPC call credentials (``authorization: Bearer <token>``),
composed with the channel's credentials, so every call on the channel
carries it without the callers passing metadata. gRPC attaches call
credentials only to secure channels; a plaintext channel to this machine
uses gRPC's local credentials, which carry them and never leave the host. A
plaintext channel to another host cannot carry a token: that is refused
rather than sent in the clear.

``probe_tls`` tells a client why its calls fail when its transport does not
match the server's (a plaintext client on a TLS port, no client certificate
for a mutual-TLS port): gRPC reports only "Socket closed" then.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import ssl

import grpc

_UNIX_PREFIXES = ("unix:", "unix-abstract:")


def target_host_port(target: str) -> tuple[str, int | None]:
    """Host and port of a gRPC target (``host:port``, ``[v6]:port``, ``dns:///host:port``, ``ipv4:host:port``)."""
    rest = target
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if rest.startswith(prefix):
            rest = rest[len(prefix):]
            break
    if rest.startswith("["):
        host, _, after = rest[1:].partition("]")
        port = after.removeprefix(":")
        return host, int(port) if port.isdigit() else None
    if rest.count(":") == 1:
        host, port = rest.split(":")
        return host, int(port) if port.isdigit() else None
    return rest, None


def is_loopback(target: str) -> bool:
    """Whether a gRPC target names this machine: a Unix socket, ``localhost`` or a loopback address."""
    if target.startswith(_UNIX_PREFIXES):
        return True
    host, _ = target_host_port(target)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer_token_credentials(token: str) -> grpc.CallCredentials:
    """Call credentials sending ``authorization: Bearer <token>``."""
    return grpc.access_token_call_credentials(token)


def with_call_credentials(channel_credentials: grpc.ChannelCredentials | None, target: str,
                          call_credentials: grpc.CallCredentials | None) -> grpc.ChannelCredentials | None:
    """``channel_credentials`` (``None`` = plaintext) that also attach ``call_credentials`` to every call.

    Raises:
        ValueError: a plaintext channel to another host would have to carry the token in the clear.
    """
    if call_credentials is None:
        return channel_credentials
    if channel_credentials is None:
        if not is_loopback(target):
            raise ValueError(f"a token is sent only over TLS or to this machine: the plaintext channel to "
                             f"{target} cannot carry one")
        local = grpc.LocalConnectionType.UDS if target.startswith(_UNIX_PREFIXES) else \
            grpc.LocalConnectionType.LOCAL_TCP
        channel_credentials = grpc.local_channel_credentials(local)
    return grpc.composite_channel_credentials(channel_credentials, call_credentials)


class TlsProbe(enum.Enum):
    """What a server at a target answers a TLS handshake with (certificate not checked: only the protocol)."""

    NO_TLS = "no TLS"  # refused the connection, or is not a TLS server
    TLS = "TLS"
    TLS_CLIENT_CERTIFICATE_REQUIRED = "TLS, client certificate required"


# The HTTP/2 client preface and an empty SETTINGS frame: a gRPC server answers with its own SETTINGS.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


async def probe_tls(target: str, timeout: float) -> TlsProbe:
    """Connects to ``target`` with TLS and no client certificate and reports what the server did.

    Used after a call failed with a vague UNAVAILABLE, to say whether the
    client's transport does not match the server's.
    """
    if target.startswith(_UNIX_PREFIXES):
        return TlsProbe.NO_TLS
    host, port = target_host_port(target)
    if port is None:
        return TlsProbe.NO_TLS
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context), timeout)
    except (OSError, TimeoutError):
        return TlsProbe.NO_TLS
    try:
        # TLS 1.3 servers check the client certificate after the client's side of the handshake
        # is done: one that requires a certificate closes the connection (or sends an alert)
        # instead of answering the HTTP/2 preface with its SETTINGS.
        writer.write(_HTTP2_PREFACE)
        answer = await asyncio.wait_for(reader.read(1), timeout)
        return TlsProbe.TLS if answer else TlsProbe.TLS_CLIENT_CERTIFICATE_REQUIRED
    except ssl.SSLError as exc:
        if "CERTIFICATE_REQUIRED" in str(exc).upper():
            return TlsProbe.TLS_CLIENT_CERTIFICATE_REQUIRED
        return TlsProbe.TLS
    except (OSError, TimeoutError):
        return TlsProbe.TLS
    finally:
        # Dropped without TLS close_notify: a graceful close would wait for the server's.
        writer.transport.abort()
