"""Opaque page tokens: the last sort key of a page, bound to its query.

A token is base64url of a small JSON document carrying the sort key after
which the next page starts, a digest of the query it belongs to (so a token
cannot be replayed against other filters, AIP-158) and a checksum, so an
edited token is refused rather than silently resuming somewhere else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from framevault.common.errors import InvalidArgument

_VERSION = 1
MAX_TOKEN_CHARS = 4096


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def query_digest(*parts: Any) -> str:
    """Digest of the request fields a token must be reused with."""
    return _digest(list(parts))


def encode(after: Sequence[str | int], query: str) -> str:
    body = {"v": _VERSION, "a": list(after), "q": query}
    body["c"] = _digest(body)
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(token: str, query: str, shape: Sequence[type], field: str = "page_token") -> list[Any]:
    """The sort key of ``token``; INVALID_ARGUMENT naming ``field`` if it is
    malformed, edited, or was issued for another query."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidArgument.field(field, "malformed page token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument.field(field, "malformed page token") from exc
    if not isinstance(body, dict) or set(body) != {"v", "a", "q", "c"}:
        raise InvalidArgument.field(field, "malformed page token")
    checksum = body.pop("c")
    if body["v"] != _VERSION or checksum != _digest(body):
        raise InvalidArgument.field(field, "malformed page token")
    if body["q"] != query:
        raise InvalidArgument.field(field, "page token belongs to a request with other parameters")
    after = body["a"]
    if (
        not isinstance(after, list)
        or len(after) != len(shape)
        or any(type(value) is not kind for value, kind in zip(after, shape, strict=True))
    ):
        raise InvalidArgument.field(field, "malformed page token")
    return after
