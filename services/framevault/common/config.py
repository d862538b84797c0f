"""Every setting of both services, with its typed default, env override and flag.

One place on purpose: a setting is added here or nowhere. Each field reads
``FRAMEVAULT_<FIELD NAME IN UPPER CASE>`` from the environment and
``--<field-name-with-dashes>`` from the command line; a flag wins over the
environment, the environment over the default. Secrets are ``Secret`` values,
which never show their text in ``repr``, ``str`` or logs; a connection string
is a ``SecretUri``, shown with its password masked.

What belongs here: every value whose right setting depends on the deployment
(addresses, credentials, timeouts, retries, batch, message and cache sizes,
concurrency, resource limits). What clients or backends rely on stays a named
constant next to the code that enforces it: limits the proto documents, token
and state formats and their versions, S3 and SigV4 limits, MongoDB's error
codes and the RetryInfo hints of the documented error tables.
Each field says what it does and its unit in the comment above it (a comment
serves the run of fields directly below it); ``--help`` shows that comment, and
tests/foundation/test_config.py checks that no field is left without one.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_type_hints

from framevault.api.transport import KEEPALIVE_TIME_MS, KEEPALIVE_TIMEOUT_MS, MAX_MESSAGE_BYTES, STREAM_WINDOW_BYTES

ENV_PREFIX = "FRAMEVAULT_"
_MASK = "**********"
# The password of a connection string's user info (``scheme://user:password@host``)
# and the value of any query option whose name says it is one (``tlsCertificateKeyFilePassword``).
_URI_PASSWORD = re.compile(r"(?<=://)([^:@/]*):[^@/]*@")
_URI_PASSWORD_OPTION = re.compile(r"(?i)([?&][^=&]*password=)[^&]*")


class Secret:
    """A setting whose text must not be shown: ``repr`` and ``str`` print a mask,
    and the value is read only through ``get_secret_value()``."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def masked(self) -> str:
        """What may be shown of the value: logs, ``--help`` and ``str`` show this."""
        return _MASK

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.masked()!r})"

    def __str__(self) -> str:
        return self.masked()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        # Copies and pickles across processes keep the value; only display masks it.
        return (type(self), (self._value,))


class SecretUri(Secret):
    """A connection string that may carry a password: shown with the password
    masked, so the hosts and options it points at stay readable in logs."""

    __slots__ = ()

    def masked(self) -> str:
        shown = _URI_PASSWORD.sub(rf"\1:{_MASK}@", self._value)
        return _URI_PASSWORD_OPTION.sub(rf"\1{_MASK}", shown)


