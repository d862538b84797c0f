"""The security mode, the settings it requires, and the metadata service's
access control as its app assembles it.

``security_mode`` ``on`` (the default) requires a credential on every call
except health and reflection; a secret without a private value then makes the
service refuse to start, naming the setting. ``local-dev``, only when set
explicitly, keeps every call open and says so loudly at start.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from grpc import aio

from framevault.auth.credentials import ASYMMETRIC_JWT_ALGORITHMS, MAX_JWT_LEEWAY_SECONDS, jwt_algorithms
from framevault.auth.interceptor import AuthInterceptor
from framevault.auth.permissions import ACCESS_SERVICE_NAME
from framevault.common.config import Secret, Settings, env_name, flag_name

log = structlog.get_logger("framevault.auth")

LOCAL_DEV = "local-dev"
ON = "on"
SECURITY_MODES = (LOCAL_DEV, ON)

# Secrets each service needs with security on (the blob service signs no cursors).
_REQUIRED_SECRETS = {
    "metadata": ("view_cursor_secret", "api_key_pepper", "service_token_secret"),
    "blob": ("service_token_secret", "s3_secret_key"),
}
# Values that were built-in defaults once and are published in old configurations: never private.
_PUBLIC_SECRET_VALUES = frozenset({"framevault-secret", "framevault-view-cursor-default-secret"})


def _setting(name: str) -> str:
    return f"{env_name(name)} (flag {flag_name(name)})"


def security_enabled(settings: Settings, service: str) -> bool:
    """Whether calls need credentials; SystemExit naming the setting when
    security is on and a setting it needs is missing or invalid."""
    if settings.security_mode not in SECURITY_MODES:
        raise SystemExit(f"{_setting('security_mode')} must be one of {', '.join(SECURITY_MODES)}, "
                         f"not {settings.security_mode!r}")
    if settings.security_mode == LOCAL_DEV:
        log.warning("security_off", service=service,
                    detail="security_mode is local-dev: every caller may do anything; never expose this service")
        return False
    for name in _REQUIRED_SECRETS[service]:
        value: Secret = getattr(settings, name)
        if not value.get_secret_value() or value.get_secret_value() in _PUBLIC_SECRET_VALUES:
            raise SystemExit(f"security_mode is on but {_setting(name)} is not set to a private value")
    if settings.jwt_jwks_url or settings.jwt_public_key_file:
        for name in ("jwt_issuer", "jwt_audience"):
            if not getattr(settings, name):
                raise SystemExit(f"JWTs are configured but {_setting(name)} is not set")
        algorithms = jwt_algorithms(settings)
        if not algorithms or not set(algorithms) <= ASYMMETRIC_JWT_ALGORITHMS:
            raise SystemExit(f"{_setting('jwt_algorithms')} must name public-key algorithms of "
                             f"{', '.join(sorted(ASYMMETRIC_JWT_ALGORITHMS))}")
    if not 0 <= settings.jwt_leeway_seconds <= MAX_JWT_LEEWAY_SECONDS:
        raise SystemExit(f"{_setting('jwt_leeway_seconds')} must be in 0..{MAX_JWT_LEEWAY_SECONDS}")
    return True


def write_secret_file(path: str, text: str) -> None:
    """Writes ``text`` to a new file readable by the owner only (0600)."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(fd, 0o600)
        file.write(text + "\n")


@dataclass
class MetadataSecurity:
    """What the metadata app adds with security on: the interceptors, the
    AccessService, and the start-up work (indexes, bootstrap key)."""

    interceptors: list[aio.ServerInterceptor] = field(default_factory=list)
    service_names: list[str] = field(default_factory=list)
    register: Callable[[aio.Server], None] = lambda server: None
    prepare: Callable[[], Awaitable[None]] = field(default=lambda: _nothing())


async def _nothing() -> None:
    return None


def metadata_security(settings: Settings, database: object) -> MetadataSecurity:
    if not security_enabled(settings, "metadata"):
        return MetadataSecurity()
    # MongoDB-backed parts load only here: the blob service imports this package without them.
    from framevault.auth.access import Access
    from framevault.auth.mongo_store import MongoAccessStore
    from framevault.auth.servicer import AccessServicer
    from framevault.metadata.db import Database
    from framevault.v1 import access_pb2_grpc

    assert isinstance(database, Database)
    access = Access(settings, MongoAccessStore(database))

    def register(server: aio.Server) -> None:
        access_pb2_grpc.add_AccessServiceServicer_to_server(AccessServicer(access), server)

    async def prepare() -> None:
        await access.store.prepare()
        path = settings.bootstrap_admin_key_file
        if path and await access.bootstrap_admin_key(path, write_secret_file):
            log.warning("bootstrap_admin_key_issued", file=path)

    return MetadataSecurity(
        interceptors=[AuthInterceptor(access.authenticator, access.authorizer)],
        service_names=[ACCESS_SERVICE_NAME],
        register=register,
        prepare=prepare,
    )
