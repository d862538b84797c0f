"""Every setting of both services, with its typed default, env override and flag.

One place on purpose: a setting is added here or nowhere. Each field reads
``FRAMEVAULT_<FIELD NAME IN UPPER CASE>`` from the environment and
``--<field-name-with-dashes>`` from the command line; a flag wins over the
environment, the environment over the default. Secrets are ``Secret`` values,
which never show their text in ``repr``, ``str`` or logs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_type_hints

ENV_PREFIX = "FRAMEVAULT_"
_MASK = "**********"
# The password of a connection string's user info (``scheme://user:password@host``).
_URI_PASSWORD = re.compile(r"(?<=://)([^:@/]*):[^@/]*@")


class Secret:
    """A setting whose text must not be shown: ``repr`` and ``str`` print a mask,
    and the value is read only through ``get_secret_value()``."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    def __str__(self) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        # Copies and pickles across processes keep the value; only display masks it.
        return (Secret, (self._value,))


@dataclass(frozen=True)
class Settings:
    # Listening addresses.
    metadata_address: str = "127.0.0.1:50051"
    blob_address: str = "127.0.0.1:50052"
    # Prometheus /metrics endpoints (host:port; empty = off).
    metadata_metrics_address: str = "127.0.0.1:9451"
    blob_metrics_address: str = "127.0.0.1:9452"
    # Where the metadata service reaches the blob service.
    blob_target: str = "127.0.0.1:50052"
    # Where the blob service reaches the metadata service (garbage collection).
    metadata_target: str = "127.0.0.1:50051"

    # MongoDB (metadata service).
    mongodb_uri: str = "mongodb://127.0.0.1:27117/?replicaSet=fv"
    mongodb_database: str = "framevault"
    mongodb_timeout_ms: int = 10_000
    mongodb_max_pool_size: int = 100
    # "motor" (the default) or "pymongo" (PyMongo's native async client).
    mongodb_driver: str = "motor"
    # Documents per cursor round trip when diffing and merging versions.
    mongodb_cursor_batch_size: int = 1000

    # Catalog (metadata service).
    # Frame revisions removed per delete_many when purging a dataset or version.
    catalog_purge_batch_frames: int = 5000
    # Candidate frame ids resolved per round trip when diffing versions.
    catalog_diff_batch_frames: int = 500
    # Changes a merge writes per transaction.
    catalog_merge_batch_frames: int = 500

    # S3 / MinIO (blob service).
    s3_endpoint: str = "127.0.0.1:8333"
    s3_access_key: str = "framevault"
    s3_secret_key: Secret = Secret("framevault-secret")
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

    # Blob service limits (advertised by GetCapabilities).
    blob_max_batch_total_size_bytes: int = 4 * 1024 * 1024
    blob_max_batch_blobs: int = 1000
    blob_chunk_size_bytes: int = 1024 * 1024
    blob_max_chunk_size_bytes: int = 4 * 1024 * 1024
    # 312.5 GiB: S3's 10,000 parts of 32 MiB.
    blob_max_size_bytes: int = 10_000 * 32 * 1024 * 1024
    blob_max_preview_edge: int = 2048
    # Longest lifetime of a download URL; a leaked URL works until it expires (SigV4 allows 7 days at most).
    blob_max_download_url_seconds: int = 3600
    blob_gc_default_grace_seconds: int = 24 * 3600
    # Unreferenced blobs deleted (and reported) per garbage collection batch.
    blob_gc_batch_blobs: int = 1000
    # Referenced digests asked of the metadata service per message while collecting (it allows up to 10,000).
    blob_gc_reference_batch: int = 10_000
    # Larger sources get no preview: decoding one holds the whole image in memory.
    blob_max_preview_source_bytes: int = 256 * 1024 * 1024

    # Upload stream.
    upload_window_frames: int = 2000
    upload_batch_frames: int = 500
    upload_max_retries: int = 10
    upload_retry_base_delay_ms: int = 50
    upload_max_inline_bytes: int = 4 * 1024 * 1024
    # Inline blobs of one upload batch stored at once.
    upload_inline_store_concurrency: int = 8
    # Drafts whose idle write leases a process keeps for reuse; leases of a
    # forgotten draft are not lost (their deltas still count), just not reused.
    upload_remembered_lease_drafts: int = 4096

    # Iteration.
    iterate_frames_per_message: int = 256
    iterate_max_frames_per_message: int = 1000
    # Signs every token handed to clients (view cursors, page tokens), each kind
    # with its own key derived from it; set a private value in production.
    view_cursor_secret: Secret = Secret("framevault-view-cursor-default-secret")

    # gRPC transport.
    grpc_max_message_bytes: int = 64 * 1024 * 1024
    grpc_keepalive_time_ms: int = 30_000
    grpc_keepalive_timeout_ms: int = 10_000
    grpc_shutdown_grace_seconds: float = 10.0
    # Deadline of calls one service makes to the other.
    service_call_timeout_seconds: float = 30.0
    # How often health checking asks the backends whether they answer.
    health_poll_seconds: float = 2.0
    # How long start-up waits for backend preparation (indexes ...) before
    # serving anyway, answering UNAVAILABLE until it succeeds.
    prepare_at_start_seconds: float = 15.0
    # Cyclic garbage collection thresholds of the three generations (Python's are 700, 10, 10):
    # streaming allocates many short-lived containers that reference counting frees anyway.
    gc_young_threshold: int = 50_000
    gc_middle_threshold: int = 20
    gc_old_threshold: int = 100

    # Authentication and authorization (framevault.auth; docs/SECURITY.md). security_mode
    # "local-dev" answers every caller as before and logs a warning at start; "on" requires a
    # credential on every call except health and reflection, and the secrets below: a service
    # refuses to start naming the one missing.
    security_mode: str = "local-dev"
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

    log_level: str = "INFO"
    # "json" for machines, "console" for people.
    log_format: str = "json"

    def __post_init__(self) -> None:
        # A plain string given for a secret (a test, a caller's override) becomes a Secret.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("Secret", Secret) and isinstance(value, str):
                object.__setattr__(self, f.name, Secret(value))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        environ = dict(os.environ if environ is None else environ)
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(env_name(f.name))
            if raw is not None:
                try:
                    values[f.name] = _parse(hints[f.name], raw)
                except ValueError as exc:
                    raise SystemExit(f"invalid value for {env_name(f.name)}: {raw!r}") from exc
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
        """Every setting for the start-up log; secrets and passwords in connection strings masked."""
        return {f.name: _display(getattr(self, f.name)) for f in dataclasses.fields(self)}


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def argument_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """One flag per Settings field, generated from the dataclass so no setting is
    missing from the command line. Unset flags stay None and fall back to the environment."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Every setting is also read from FRAMEVAULT_<NAME> in the environment; "
                    "a flag wins over the environment, the environment over the default.",
    )
    hints = get_type_hints(Settings)
    for f in dataclasses.fields(Settings):
        kind = hints[f.name]
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if kind is bool else {}
        parser.add_argument(
            flag_name(f.name), dest=f.name, default=None, type=_flag_parser(kind),
            metavar=_metavar(kind), **extra,
            help=f"default {_display(f.default)!s}; env {env_name(f.name)}"
                 + ("; prefer the env var, a flag shows in the process list" if kind is Secret else ""),
        )
    return parser


def _flag_parser(kind: Any) -> Any:
    def parse(raw: str) -> Any:
        try:
            return _parse(kind, raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"invalid {_metavar(kind).lower()} value: {raw!r}") from exc
    return parse


def _metavar(kind: Any) -> str:
    return {bool: "BOOL", int: "INT", float: "FLOAT", Secret: "SECRET"}.get(kind, "TEXT")


def _display(value: Any) -> Any:
    if isinstance(value, Secret):
        return str(value)
    if isinstance(value, str):
        return _URI_PASSWORD.sub(rf"\1:{_MASK}@", value)
    return value


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
    if kind is Secret:
        return Secret(raw)
    return raw
