"""Credentials: framevault API keys, external JWTs and service tokens.

Every bearer token is one of
- an API key ``fv_<key id>_<secret>``: the key id finds the stored key, the
  secret is checked against its Argon2id hash of HMAC-SHA256(pepper, secret);
  the pepper (a setting) never reaches the database, so a copy of the database
  alone cannot test guesses;
- a service token ``fvs_<JWT>``: HS256 under a key derived from
  ``service_token_secret``, subject ``service:<name>``, audience
  ``framevault-<receiving service>``, valid for minutes;
- any other token is taken as an external JWT (OIDC), checked against the
  configured public key or JWKS document, issuer, audience, expiry and
  not-before with bounded leeway.
Nothing here is hand-written cryptography: argon2-cffi, hmac and PyJWT with
``cryptography`` do the work. Error messages say what is wrong in general
terms and never contain a token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from framevault.auth.expiring_cache import ExpiringCache
from framevault.auth.principals import (
    JWT,
    JWT_PRINCIPAL_PREFIX,
    PRINCIPAL_PATTERN,
    SERVICE_PRINCIPAL_PREFIX,
    Caller,
    service_caller,
)
from framevault.common.config import Settings
from framevault.common.errors import Unauthenticated, Unavailable
from framevault.common.tokens import derived_key

API_KEY_PREFIX = "fv_"
SERVICE_TOKEN_PREFIX = "fvs_"
_API_KEY = re.compile(r"fv_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
# Longest bearer token looked at; anything longer is malformed.
MAX_TOKEN_CHARS = 16 * 1024
SERVICE_TOKEN_ISSUER = "framevault"
_SERVICE_TOKEN_PURPOSE = "service-token"
_SERVICE_TOKEN_ALGORITHM = "HS256"
# Asymmetric algorithms accepted for external JWTs: a symmetric one would make
# every verifier a possible signer, and "none" signs nothing.
ASYMMETRIC_JWT_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                       "ES256", "ES384", "ES512", "EdDSA"})
MAX_JWT_LEEWAY_SECONDS = 300
# Verified API keys remembered per process (key id -> token digest).
_VERIFIED_CACHE_ENTRIES = 10_000
# Verified service tokens remembered per process (each service holds one token at a time).
_VERIFIED_SERVICE_TOKENS = 1_000


def bearer_token(authorization: str | None) -> str:
    """The token of an ``authorization`` header value; UNAUTHENTICATED when
    it is missing or not ``Bearer <token>``."""
    if authorization is None:
        raise Unauthenticated("missing credential: send 'authorization: Bearer <token>' call metadata",
                              reason="CREDENTIAL_MISSING")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS or " " in token:
        raise Unauthenticated("malformed credential: expected 'authorization: Bearer <token>'",
                              reason="CREDENTIAL_MALFORMED")
    return token


# -- API keys -------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedApiKey:
    key_id: str
    token: str
    secret_hash: str


def _peppered(secret: str, pepper: str) -> bytes:
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest().encode()


class ApiKeyHasher:
    """Issues and verifies API key secrets (Argon2id with argon2-cffi's
    defaults, over the peppered secret)."""

    def __init__(self, pepper: str, verified_cache_seconds: float):
        self._pepper = pepper
        self._hasher = PasswordHasher()
        # Key id -> fast digest of the secret that last matched its hash.
        self._verified: ExpiringCache[str, bytes] = ExpiringCache(verified_cache_seconds, _VERIFIED_CACHE_ENTRIES)

    def issue(self) -> IssuedApiKey:
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        return IssuedApiKey(key_id, f"{API_KEY_PREFIX}{key_id}_{secret}",
                            self._hasher.hash(_peppered(secret, self._pepper)))

    @staticmethod
    def parse(token: str) -> tuple[str, str]:
        """(key id, secret) of an API key token; UNAUTHENTICATED when malformed."""
        match = _API_KEY.fullmatch(token)
        if match is None:
            raise Unauthenticated("malformed API key", reason="CREDENTIAL_MALFORMED")
        return match.group(1), match.group(2)

    async def verify(self, key_id: str, secret: str, secret_hash: str) -> bool:
        """Whether ``secret`` matches the stored hash. The slow hash runs in a
        thread; a match is remembered for a while by a fast digest of the
        secret, so a client's every call does not pay for it."""
        digest = hashlib.sha256(secret.encode()).digest()
        remembered = self._verified.get(key_id)
        if remembered is not None and hmac.compare_digest(remembered, digest):
            return True
        try:
            await asyncio.to_thread(self._hasher.verify, secret_hash, _peppered(secret, self._pepper))
        except (VerificationError, InvalidHashError):
            return False
        self._verified.put(key_id, digest)
        return True

    def forget(self, key_id: str) -> None:
        self._verified.forget(key_id)


