"""Opaque, tamper-evident resume cursors and page tokens of views.

A token is ``base64url(json payload) "." base64url(hmac_sha256(key, payload))``
with the key derived from the ``view_cursor_secret`` setting. The payload is
the iteration's position (see ``engine.Iteration.snapshot``) plus what binds
it to one request: the kind of call, the view's fingerprint and the shard.
Clients must treat the token as opaque; the format may change between
releases (the payload carries a format version).
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


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


class CursorCodec:
    def __init__(self, secret: str):
        # A derived key: the raw setting is used for nothing else.
        self._key = hashlib.sha256(b"framevault/view-cursor/v1\x00" + secret.encode()).digest()

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, kind: str, binding: str, state: dict[str, Any]) -> str:
        payload = {"v": FORMAT_VERSION, "k": kind, "b": binding, "s": state}
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
        return f"{_b64encode(body)}.{_b64encode(self._mac(body))}"

    def decode(self, token: str, *, kind: str, binding: str, field: str) -> dict[str, Any]:
        """The state carried by ``token``; INVALID_ARGUMENT on ``field`` when it
        was altered, made by another server key, or belongs to another call."""
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidArgument.field(field, "cursor is too long")
        parts = token.split(".")
        try:
            if len(parts) != 2:
                raise ValueError("not two parts")
            body, mac = _b64decode(parts[0]), _b64decode(parts[1])
        except (ValueError, binascii.Error):
            raise InvalidArgument.field(field, "malformed cursor") from None
        if not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidArgument.field(field, "cursor was altered or issued by another server")
        try:
            payload = json.loads(body)
        except ValueError:
            raise InvalidArgument.field(field, "malformed cursor") from None
        if not isinstance(payload, dict) or payload.get("v") != FORMAT_VERSION:
            raise InvalidArgument.field(field, "cursor of an unsupported format; restart the iteration")
        if payload.get("k") != kind:
            raise InvalidArgument.field(field, "cursor was issued by a different call")
        if payload.get("b") != binding:
            raise InvalidArgument.field(field, "cursor belongs to a different view or shard")
        state = payload.get("s")
        if not isinstance(state, dict):
            raise InvalidArgument.field(field, "malformed cursor")
        return state
