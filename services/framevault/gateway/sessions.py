"""Browser sessions: the caller's own token, sealed into an HttpOnly cookie, and CSRF tokens.

The gateway keeps no session state, so any replica answers any request: the
cookie ``fv_session`` carries the caller's token (API key or JWT) and its
expiry, encrypted and authenticated with AES-GCM under a key derived from
``gateway_session_secret``. A cookie that was altered, sealed with another key
or expired opens to nothing. CSRF protection is the double-submit pattern: the
cookie ``fv_csrf`` (readable by the page's scripts, SameSite=Strict) must be
echoed in the ``X-CSRF-Token`` header of every state-changing request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from framevault.common.config import Settings, env_name

SESSION_COOKIE = "fv_session"
CSRF_COOKIE = "fv_csrf"
CSRF_HEADER = "x-csrf-token"
# Associated data of every sealed cookie: a sealed value of another purpose never opens as a session.
_PURPOSE = b"framevault.gateway.session.v1"
_NONCE_BYTES = 12


class SessionSecretMissing(SystemExit):
    """security_mode is on and no gateway_session_secret is set: the gateway does not start."""


def session_key(settings: Settings) -> bytes:
    """The AES-256 key of the session cookies.

    Without a secret (local-dev mode only) a random key of this process is used:
    sessions then end when it stops and other replicas do not accept them.
    """
    secret = settings.gateway_session_secret.get_secret_value()
    if not secret:
        if settings.security_mode != "local-dev":
            raise SessionSecretMissing(
                f"gateway_session_secret ({env_name('gateway_session_secret')}) is required when "
                f"security_mode is {settings.security_mode!r}: it seals the browser session cookies")
        return os.urandom(32)
    return hashlib.sha256(_PURPOSE + b"\0" + secret.encode()).digest()


@dataclass(frozen=True)
class Session:
    token: str
    expires_at: int


class SessionSealer:
    def __init__(self, key: bytes, lifetime_seconds: int):
        self._aead = AESGCM(key)
        self.lifetime_seconds = lifetime_seconds

    def seal(self, token: str, now: float | None = None) -> str:
        expires_at = int((time.time() if now is None else now) + self.lifetime_seconds)
        payload = json.dumps({"token": token, "exp": expires_at}, separators=(",", ":")).encode()
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, payload, _PURPOSE)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    def open(self, cookie: str, now: float | None = None) -> Session | None:
        """The session a cookie holds; None when it is malformed, altered, foreign or expired."""
        try:
            raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            payload = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _PURPOSE)
            doc = json.loads(payload)
            session = Session(token=str(doc["token"]), expires_at=int(doc["exp"]))
        except (ValueError, InvalidTag, KeyError, TypeError):
            return None
        if session.expires_at <= (time.time() if now is None else now):
            return None
        return session


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(cookie: str | None, header: str | None) -> bool:
    return bool(cookie) and bool(header) and hmac.compare_digest(str(cookie), str(header))
