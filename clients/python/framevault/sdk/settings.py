"""Client settings: where the services are, how the SDK secures and authenticates its calls, and tuning.

Each field is read, lowest to highest precedence, from its default, the
config file, the environment and explicit arguments:

- the config file is ``$FRAMEVAULT_CONFIG`` or else
  ``~/.config/framevault/client.toml`` (``$XDG_CONFIG_HOME`` moves it); a TOML
  table of field names (``ca_file = "ca.pem"``), relative paths taken from
  the file's folder. ``FRAMEVAULT_CONFIG=""`` reads no file;
- the environment variable of a field is ``FRAMEVAULT_<FIELD NAME>``
  (``FRAMEVAULT_CA_FILE``, ``FRAMEVAULT_TOKEN``, ``FRAMEVAULT_METADATA_TARGET``);
  the two targets are the variables the services use to reach each other.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from framevault.api.transport import (
    KEEPALIVE_TIME_MS,
    KEEPALIVE_TIMEOUT_MS,
    MAX_MESSAGE_BYTES,
    STREAM_WINDOW_BYTES,
    ChannelTarget,
    parse_target,
)

ENV_PREFIX = "FRAMEVAULT_"
CONFIG_ENV = "FRAMEVAULT_CONFIG"
METADATA_TARGET_ENV = "FRAMEVAULT_METADATA_TARGET"
BLOB_TARGET_ENV = "FRAMEVAULT_BLOB_TARGET"
# Fields holding paths: relative ones in the config file are relative to the file.
PATH_FIELDS = ("ca_file", "client_cert_file", "client_key_file", "token_file")
# What a client with no TLS setting and no explicit ``plaintext`` does: TLS with the system's trust
# anchors, as the services refuse plaintext unless allowed explicitly (``allow_plaintext``) and a
# token travels in plaintext only to this machine.
PLAINTEXT_WITHOUT_TLS_SETTINGS = False


class SettingsError(ValueError):
    """A setting from the config file or the environment has no valid value; the message names it."""


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def default_config_path(environ: Mapping[str, str]) -> Path | None:
    """``$FRAMEVAULT_CONFIG`` (empty = none), else ``client.toml`` in the user's framevault config folder."""
    if CONFIG_ENV in environ:
        return Path(environ[CONFIG_ENV]).expanduser() if environ[CONFIG_ENV] else None
    config_home = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "framevault" / "client.toml"