# -- service tokens ---------------------------------------------------------------


def _service_key(settings: Settings) -> bytes:
    return derived_key(settings.service_token_secret.get_secret_value(), _SERVICE_TOKEN_PURPOSE)


def _audience(service: str) -> str:
    return f"framevault-{service}"


class ServiceTokenMinter:
    """The token a service sends on its calls to the other service; minted
    again when less than a third of its lifetime is left."""

    def __init__(self, settings: Settings, service: str, audience_service: str):
        self._key = _service_key(settings)
        self._service = service
        self._audience = _audience(audience_service)
        self._lifetime = settings.service_token_seconds
        self._token = ""
        self._renew_at = 0.0

    def token(self) -> str:
        now = time.time()
        if now >= self._renew_at:
            claims = {"iss": SERVICE_TOKEN_ISSUER, "sub": SERVICE_PRINCIPAL_PREFIX + self._service,
                      "aud": self._audience, "iat": int(now), "exp": int(now) + self._lifetime}
            self._token = SERVICE_TOKEN_PREFIX + jwt.encode(claims, self._key, algorithm=_SERVICE_TOKEN_ALGORITHM)
            self._renew_at = now + self._lifetime * 2 / 3
        return self._token

    def call_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token()}"),)


class ServiceTokenVerifier:
    """Checks service tokens addressed to this service.

    A service sends the same token on every call for most of its lifetime
    (``ServiceTokenMinter``), so a token that verified is remembered by its
    digest until its ``exp``: later calls with it cost a hash instead of a
    signature check and claim parsing. Its expiry is still checked on every
    call (without the leeway; a call past it verifies the token again, which
    applies the leeway). Refusals are never remembered."""

    def __init__(self, settings: Settings, service: str, clock: Callable[[], float] = time.time):
        self._key = _service_key(settings)
        self._audience = _audience(service)
        self._leeway = settings.jwt_leeway_seconds
        self._clock = clock
        # Digest of a verified token -> (its exp, the caller it names).
        self._verified: ExpiringCache[bytes, tuple[float, Caller]] = ExpiringCache(
            settings.service_token_seconds, _VERIFIED_SERVICE_TOKENS, clock)

    def verify(self, token: str) -> Caller:
        digest = hashlib.sha256(token.encode()).digest()
        remembered = self._verified.get(digest)
        if remembered is not None and self._clock() < remembered[0]:
            return remembered[1]
        claims = _decode(token.removeprefix(SERVICE_TOKEN_PREFIX), self._key, [_SERVICE_TOKEN_ALGORITHM],
                         audience=self._audience, issuer=SERVICE_TOKEN_ISSUER, leeway=self._leeway,
                         what="service token")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject.startswith(SERVICE_PRINCIPAL_PREFIX):
            raise Unauthenticated("service token names no service", reason="CREDENTIAL_INVALID")
        caller = service_caller(subject.removeprefix(SERVICE_PRINCIPAL_PREFIX))
        expires = claims["exp"]
        if isinstance(expires, int | float):
            self._verified.put(digest, (float(expires), caller))
        return caller


# -- external JWTs ------------------------------------------------------------------


