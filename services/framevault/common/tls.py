"""Transport security of both services: what they listen with and what they call each other with.

One rule for both directions, from the TLS settings in ``config.py``:

- a service serves TLS when ``tls_cert_file`` and ``tls_key_file`` are set;
  with ``tls_client_ca_file`` it also requires a client certificate signed
  by that CA (mutual TLS);
- the channels it opens to the other service use TLS when the service has
  any TLS setting (it serves TLS, or ``tls_ca_file`` / ``tls_client_cert_file``
  is set), trusting ``tls_ca_file`` (else the system's roots) and presenting
  ``tls_client_cert_file`` when set;
- anything else is plaintext, which only ``allow_plaintext`` permits; the
  service logs a warning each time it listens or calls in plaintext.

Settings that contradict each other, or files that cannot be read, stop the
service at start with a message naming the setting.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import structlog

from framevault.common.config import Settings, env_name

log = structlog.get_logger("framevault.tls")


class TransportSettingsError(SystemExit):
    """The TLS settings cannot work; the message names the setting. A SystemExit: the service does not start."""


def _read_pem(settings: Settings, field: str) -> bytes:
    path = getattr(settings, field)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TransportSettingsError(f"{field} ({env_name(field)}): cannot read {path!r}: {exc.strerror}") from None
    if b"-----BEGIN " not in data:
        raise TransportSettingsError(f"{field} ({env_name(field)}): {path!r} is not a PEM file")
    return data


def _require_pair(settings: Settings, first: str, second: str) -> None:
    for present, missing in ((first, second), (second, first)):
        if getattr(settings, present) and not getattr(settings, missing):
            raise TransportSettingsError(
                f"{missing} ({env_name(missing)}) is required when {present} ({env_name(present)}) is set")


def _refuse_plaintext(what: str) -> TransportSettingsError:
    return TransportSettingsError(
        f"{what} would be plaintext: set tls_cert_file and tls_key_file "
        f"({env_name('tls_cert_file')}, {env_name('tls_key_file')}) to serve TLS, or set allow_plaintext "
        f"({env_name('allow_plaintext')}=true) to accept plaintext explicitly")


def server_credentials(settings: Settings, service: str) -> grpc.ServerCredentials | None:
    """The credentials ``service`` listens with; ``None`` = plaintext (allowed, and logged as a warning)."""
    _require_pair(settings, "tls_cert_file", "tls_key_file")
    if not settings.tls_cert_file:
        if settings.tls_client_ca_file:
            raise TransportSettingsError(
                f"tls_client_ca_file ({env_name('tls_client_ca_file')}) needs tls_cert_file and tls_key_file: "
                "client certificates are checked only over TLS")
        if not settings.allow_plaintext:
            raise _refuse_plaintext(f"the {service} service's port")
        log.warning("plaintext_listening", service=service,
                    reason="allow_plaintext is set and no tls_cert_file: anyone on the network can read "
                           "and alter the calls")
        return None
    client_ca = _read_pem(settings, "tls_client_ca_file") if settings.tls_client_ca_file else None
    return grpc.ssl_server_credentials(
        [(_read_pem(settings, "tls_key_file"), _read_pem(settings, "tls_cert_file"))],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def calls_use_tls(settings: Settings) -> bool:
    """Whether the channels to the other service use TLS (see the module's rule)."""
    return bool(settings.tls_cert_file or settings.tls_ca_file or settings.tls_client_cert_file
                or not settings.allow_plaintext)


def channel_credentials(settings: Settings, target: str) -> grpc.ChannelCredentials | None:
    """The credentials of a channel to the other service at ``target``; ``None`` = plaintext (logged)."""
    _require_pair(settings, "tls_client_cert_file", "tls_client_key_file")
    if not calls_use_tls(settings):
        log.warning("plaintext_calls", target=target,
                    reason="allow_plaintext is set and no TLS setting: calls to the other service are readable "
                           "and alterable on the network")
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read_pem(settings, "tls_ca_file") if settings.tls_ca_file else None,
        private_key=_read_pem(settings, "tls_client_key_file") if settings.tls_client_key_file else None,
        certificate_chain=_read_pem(settings, "tls_client_cert_file") if settings.tls_client_cert_file else None,
    )