@dataclass(frozen=True)
class ClientSettings:
    """Everything the SDK needs to reach and use the services (see the module for where values come from)."""

    # Where each service is: ``host:port``, several replicas as ``host:port,host:port`` (IP addresses)
    # or a DNS name of several as ``dns:///name:port``; calls are spread over them round-robin.
    metadata_target: str = "127.0.0.1:50051"
    blob_target: str = "127.0.0.1:50052"

    # Transport security. PEM trust anchors of the services' certificates (empty = the system's roots).
    ca_file: str = ""
    # The client certificate and key presented to services that require mutual TLS.
    client_cert_file: str = ""
    client_key_file: str = ""
    # A framevault API key or a JWT, sent as ``authorization: Bearer <token>`` on every call to both
    # services. ``token_file`` holds one (e.g. the admin key ``make run`` writes); ``token`` wins.
    token: str = field(default="", repr=False)
    token_file: str = ""
    # True: plaintext, whatever else is set. False: TLS. None: TLS when a TLS setting
    # (ca_file, client_cert_file) is given, else PLAINTEXT_WITHOUT_TLS_SETTINGS decides.
    plaintext: bool | None = None

    # Deadline of every unary call.
    call_timeout_seconds: float = 30.0
    # Attempts of an idempotent unary call that failed with UNAVAILABLE.
    unary_attempts: int = 5
    retry_initial_backoff_seconds: float = 0.1
    retry_max_backoff_seconds: float = 5.0
    # Reopenings of a broken upload or iteration stream before giving up.
    stream_reconnect_attempts: int = 5

    max_message_bytes: int = MAX_MESSAGE_BYTES
    keepalive_time_ms: int = KEEPALIVE_TIME_MS
    keepalive_timeout_ms: int = KEEPALIVE_TIMEOUT_MS
    # Bytes a server may send on one stream ahead of what the caller has read (HTTP/2 stream window).
    stream_window_bytes: int = STREAM_WINDOW_BYTES

    # Upload stream: frames sent but not yet answered are capped by the
    # smaller of this and the server's advertised window.
    upload_window_frames: int = 1024
    upload_frames_per_message: int = 256
    # A message is closed early once its frames reach this size.
    upload_message_bytes: int = 4 * 1024 * 1024
    # Frames read from the caller's iterable and prepared (blobs uploaded) at once.
    upload_prepare_batch_frames: int = 256

    # Blobs up to this size go through BatchUpdateBlobs, larger ones through
    # the chunked, resumable WriteBlob stream.
    blob_batch_threshold_bytes: int = 1024 * 1024
    blob_upload_concurrency: int = 4
    # Direct transfers (blobs of at least the service's direct_transfer_min_size_bytes, straight to and
    # from the S3 store): parts or ranges of one blob in flight at once, each on a connection of its
    # own; the size of the ranges a read GETs; whether writes go direct too (False: reads only).
    blob_direct_concurrency: int = 4
    blob_direct_range_bytes: int = 8 * 1024 * 1024
    blob_direct_writes: bool = True

    # Frames per IterateFrames message (0 = server default).
    iterate_frames_per_message: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, config_file: str | Path | None = None,
                 **overrides: Any) -> ClientSettings:
        """Defaults, then the config file, then the environment, then ``overrides`` (``None`` values are ignored).

        ``config_file`` replaces the one ``$FRAMEVAULT_CONFIG`` or the default location names.

        Raises:
            SettingsError: a value in the file or the environment has the wrong type, or the file
                cannot be parsed or names an unknown setting.
        """
        env = os.environ if environ is None else environ
        path = Path(config_file).expanduser() if config_file is not None else default_config_path(env)
        values = read_config_file(path) if path is not None and path.is_file() else {}
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            raw = env.get(env_name(f.name))
            if raw:
                values[f.name] = _parse(f.name, hints[f.name], raw, env_name(f.name))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> ClientSettings:
        """A copy with ``changes`` applied (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def uses_tls(self) -> bool:
        if self.plaintext is not None:
            return not self.plaintext
        return bool(self.ca_file or self.client_cert_file) or not PLAINTEXT_WITHOUT_TLS_SETTINGS

    def channel_target(self, field_name: str) -> ChannelTarget:
        """How a channel dials the target in ``field_name`` (``metadata_target`` or ``blob_target``).

        Raises:
            SettingsError: the target cannot be dialled as written (the message names the field).
        """
        try:
            return parse_target(getattr(self, field_name), tls=self.uses_tls)
        except ValueError as exc:
            raise SettingsError(f"{field_name} ({env_name(field_name)}): {exc}") from None

    def bearer_token(self) -> str:
        """``token``, else the first line of ``token_file``; empty = calls carry no token.

        Raises:
            SettingsError: ``token_file`` cannot be read.
        """
        if self.token or not self.token_file:
            return self.token
        try:
            return Path(self.token_file).expanduser().read_text().strip()
        except OSError as exc:
            raise SettingsError(f"token_file ({env_name('token_file')}): cannot read {self.token_file!r}: "
                                f"{exc.strerror}") from None

    def read_pem(self, field_name: str) -> bytes | None:
        """The bytes of the PEM file a field names; ``None`` when the field is empty.

        Raises:
            SettingsError: the file cannot be read or is not PEM.
        """
        path = getattr(self, field_name)
        if not path:
            return None
        try:
            data = Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise SettingsError(f"{field_name} ({env_name(field_name)}): cannot read {path!r}: "
                                f"{exc.strerror}") from None
        if b"-----BEGIN " not in data:
            raise SettingsError(f"{field_name} ({env_name(field_name)}): {path!r} is not a PEM file")
        return data


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings a client config file holds, type-checked, relative paths made absolute.

    Raises:
        SettingsError: the file is not TOML, names an unknown setting, or a value has the wrong type.
    """
    try:
        table = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"client config file {path}: {exc}") from None
    hints = get_type_hints(ClientSettings)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in hints:
            raise SettingsError(f"client config file {path}: unknown setting {key!r}")
        kind = hints[key]
        accepted = {float: (int, float), int: (int,), bool: (bool,), str: (str,)}.get(kind, (bool,))
        if not isinstance(value, accepted) or (kind is int and isinstance(value, bool)):
            raise SettingsError(f"client config file {path}: {key} = {value!r} is not a {_type_name(kind)}")
        if key in PATH_FIELDS and isinstance(value, str) and value:
            value = str((path.parent / Path(value).expanduser()).resolve())
        values[key] = float(value) if kind is float else value
    return values


def _type_name(kind: Any) -> str:
    return {float: "number", int: "whole number", str: "string"}.get(kind, "boolean")


def _parse(name: str, kind: Any, raw: str, source: str) -> Any:
    try:
        if kind is str:
            return raw
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    except ValueError:
        raise SettingsError(f"{source}: {raw!r} is not a valid {_type_name(kind)} for {name}") from None