def jwt_algorithms(settings: Settings) -> list[str]:
    return [name.strip() for name in settings.jwt_algorithms.split(",") if name.strip()]


class JwtVerifier:
    """Checks JWTs of the configured issuer: signature (a PEM public key, or
    the JWKS document's key named by the token's ``kid``), ``iss``, ``aud``,
    ``exp`` and ``nbf`` (with ``jwt_leeway_seconds`` of clock skew), and a
    ``sub``. The principal is ``jwt:<sub>``."""

    def __init__(self, settings: Settings):
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._algorithms = jwt_algorithms(settings)
        self._leeway = settings.jwt_leeway_seconds
        self._public_key: str | None = None
        self._jwks: jwt.PyJWKClient | None = None
        if settings.jwt_public_key_file:
            with open(settings.jwt_public_key_file, encoding="utf-8") as file:
                self._public_key = file.read()
        elif settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True,
                                         lifespan=settings.jwt_jwks_cache_seconds,
                                         timeout=int(max(1, settings.service_call_timeout_seconds)))

    @property
    def enabled(self) -> bool:
        return self._public_key is not None or self._jwks is not None

    async def verify(self, token: str) -> Caller:
        if not self.enabled:
            raise Unauthenticated("JWTs are not accepted by this deployment; use an API key",
                                  reason="CREDENTIAL_INVALID")
        key: Any = self._public_key
        if self._jwks is not None:
            key = await self._jwks_key(self._jwks, token)
        claims = _decode(token, key, self._algorithms, audience=self._audience, issuer=self._issuer,
                         leeway=self._leeway, what="token")
        principal = JWT_PRINCIPAL_PREFIX + str(claims["sub"])
        if not isinstance(claims["sub"], str) or not PRINCIPAL_PATTERN.fullmatch(principal):
            # Roles could never be granted to it.
            raise Unauthenticated("token subject must be 1..252 printable ASCII characters without spaces",
                                  reason="CREDENTIAL_INVALID")
        return Caller(principal=principal, credential_kind=JWT)

    @staticmethod
    async def _jwks_key(client: jwt.PyJWKClient, token: str) -> Any:
        try:
            # Fetching the document is blocking I/O: off the event loop.
            signing_key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError:
            raise Unavailable("the JWKS document of the token issuer cannot be fetched", retry_after_ms=1000) \
                from None
        except jwt.DecodeError:
            raise Unauthenticated("malformed or unverifiable token", reason="CREDENTIAL_MALFORMED") from None
        except jwt.PyJWKClientError:
            raise Unauthenticated("token is signed by no key of the issuer's JWKS document",
                                  reason="CREDENTIAL_INVALID") from None
        return signing_key.key


def _decode(token: str, key: Any, algorithms: list[str], *, audience: str, issuer: str, leeway: int,
            what: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=algorithms, audience=audience, issuer=issuer, leeway=leeway,
            options={"require": ["exp", "iss", "aud", "sub"], "verify_signature": True},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated(f"{what} has expired", reason="CREDENTIAL_EXPIRED") from None
    except jwt.ImmatureSignatureError:
        raise Unauthenticated(f"{what} is not valid yet", reason="CREDENTIAL_NOT_YET_VALID") from None
    except jwt.InvalidAudienceError:
        raise Unauthenticated(f"{what} is meant for another audience", reason="CREDENTIAL_WRONG_AUDIENCE") \
            from None
    except jwt.InvalidIssuerError:
        raise Unauthenticated(f"{what} is from another issuer", reason="CREDENTIAL_WRONG_ISSUER") from None
    except jwt.InvalidSignatureError:
        raise Unauthenticated(f"{what} signature does not verify", reason="CREDENTIAL_INVALID") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthenticated(f"{what} lacks the {exc.claim!r} claim", reason="CREDENTIAL_INVALID") from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise Unauthenticated(f"malformed or unverifiable {what}", reason="CREDENTIAL_MALFORMED") from None
    return claims