@dataclass(frozen=True)
class Settings:
    # Listening addresses (host:port) of the two services.
    metadata_address: str = "127.0.0.1:50051"
    blob_address: str = "127.0.0.1:50052"
    # Prometheus /metrics endpoints (host:port; empty = off).
    metadata_metrics_address: str = "127.0.0.1:9451"
    blob_metrics_address: str = "127.0.0.1:9452"
    # Where the metadata service reaches the blob service (host:port; replicas as ip:port,ip:port
    # or dns:///name:port, balanced round-robin by framevault.common.channels).
    blob_target: str = "127.0.0.1:50052"
    # Where the blob service reaches the metadata service for garbage collection (written as blob_target).
    metadata_target: str = "127.0.0.1:50051"

    # MongoDB connection string of the metadata service (a replica set: transactions are used);
    # shown with its password masked.
    mongodb_uri: SecretUri = SecretUri("mongodb://127.0.0.1:27117/?replicaSet=fv")
    # Database the metadata service keeps its collections in.
    mongodb_database: str = "framevault"
    # How long the driver waits to select a server and to connect (ms).
    mongodb_timeout_ms: int = 10_000
    # Connections the driver keeps open per server at most.
    mongodb_max_pool_size: int = 100
    # "motor" (the default) or "pymongo" (PyMongo's native async client).
    mongodb_driver: str = "motor"
    # Documents per cursor round trip when diffing and merging versions.
    mongodb_cursor_batch_size: int = 1000
    # How long a catalog transaction that keeps meeting transient conflicts is run again from
    # the start (s); the last conflict then reaches the caller as ABORTED.
    transaction_retry_seconds: float = 30.0
    # Backoff between those runs: full jitter below a ceiling that doubles from the first (ms)
    # up to the largest (ms).
    transaction_retry_initial_backoff_ms: int = 10
    transaction_retry_max_backoff_ms: int = 200
    # Commits whose outcome is unknown are committed again on the same session up to this many
    # times in all before the whole transaction is run again.
    transaction_commit_attempts: int = 3

    # Catalog (metadata service).
    # Frame revisions removed per delete_many when purging a dataset or version.
    catalog_purge_batch_frames: int = 5000
    # Candidate frame ids resolved per round trip when diffing versions.
    catalog_diff_batch_frames: int = 500
    # Changes a merge writes per transaction.
    catalog_merge_batch_frames: int = 500
    # A DiffVersions message is sent once it holds this many changes or this many encoded bytes
    # (keep the bytes well below clients' 4 MiB default receive limit).
    catalog_diff_message_changes: int = 500
    catalog_diff_message_bytes: int = 1024 * 1024

    # S3 endpoint (host:port), credentials, bucket (must exist), region and HTTPS of the blob service.
    s3_endpoint: str = "127.0.0.1:8333"
    # The secret key has no default: the blob service refuses to start without it (security on).
    s3_access_key: str = "framevault"
    s3_secret_key: Secret = Secret("")
    s3_bucket: str = "framevault"
    s3_region: str = "us-east-1"
    s3_secure: bool = False
    # Parts of multipart uploads (S3 allows 5 MiB..5 GiB and 10,000 parts): the resume granularity of
    # WriteBlob. Grown up to s3_max_part_size_bytes when blob_max_size_bytes needs more than 10,000 parts.
    s3_part_size_bytes: int = 32 * 1024 * 1024
    # Memory per write stream is about two parts, so parts never grow past this; a blob_max_size_bytes
    # that would need larger parts is lowered to 10,000 of these.
    s3_max_part_size_bytes: int = 128 * 1024 * 1024
    # Threads running the synchronous S3 SDK; its HTTP pool is sized to match.
    s3_max_concurrency: int = 32
    # ReadBlob streams of one process that hold a GET open at once (each its connection and the one
    # thread that reads it ahead); further ones wait for one to end. Its own bound, larger than
    # s3_max_concurrency, because a stream holds its GET for as long as its caller takes to read.
    blob_max_open_reads: int = 256
    # The S3 store as clients reach it, put into presigned URLs (downloads, direct uploads) when it
    # differs from s3_endpoint: `host:port` (HTTPS per s3_secure) or `http(s)://host:port`; empty = s3_endpoint.
    s3_public_endpoint: str = ""

    # Blob service limits, advertised by GetCapabilities: bytes and blobs per batch call, preferred
    # and largest chunk of a read or write stream (bytes).
    blob_max_batch_total_size_bytes: int = 4 * 1024 * 1024
    blob_max_batch_blobs: int = 1000
    blob_chunk_size_bytes: int = 1024 * 1024
    blob_max_chunk_size_bytes: int = 4 * 1024 * 1024
    # Largest blob (bytes); 312.5 GiB is S3's 10,000 parts of 32 MiB.
    blob_max_size_bytes: int = 10_000 * 32 * 1024 * 1024
    # Longest edge of a preview (pixels).
    blob_max_preview_edge: int = 2048
    # Longest lifetime of a download URL (s); a leaked URL works until it expires (SigV4 allows 7 days at most).
    blob_max_download_url_seconds: int = 3600
    # Direct transfers: clients PUT parts to and GET ranges from the S3 store through presigned URLs
    # (StartDirectUpload / CompleteDirectUpload, GetDownloadUrl), as GetCapabilities advertises.
    blob_direct_transfers: bool = True
    # Blobs from this size on are worth a direct transfer (bytes; advertised to clients).
    blob_direct_min_size_bytes: int = 8 * 1024 * 1024
    # Direct uploads up to this size go in one PUT straight to the blob's content address, its URL
    # signing the sha256 the store must find in the bytes before the object exists (used only when the
    # store proved at start that it refuses a mismatch); a cut one is sent again whole. Larger ones go
    # in parts of s3_part_size_bytes to a staging key, resumable by part, and are read back to be
    # verified and copied inside the store: twice the store's work (bytes; 0 = always in parts).
    blob_direct_single_put_max_bytes: int = 1024 * 1024 * 1024
    # Grace period of garbage collection when the request gives none (s): younger blobs are kept.
    blob_gc_default_grace_seconds: int = 24 * 3600
    # Unreferenced blobs deleted (and reported) per garbage collection batch.
    blob_gc_batch_blobs: int = 1000
    # Referenced digests asked of the metadata service per message while collecting (it allows up to 10,000).
    blob_gc_reference_batch: int = 10_000
    # Larger sources get no preview (bytes): decoding one holds the whole image in memory.
    blob_max_preview_source_bytes: int = 256 * 1024 * 1024
    # A request stream answered early (an UploadFrames or WriteBlob refused or failed, or a WriteBlob
    # whose blob exists; either service) keeps reading and dropping what the client still sends, so
    # the client sees the real status (grpc/grpc#36066): until nothing came for the idle time (s),
    # for the longest time (s), or up to this many bytes.
    blob_write_drain_idle_seconds: float = 0.1
    blob_write_drain_max_seconds: float = 2.0
    blob_write_drain_max_bytes: int = 64 * 1024 * 1024

    # Upload stream: frames a client may have unanswered (the window), and frames written per
    # transaction.
    upload_window_frames: int = 2000
    upload_batch_frames: int = 500
    # Most retries of a frame a client may ask for (UploadOptions.upload_retries; the proto allows 10).
    upload_max_retries: int = 10
    # Backoff of retried frame writes (the stream's and UpdateFrame's, DeleteFrames'): jittered,
    # doubling from the base (ms) up to the largest (ms).
    upload_retry_base_delay_ms: int = 50
    upload_retry_max_delay_ms: int = 5_000
    # Attempts of UpdateFrame and DeleteFrames on transient failures, the first included.
    frame_write_attempts: int = 4
    # Largest blob an upload may carry inline in a frame source (bytes).
    upload_max_inline_bytes: int = 4 * 1024 * 1024
    # Metadata one frame may carry, its sources' and ROIs' included (bytes encoded, UploadFrames and
    # UpdateFrame): keeps a frame far below clients' default 4 MiB message limit.
    frame_max_meta_bytes: int = 256 * 1024
    # Inline blobs of one upload batch stored at once.
    upload_inline_store_concurrency: int = 8
    # Drafts whose idle write leases a process keeps for reuse; leases of a
    # forgotten draft are not lost (their deltas still count), just not reused.
    upload_remembered_lease_drafts: int = 4096

    # Frames per IterateFrames message when the request gives none, and at most.
    iterate_frames_per_message: int = 256
    iterate_max_frames_per_message: int = 1000
    # Frame documents fetched per query while iterating a view: the budget is split across
    # its selections, each getting at least the least and at most the most.
    view_fetch_budget_frames: int = 2000
    view_min_fetch_frames: int = 16
    view_max_fetch_frames: int = 500
    # Longest a page of ListViewFrames in metadata-key order may sort (ms, MongoDB maxTimeMS): no
    # index orders arbitrary keys, so each page sorts the selection; a page that takes longer fails
    # with RESOURCE_EXHAUSTED naming this setting instead of holding the database (0 = no limit).
    view_sort_max_time_ms: int = 10_000
    # Signs every token handed to clients (view cursors, page tokens), each kind
    # with its own key derived from it. No default: the metadata service refuses to start without it
    # (security on).
    view_cursor_secret: Secret = Secret("")

    # Transport security (TLS), applied by framevault.common.tls. Paths of PEM files; empty = unset.
    # A service serves TLS with tls_cert_file + tls_key_file; tls_client_ca_file additionally
    # requires client certificates signed by that CA (mutual TLS).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    # Channels a service opens to the other one: trust anchors (empty = the system's roots) and the
    # certificate it presents to a service that requires mutual TLS. They use TLS when any TLS
    # setting is given or plaintext is not allowed.
    tls_ca_file: str = ""
    tls_client_cert_file: str = ""
    tls_client_key_file: str = ""
    # Plaintext listening and calling only when this says so (a warning is logged each time);
    # without it a service with no certificate refuses to start, naming the settings to set.
    allow_plaintext: bool = False

    # Largest gRPC message either service sends or receives (bytes).
    grpc_max_message_bytes: int = MAX_MESSAGE_BYTES
    # Keepalive pings on idle connections: interval (ms) and how long an answer may take (ms).
    grpc_keepalive_time_ms: int = KEEPALIVE_TIME_MS
    grpc_keepalive_timeout_ms: int = KEEPALIVE_TIMEOUT_MS
    # Bytes a stream's peer may send ahead of what the service has read (HTTP/2 stream window), fixed:
    # with gRPC's own tuning a stream could hold tens of MiB while its handler waits.
    grpc_stream_window_bytes: int = STREAM_WINDOW_BYTES
    # A server sends GOAWAY on a connection this old (ms; gRPC adds ±10 % jitter; 0 = never), so
    # callers balancing over a DNS name resolve it again and replicas added since get calls. Calls
    # in flight, long iterations included, finish on the old connection (no grace limit is set).
    grpc_max_connection_age_ms: int = 600_000
    # How long a stopping service lets calls in flight finish (s).
    grpc_shutdown_grace_seconds: float = 10.0
    # Deadline of calls one service makes to the other (s).
    service_call_timeout_seconds: float = 30.0
    # How often health checking asks the backends whether they answer (s).
    health_poll_seconds: float = 2.0
    # How long start-up waits for backend preparation (indexes ...) before
    # serving anyway, answering UNAVAILABLE until it succeeds (s).
    prepare_at_start_seconds: float = 15.0
    # Cyclic garbage collection thresholds of the three generations (Python's are 700, 10, 10):
    # streaming allocates many short-lived containers that reference counting frees anyway.
    gc_young_threshold: int = 50_000
    gc_middle_threshold: int = 20
    gc_old_threshold: int = 100

    # Authentication and authorization (framevault.auth; docs/SECURITY.md). security_mode "on"
    # requires a credential on every call except health and reflection, and the secrets below: a
    # service refuses to start naming the one missing. "local-dev", only when set explicitly, answers
    # every caller and logs a warning at start.
    security_mode: str = "on"
    # Mixed into every API key hash (metadata service); changing it invalidates every API key.
    api_key_pepper: Secret = Secret("")
    # HMAC key of the short-lived service tokens the two services give each other (both services).
    service_token_secret: Secret = Secret("")
    # Lifetime of the service tokens a service mints for its own calls, in seconds.
    service_token_seconds: int = 300
    # External JWTs (OIDC): the accepted issuer and audience; keys from a JWKS URL or a PEM public
    # key file (neither set = JWTs are refused); accepted algorithms, comma-separated; clock skew
    # allowed on exp and nbf in seconds (at most 300).
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_jwks_url: str = ""
    jwt_public_key_file: str = ""
    jwt_algorithms: str = "RS256,ES256"
    jwt_leeway_seconds: int = 30
    # Seconds a fetched JWKS document is used before its keys are fetched again.
    jwt_jwks_cache_seconds: int = 300
    # Metadata service: when no API key of an admin exists at start, one is issued and its token
    # written to this file (mode 0600); empty = none is issued.
    bootstrap_admin_key_file: str = ""
    # Seconds a verified API key is accepted without its slow hash being computed again; revocation
    # and expiry are still checked on every call.
    api_key_verified_cache_seconds: int = 300

    # Blob service access (framevault.blob.access; docs/SECURITY.md). Seconds the blob service
    # remembers who an API key or JWT is (its admin flag and dataset roles, asked of the metadata
    # service): a revoked key or role still works on the blob service for up to this long.
    blob_caller_cache_seconds: int = 30
    # Seconds the blob service remembers that a principal may read a blob (a dataset it may view
    # references it): a revoked role or a deleted reference still lets it read for up to this long.
    blob_read_grant_cache_seconds: int = 10
    # Entries each of those two caches holds at most (oldest dropped first).
    blob_access_cache_entries: int = 100_000
    # Seconds the metadata service remembers what authorizing a call read (framevault.auth.access_control;
    # docs/SECURITY.md): a key revoked or a role granted or revoked through another replica takes effect
    # on this one within this time (through this one: at once); 0 reads on every call.
    metadata_access_cache_seconds: int = 5
    # Entries each of its caches (API keys, versions' datasets, roles) holds at most (oldest dropped first).
    metadata_access_cache_entries: int = 100_000
    # Seconds GetFrame remembers a version's dataset and lineage (framevault.metadata.frames.known_versions),
    # so reading one frame is one query on the frames alone. Both never change while the version exists;
    # a frame not found is always answered after reading the version again. So this bounds only how long
    # the frames of a version deleted through another replica, while they are being removed (or left by
    # a delete that was interrupted), can still be read here; 0 reads the version on every call.
    frame_read_version_cache_seconds: int = 5
    # Versions it remembers at most (oldest dropped first).
    frame_read_version_cache_entries: int = 10_000

    # Web gateway (framevault.gateway): the HTTP address (host:port) it serves the web app and its
    # JSON API on.
    gateway_listen_address: str = "127.0.0.1:8080"
    # Folder of the built web app (index.html and its assets); empty = the API only.
    gateway_static_dir: str = "clients/web/dist"
    # Key that seals the session cookies (the caller's token inside, AES-GCM); required when
    # security_mode is on. Changing it signs every browser out.
    gateway_session_secret: Secret = Secret("")
    # Lifetime of a browser session cookie (s).
    gateway_session_seconds: int = 12 * 3600
    # PEM certificate and key of the gateway's own HTTPS listener; both empty = plain HTTP
    # (the session cookie is then not marked Secure).
    gateway_tls_cert_file: str = ""
    gateway_tls_key_file: str = ""
    # Lifetime of the download URLs the gateway redirects image, mask and thumbnail requests to (s).
    gateway_download_url_seconds: int = 300
    # Longest edge of the thumbnails the gateway has the blob service make (pixels).
    gateway_thumbnail_edge: int = 256
    # Which preview the blob service made of a source, remembered by the gateway so frame lists hand
    # out its download URL at once: entries at most, and for how long (s). A mapping of content to
    # content, not a grant: every URL is still asked for with the caller's own credential.
    gateway_known_previews_entries: int = 100_000
    gateway_known_previews_seconds: int = 3600

    # Log level (DEBUG, INFO, WARNING, ERROR).
    log_level: str = "INFO"
    # "json" for machines, "console" for people.
    log_format: str = "json"

    def __post_init__(self) -> None:
        # A plain string given for a secret (a test, a caller's override) becomes a Secret.
        for name, kind in _field_types().items():
            value = getattr(self, name)
            if _is_secret(kind) and isinstance(value, str):
                object.__setattr__(self, name, kind(value))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for name, kind in _field_types().items():
            raw = environ.get(env_name(name))
            if raw is not None:
                try:
                    values[name] = _parse(kind, raw)
                except ValueError as exc:
                    raise SystemExit(f"invalid value for {env_name(name)}: {raw!r}") from exc
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_args(cls, argv: Sequence[str] | None = None, environ: dict[str, str] | None = None,
                  *, prog: str | None = None) -> Settings:
        """Settings from command-line flags over the environment over the defaults.
        ``--help`` lists every setting; a malformed flag exits with argparse's usage error."""
        parsed = vars(argument_parser(prog).parse_args(argv))
        flags = {name: value for name, value in parsed.items() if value is not None}
        return cls.from_env(environ, **flags)

    def displayed(self) -> dict[str, Any]:
        """Every setting for the start-up log; secrets masked (connection strings keep all but the password)."""
        return {f.name: _display(getattr(self, f.name)) for f in dataclasses.fields(self)}


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


