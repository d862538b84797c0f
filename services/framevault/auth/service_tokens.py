"""Short-lived tokens the two framevault services give each other.

Each service calls the other with a token of its own, never with the token of
the end caller it is serving: an HS256 JWT signed with ``service_token_secret``,
naming the calling service (``iss`` = ``sub`` = ``service:<name>``) and the
service it is meant for (``aud``), valid for ``service_token_seconds``.

A service token says so in its (signed) header, ``typ: fv-service+jwt``. A
receiving service verifies a token with that header only as a service token
(HMAC, the one audience it answers to, the services it accepts) and any other
token only as an end caller's credential, so no end caller's credential, even
a JWT of the external issuer that copies the claims, becomes a service
identity.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection

import grpc
import jwt

from framevault.common.config import Secret
from framevault.common.errors import Unauthenticated

SERVICE_TOKEN_TYPE = "fv-service+jwt"
BLOB_AUDIENCE = "framevault-blob"
METADATA_AUDIENCE = "framevault-metadata"
METADATA_SERVICE = "metadata"
BLOB_SERVICE = "blob"
_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ("iss", "sub", "aud", "iat", "exp")


def service_principal(service: str) -> str:
    """The principal a service's token authenticates as (``Caller.principal``)."""
    return f"service:{service}"


def is_service_token(token: str) -> bool:
    """Whether ``token`` claims to be a service token (its header, not yet verified)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return False
    return header.get("typ") == SERVICE_TOKEN_TYPE


class ServiceTokenIssuer:
    """Mints this service's token for calls to one other service; a token is
    reused until half its lifetime is gone, so calls rarely sign anything."""

    def __init__(self, secret: Secret, *, service: str, audience: str, lifetime_seconds: int,
                 clock: Callable[[], float] = time.time):
        if lifetime_seconds < 2:
            raise ValueError("service tokens must live at least 2 seconds")
        self._key = secret.get_secret_value().encode()
        self._principal = service_principal(service)
        self._audience = audience
        self._lifetime = lifetime_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._renew_at = 0.0

    def token(self) -> str:
        now = self._clock()
        with self._lock:
            if now >= self._renew_at:
                issued = int(now)
                claims = {"iss": self._principal, "sub": self._principal, "aud": self._audience,
                          "iat": issued, "exp": issued + self._lifetime}
                self._token = jwt.encode(claims, self._key, algorithm=_ALGORITHM,
                                         headers={"typ": SERVICE_TOKEN_TYPE})
                self._renew_at = issued + self._lifetime / 2
            return self._token

    def call_credentials(self) -> grpc.CallCredentials:
        """Call credentials of a channel to the other service: every call carries a current token."""
        return grpc.metadata_call_credentials(_BearerPlugin(self), name=self._principal)


class _BearerPlugin(grpc.AuthMetadataPlugin):
    def __init__(self, issuer: ServiceTokenIssuer):
        self._issuer = issuer

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        try:
            token = self._issuer.token()
        except Exception as exc:  # noqa: BLE001 - gRPC fails the call with it
            callback((), exc)
            return
        callback((("authorization", f"Bearer {token}"),), None)


class ServiceTokenVerifier:
    """Checks the service tokens presented to this service: signature (HS256
    only), audience, expiry with bounded leeway, and a calling service it accepts."""

    def __init__(self, secret: Secret, *, audience: str, accepted_services: Collection[str],
                 leeway_seconds: float):
        self._key = secret.get_secret_value().encode()
        self._audience = audience
        self._accepted = frozenset(service_principal(s) for s in accepted_services)
        self._leeway = leeway_seconds

    def verify(self, token: str) -> str:
        """The calling service's principal; ``Unauthenticated`` for any token that is not a valid
        service token for this service."""
        if not is_service_token(token):
            raise Unauthenticated("not a service token")
        try:
            claims = jwt.decode(token, self._key, algorithms=[_ALGORITHM], audience=self._audience,
                                leeway=self._leeway, options={"require": list(_REQUIRED_CLAIMS)})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("service token expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"service token is not meant for {self._audience}") from None
        except jwt.PyJWTError:
            raise Unauthenticated("invalid service token") from None
        principal = claims.get("sub")
        if principal not in self._accepted or claims.get("iss") != principal:
            raise Unauthenticated("service token of a service not accepted here")
        return str(principal)
