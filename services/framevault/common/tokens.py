"""Signed opaque tokens handed to clients: iteration cursors and page tokens.

A token is ``base64url(json payload) "." base64url(hmac_sha256(key, payload))``
(the MAC truncated to 16 bytes). The payload carries a format version, the
kind of call that issued it, a binding to the request it belongs to, and the
state the call resumes from. Each purpose (view cursors, page tokens) signs
with its own key derived from one server secret, so a token of one purpose
is never accepted as another's. Clients must treat tokens as opaque; the
format may change between releases.

Signing stops clients from making up positions; it does not replace checking
the decoded state, since a deployment may run with the default secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from framevault.common.errors import InvalidArgument

FORMAT_VERSION = 1
MAX_TOKEN_CHARS = 1024 * 1024
_MAC_BYTES = 16

# Purposes, each with its own derived key.
VIEW_CURSOR = "view-cursor"
PAGE_TOKEN = "page-token"


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def derived_key(secret: str, purpose: str) -> bytes:
    """The key of one purpose: the raw secret signs nothing itself."""
    return hashlib.sha256(f"framevault/{purpose}/v1".encode() + b"\x00" + secret.encode()).digest()


class TokenCodec:
    """Encodes and checks the tokens of one purpose."""

    def __init__(self, secret: str, purpose: str, *, noun: str = "cursor", max_chars: int = MAX_TOKEN_CHARS):
        self._key = derived_key(secret, purpose)
        # How errors call the token ("cursor", "page token").
        self._noun = noun
        self._max_chars = max_chars

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, kind: str, binding: str, state: dict[str, Any]) -> str:
        payload = {"v": FORMAT_VERSION, "k": kind, "b": binding, "s": state}
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
        return f"{_b64encode(body)}.{_b64encode(self._mac(body))}"

    def decode(self, token: str, *, kind: str, binding: str, field: str) -> dict[str, Any]:
        """The state carried by ``token``; INVALID_ARGUMENT on ``field`` when it
        was altered, made by another server key or for another purpose, or
        belongs to another call."""
        noun = self._noun
        if len(token) > self._max_chars:
            raise InvalidArgument.field(field, f"{noun} is too long")
        parts = token.split(".")
        try:
            if len(parts) != 2:
                raise ValueError("not two parts")
            body, mac = _b64decode(parts[0]), _b64decode(parts[1])
        except (ValueError, binascii.Error):
            raise InvalidArgument.field(field, f"malformed {noun}") from None
        if not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidArgument.field(field, f"{noun} was altered or issued by another server")
        try:
            payload = json.loads(body)
        except ValueError:
            raise InvalidArgument.field(field, f"malformed {noun}") from None
        if not isinstance(payload, dict) or payload.get("v") != FORMAT_VERSION:
            raise InvalidArgument.field(field, f"{noun} of an unsupported format; start again without it")
        if payload.get("k") != kind:
            raise InvalidArgument.field(field, f"{noun} was issued by a different call")
        if payload.get("b") != binding:
            raise InvalidArgument.field(field, f"{noun} belongs to a request with other parameters")
        state = payload.get("s")
        if not isinstance(state, dict):
            raise InvalidArgument.field(field, f"malformed {noun}")
        return state
