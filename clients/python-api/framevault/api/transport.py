"""Channel security shared by the SDK and the services' own channels: tokens and plaintext.

A token travels as call metadata (``authorization: Bearer <token>``) that
the channel adds to every call as it starts (``with_token``), so callers pass
no metadata. Not as gRPC call credentials: their plugin runs
on a thread of gRPC's for every call and hands the headers back to the
call, which costs the client more CPU per call than the rest of a small
unary call. A token goes only over TLS or over a plaintext channel to this
machine (a Unix socket or loopback addresses, never leaving the host); a
plaintext channel to another host cannot carry one: that is refused rather
than sent in the clear (``with_token``).

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
from typing import Any, TypeVar, cast

import grpc
from grpc import aio

_UNIX_PREFIXES = ("unix:", "unix-abstract:")

# The transport the servers and every client channel (the SDK's, the services' calls to each other)
# agree on; the services' settings and the SDK's start from these values.
# Largest message either side sends or receives (bytes): one side's send limit is the other's receive limit.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Keepalive pings on idle connections: interval (ms) and how long an answer may take (ms).
KEEPALIVE_TIME_MS = 30_000
KEEPALIVE_TIMEOUT_MS = 10_000
# A server ends a connection whose pings without data come more often than this (GOAWAY
# "too_many_pings"): no client's keepalive interval may be shorter.
SERVER_MIN_PING_INTERVAL_MS = 5_000
# Bytes a receiver lets one stream's peer send ahead of what it has read (HTTP/2 stream window), fixed
# instead of tuned by gRPC's bandwidth-delay probe: the probe may grow it without bound when memory is
# plentiful (``max(4 MiB, 2 x BDP)``, tens of MiB per stream on a fast link), and a stream whose reader
# waits (a WriteBlob stream while its part goes to the store) then holds all of it in memory. Fixed, what
# a stream holds is bounded by this whatever the link, at the cost of one window per round trip on a long
# fat link (4 MiB at 10 ms: ~400 MB/s per stream).
STREAM_WINDOW_BYTES = 4 * 1024 * 1024

Options = list[tuple[str, int | str]]


def _options_of_both_sides(max_message_bytes: int, keepalive_time_ms: int, keepalive_timeout_ms: int,
                           stream_window_bytes: int) -> Options:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.bdp_probe", 0),
        ("grpc.http2.lookahead_bytes", stream_window_bytes),
    ]


def client_channel_options(*, max_message_bytes: int = MAX_MESSAGE_BYTES, keepalive_time_ms: int = KEEPALIVE_TIME_MS,
                           keepalive_timeout_ms: int = KEEPALIVE_TIMEOUT_MS,
                           stream_window_bytes: int = STREAM_WINDOW_BYTES,
                           retry_service_config: str | None = None) -> Options:
    """Options of a client channel: message limits, keepalive pings within the servers' ping policy
    (also on idle connections, as many as needed), a fixed receive window per stream, and gRPC's own
    retries only where a retry policy (``retry_service_config``, a service config) is given; otherwise
    callers retry per call, where idempotency is known."""
    options = [*_options_of_both_sides(max_message_bytes, keepalive_time_ms, keepalive_timeout_ms, stream_window_bytes),
               ("grpc.http2.max_pings_without_data", 0)]
    if retry_service_config is None:
        return [*options, ("grpc.enable_retries", 0)]
    return [*options, ("grpc.enable_retries", 1), ("grpc.service_config", retry_service_config)]


def server_channel_options(*, max_message_bytes: int = MAX_MESSAGE_BYTES, keepalive_time_ms: int = KEEPALIVE_TIME_MS,
                           keepalive_timeout_ms: int = KEEPALIVE_TIMEOUT_MS,
                           stream_window_bytes: int = STREAM_WINDOW_BYTES) -> Options:
    """A server's side of :func:`client_channel_options`: the same message limits, keepalive and
    stream window, and pings without data taken every ``SERVER_MIN_PING_INTERVAL_MS``."""
    return [*_options_of_both_sides(max_message_bytes, keepalive_time_ms, keepalive_timeout_ms, stream_window_bytes),
            ("grpc.http2.min_ping_interval_without_data_ms", SERVER_MIN_PING_INTERVAL_MS)]


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
ChannelT = TypeVar("ChannelT", aio.Channel, grpc.Channel)
# The position of ``metadata`` among a multi-callable's arguments (request, timeout, metadata, ...).
_METADATA_POSITION = 2


def _with_token(metadata: Any, header: tuple[str, str]) -> tuple[tuple[str, Any], ...]:
    """The call's own metadata (not changed: it may be the caller's object) with ``header`` as its only
    ``authorization``."""
    if not metadata:
        return (header,)
    return (*(item for item in metadata if item[0] != AUTHORIZATION), header)


class _TokenCall:
    """A method of a channel whose calls carry the channel's token: the channel's own multi-callable,
    called with the token added to the call's metadata (calls are gRPC's own call objects)."""

    __slots__ = ("_inner", "_header")

    def __init__(self, inner: Any, header: Callable[[], tuple[str, str]]):
        self._inner = inner
        self._header = header

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if len(args) > _METADATA_POSITION:
            return (*args[:_METADATA_POSITION], _with_token(args[_METADATA_POSITION], self._header()),
                    *args[_METADATA_POSITION + 1:]), kwargs
        return args, {**kwargs, "metadata": _with_token(kwargs.get("metadata"), self._header())}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = self._arguments(args, kwargs)
        return self._inner(*args, **kwargs)

    def with_call(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = self._arguments(args, kwargs)
        return self._inner.with_call(*args, **kwargs)

    def future(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = self._arguments(args, kwargs)
        return self._inner.future(*args, **kwargs)


class _TokenChannel:
    """A channel (asyncio or blocking) whose every call carries ``authorization: Bearer <token>``;
    everything else is the channel's own."""

    def __init__(self, channel: Any, token: TokenSource):
        self._channel = channel
        fixed = (AUTHORIZATION, f"Bearer {token}") if isinstance(token, str) else None
        self._header: Callable[[], tuple[str, str]] = (
            (lambda: fixed) if fixed is not None else (lambda: (AUTHORIZATION, f"Bearer {token()}")))  # type: ignore[operator]

    def unary_unary(self, *args: Any, **kwargs: Any) -> _TokenCall:
        return _TokenCall(self._channel.unary_unary(*args, **kwargs), self._header)

    def unary_stream(self, *args: Any, **kwargs: Any) -> _TokenCall:
        return _TokenCall(self._channel.unary_stream(*args, **kwargs), self._header)

    def stream_unary(self, *args: Any, **kwargs: Any) -> _TokenCall:
        return _TokenCall(self._channel.stream_unary(*args, **kwargs), self._header)

    def stream_stream(self, *args: Any, **kwargs: Any) -> _TokenCall:
        return _TokenCall(self._channel.stream_stream(*args, **kwargs), self._header)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)

    async def __aenter__(self) -> _TokenChannel:
        await self._channel.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._channel.__aexit__(*exc)

    def __enter__(self) -> _TokenChannel:
        self._channel.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._channel.__exit__(*exc)


def check_token_transport(tls: bool, target: str) -> None:
    """Raises ValueError when a channel to ``target`` (``tls``: with TLS) must not carry a token: a
    plaintext channel to another host would send it in the clear."""
    if not tls and not is_loopback(target):
        raise ValueError(f"a token is sent only over TLS or to this machine: the plaintext channel to "
                         f"{target} cannot carry one")


def with_token(channel: ChannelT, tls: bool, target: str, token: TokenSource | None) -> ChannelT:
    """``channel`` to ``target`` (``tls``: with TLS), asyncio or blocking, sending ``token`` with every call
    (replacing an ``authorization`` a call brings); ``channel`` itself without a token.

    Raises:
        ValueError: a plaintext channel to another host would have to carry the token in the clear.
    """
    if token is None:
        return channel
    check_token_transport(tls, target)
    return cast("ChannelT", _TokenChannel(channel, token))


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
