"""Channel security shared by the SDK and the services' own channels: tokens and plaintext.

A token travels as call metadata (``authorization: Bearer <token>``) that
the channel's interceptors (``token_interceptors``) add to every call as it starts,
so callers pass no metadata. Not as gRPC call credentials: their plugin runs
on a thread of gRPC's for every call and hands the headers back to the
call, which costs the client more CPU per call than the rest of a small
unary call. A token goes only over TLS or over a plaintext channel to this
machine (a Unix socket or loopback addresses, never leaving the host); a
plaintext channel to another host cannot carry one: that is refused rather
than sent in the clear (``token_interceptors``).

``probe_tls`` tells a client why its calls fail when its transport does not
match the server's (a plaintext client on a TLS port, no client certificate
for a mutual-TLS port): gRPC reports only "Socket closed" then.

``parse_target`` reads a target as every channel of the SDK and the services
takes it: one ``host:port``, several IP addresses ``host:port,host:port``, or
a DNS name ``dns:///name:port`` that resolves to several. Calls are spread
over all addresses round-robin, connection by connection as they become
ready; an address that stops answering is left out until it reconnects.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import grpc
from grpc import aio

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


# gRPC's load-balancing policy on every channel: each call goes to the next ready address.
BALANCING_POLICY = "round_robin"
_ADDRESS_LIST_PREFIXES = ("ipv4:", "ipv6:")


@dataclass(frozen=True)
class ChannelTarget:
    """A target as a channel dials it.

    ``uri`` is what gRPC resolves; ``addresses`` the (host, port) pairs the
    target names (one for a name, none for a Unix socket). ``authority`` is
    the server name of an address list: gRPC would otherwise check the
    certificates against the whole list, which no certificate carries.
    """

    uri: str
    addresses: tuple[tuple[str, int | None], ...]
    authority: str | None = None

    def channel_options(self) -> list[tuple[str, str]]:
        """Channel arguments for round-robin balancing and, for an address list, the server name."""
        options = [("grpc.lb_policy_name", BALANCING_POLICY)]
        if self.authority is not None:
            options.append(("grpc.default_authority", self.authority))
        return options


def parse_target(target: str, *, tls: bool) -> ChannelTarget:
    """The channel target of ``host:port``, ``host:port,host:port`` (IP addresses), ``dns:///name:port``,
    ``ipv4:``/``ipv6:`` address lists or a Unix socket.

    Several addresses must be IP addresses of one family: gRPC lists only
    those statically; a name that stands for several replicas is a ``dns:``
    target. Over TLS they must also be one host, since a channel checks one
    server name against every certificate.

    Raises:
        ValueError: the target cannot be dialled as written; the message says how to write it.
    """
    text = target.strip()
    if not text:
        raise ValueError("no target: give host:port, host:port,host:port or dns:///name:port")
    if text.startswith(_UNIX_PREFIXES):
        return ChannelTarget(uri=text, addresses=())
    if "," not in text and not text.startswith(_ADDRESS_LIST_PREFIXES):
        return ChannelTarget(uri=text, addresses=(target_host_port(text),))
    if text.startswith("dns:"):
        raise ValueError(f"{target!r}: a dns: target names one name; list several addresses as "
                         "host:port,host:port")
    return _address_list(target, tls=tls)


def _address_list(target: str, *, tls: bool) -> ChannelTarget:
    text = target.strip()
    for prefix in _ADDRESS_LIST_PREFIXES:
        text = text.removeprefix(prefix)
    addresses: list[tuple[str, int]] = []
    versions: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        host, port = target_host_port(part)
        try:
            versions.add(ipaddress.ip_address(host).version)
        except ValueError:
            raise ValueError(f"{target!r}: {part!r} is not an IP address and port; several addresses must be "
                             "IP addresses, and a name standing for several replicas is written "
                             "dns:///name:port") from None
        if port is None:
            raise ValueError(f"{target!r}: {part!r} has no port")
        addresses.append((host, port))
    if len(versions) > 1:
        raise ValueError(f"{target!r}: IPv4 and IPv6 addresses cannot be mixed in one list")
    version = versions.pop()
    hosts = {host for host, _ in addresses}
    if len(hosts) > 1 and tls:
        raise ValueError(f"{target!r}: over TLS a channel checks one server name, and these addresses are "
                         f"different hosts ({', '.join(sorted(hosts))}); list addresses of one host, or use "
                         "dns:///name:port with a name every replica's certificate carries")
    bracket = (lambda host: f"[{host}]") if version == 6 else (lambda host: host)
    uri = f"ipv{version}:" + ",".join(f"{bracket(host)}:{port}" for host, port in addresses)
    authority = bracket(hosts.pop()) if len(hosts) == 1 else None
    return ChannelTarget(uri=uri, addresses=tuple(addresses), authority=authority)


def _loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback(target: str) -> bool:
    """Whether a gRPC target names only this machine: a Unix socket, ``localhost`` or loopback addresses."""
    if target.startswith(_UNIX_PREFIXES):
        return True
    try:
        addresses = parse_target(target, tls=False).addresses
    except ValueError:
        return False
    return bool(addresses) and all(_loopback_host(host) for host, _ in addresses)


AUTHORIZATION = "authorization"
# Where a channel's token comes from on each call: a fixed token, or one renewed as it expires.
TokenSource = str | Callable[[], str]


def _token_of(source: TokenSource) -> Callable[[], str]:
    return (lambda: source) if isinstance(source, str) else source


def _with_token(metadata: Any, header: tuple[str, str]) -> aio.Metadata:
    """The call's own metadata (not changed: it may be the caller's object) and the token."""
    if not metadata:
        return aio.Metadata(header)
    return aio.Metadata(*(item for item in metadata if item[0] != AUTHORIZATION), header)


class _BearerToken:
    """Adds ``authorization: Bearer <token>`` to the metadata of every call of an asyncio channel
    (replacing one the call brought), on the event loop as the call starts. gRPC files an
    interceptor under one kind of call only, hence one class per kind (``token_interceptors``)."""

    def __init__(self, token: TokenSource):
        self._token = _token_of(token)

    def _details(self, details: aio.ClientCallDetails) -> aio.ClientCallDetails:
        header = (AUTHORIZATION, f"Bearer {self._token()}")
        return details._replace(metadata=_with_token(details.metadata, header))  # type: ignore[attr-defined,no-any-return]


class _UnaryUnaryToken(_BearerToken, aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: aio.ClientCallDetails,
                                    request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _UnaryStreamToken(_BearerToken, aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: aio.ClientCallDetails,
                                     request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _StreamUnaryToken(_BearerToken, aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: aio.ClientCallDetails,
                                     request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


class _StreamStreamToken(_BearerToken, aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, client_call_details: aio.ClientCallDetails,
                                      request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


class _SyncCallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _SyncBearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                      grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """The token interceptor of blocking channels (``with_token``; ``grpc.intercept_channel`` files one
    object under every kind it implements)."""

    def __init__(self, token: TokenSource):
        self._token = _token_of(token)

    def _details(self, details: Any) -> _SyncCallDetails:
        own = [item for item in details.metadata or () if item[0] != AUTHORIZATION]
        return _SyncCallDetails(details.method, details.timeout, (*own, (AUTHORIZATION, f"Bearer {self._token()}")),
                                details.credentials, getattr(details, "wait_for_ready", None),
                                getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)


def check_token_transport(tls: bool, target: str) -> None:
    """Raises ValueError when a channel to ``target`` (``tls``: with TLS) must not carry a token: a
    plaintext channel to another host would send it in the clear."""
    if not tls and not is_loopback(target):
        raise ValueError(f"a token is sent only over TLS or to this machine: the plaintext channel to "
                         f"{target} cannot carry one")


def token_interceptors(tls: bool, target: str, token: TokenSource | None) -> list[aio.ClientInterceptor]:
    """The interceptors of an asyncio channel to ``target`` (``tls``: with TLS) that send ``token`` with
    every call; none without a token.

    Raises:
        ValueError: a plaintext channel to another host would have to carry the token in the clear.
    """
    if token is None:
        return []
    check_token_transport(tls, target)
    return [kind(token) for kind in (_UnaryUnaryToken, _UnaryStreamToken, _StreamUnaryToken, _StreamStreamToken)]


def with_token(channel: grpc.Channel, tls: bool, target: str, token: TokenSource | None) -> grpc.Channel:
    """``token_interceptors`` for a blocking channel: ``channel`` sending ``token`` with every call.

    Raises:
        ValueError: a plaintext channel to another host would have to carry the token in the clear.
    """
    if token is None:
        return channel
    check_token_transport(tls, target)
    return grpc.intercept_channel(channel, _SyncBearerToken(token))


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

    NO_TLS = "no TLS"  # refused the connection, or speaks neither TLS nor plaintext HTTP/2
    PLAINTEXT = "plaintext"  # no TLS, but answers plaintext HTTP/2 (a gRPC server without TLS)
    TLS = "TLS"
    TLS_CLIENT_CERTIFICATE_REQUIRED = "TLS, client certificate required"


# The HTTP/2 client preface and an empty SETTINGS frame: a gRPC server answers with its own SETTINGS.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


async def probe_tls(target: str, timeout: float) -> TlsProbe:
    """Connects to ``target`` (its first address) with TLS and no client certificate and reports what the
    server did.

    Used after a call failed with a vague UNAVAILABLE, to say whether the
    client's transport does not match the server's.
    """
    try:
        addresses = parse_target(target, tls=False).addresses
    except ValueError:
        return TlsProbe.NO_TLS
    # One address stands for all of a list: the replicas of one service share their transport settings.
    host, port = addresses[0] if addresses else ("", None)
    if port is None:
        return TlsProbe.NO_TLS
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context), timeout)
    except (OSError, TimeoutError):
        # Down, or listening without TLS (the handshake fails or the server hangs up).
        return TlsProbe.PLAINTEXT if await _answers_plaintext_http2(host, port, timeout) else TlsProbe.NO_TLS
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


async def _answers_plaintext_http2(host: str, port: int, timeout: float) -> bool:
    """Whether the server at (host, port) answers the HTTP/2 preface without TLS (with its SETTINGS)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(_HTTP2_PREFACE)
        # A SETTINGS frame: 3 bytes of length, then its type (4).
        answer = await asyncio.wait_for(reader.read(4), timeout)
        return len(answer) == 4 and answer[3] == 4
    except (OSError, TimeoutError):
        return False
    finally:
        writer.transport.abort()