_FIELD_LINE = re.compile(r"(\w+): [\w\[\], |]+ = ")


@functools.cache
def descriptions() -> dict[str, str]:
    """What each setting does, from the comment it is declared under: the comment
    lines directly above a run of fields serve every field of the run (a blank
    line or the next comment ends the run). Empty when the source is not at hand."""
    try:
        lines = inspect.getsource(Settings).splitlines()[1:]
    except (OSError, TypeError):
        return {}
    described: dict[str, str] = {}
    comment: list[str] = []
    after_field = False
    for line in lines:
        text = line.strip()
        if text.startswith("def ") or text.startswith("@"):
            break
        field = _FIELD_LINE.match(text)
        if text.startswith("#"):
            if after_field:
                comment = []
            comment.append(text.lstrip("#").strip())
        elif field:
            described[field.group(1)] = " ".join(comment)
        else:
            comment = []
        after_field = bool(field)
    return described


def argument_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """One flag per Settings field, generated from the dataclass so no setting is
    missing from the command line; its help is the comment the field is declared
    under. Unset flags stay None and fall back to the environment."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Every setting is also read from FRAMEVAULT_<NAME> in the environment; "
                    "a flag wins over the environment, the environment over the default.",
    )
    kinds = _field_types()
    described = descriptions()
    for f in dataclasses.fields(Settings):
        kind = kinds[f.name]
        meaning = described.get(f.name, "").replace("%", "%%")
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if kind is bool else {}
        parser.add_argument(
            flag_name(f.name), dest=f.name, default=None, type=_flag_parser(kind),
            metavar=_metavar(kind), **extra,
            help=(f"{meaning} " if meaning else "") + f"[default {_display(f.default)!s}; env {env_name(f.name)}"
                 + ("; prefer the env var, a flag shows in the process list" if _is_secret(kind) else "") + "]",
        )
    return parser


def _flag_parser(kind: Any) -> Any:
    def parse(raw: str) -> Any:
        try:
            return _parse(kind, raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"invalid {_metavar(kind).lower()} value: {raw!r}") from exc
    return parse


@functools.cache
def _field_types() -> dict[str, Any]:
    """Each Settings field's type (the annotations are strings until resolved)."""
    hints = get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings)}


def _is_secret(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Secret)


def _metavar(kind: Any) -> str:
    if _is_secret(kind):
        return "SECRET"
    return {bool: "BOOL", int: "INT", float: "FLOAT"}.get(kind, "TEXT")


def _display(value: Any) -> Any:
    # Secrets show only what masked() allows; no other value carries a password.
    return value.masked() if isinstance(value, Secret) else value


def _parse(kind: Any, raw: str) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(raw)
    if kind is int:
        return int(raw)
    if kind is float:
        return float(raw)
    if _is_secret(kind):
        return kind(raw)
    return raw
