"""Pages of the list calls: signed page tokens and the size of a page.

A page token is a signed token (``common/tokens.py``, its own derived key)
carrying the sort key after which the next page starts, bound to a digest of
the request fields it must be reused with (AIP-158): it cannot be edited,
minted without the server secret, or replayed against other filters. Each
part of a decoded key is checked against what a stored key can be (an int64,
a datetime that exists, an id, a bounded string), so even a token made with a
known secret never becomes a query the database refuses.

A page ends after ``page_size`` items or before its encoded items would pass
``MAX_PAGE_BYTES``, whichever comes first (it always holds one item), so a
page fits the 4 MiB message limit clients use by default;
``next_page_token`` continues after the last item returned.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol, TypeVar

from google.protobuf.message import Message

from framevault.api.limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from framevault.common.config import Settings
from framevault.common.errors import FieldErrors, InvalidArgument
from framevault.common.tokens import PAGE_TOKEN, TokenCodec

# Room for the longest key (a 4 KiB context id with a frame id) with margin.
MAX_TOKEN_CHARS = 16 * 1024
# The encoded items of one page stay below this, far under the 4 MiB default
# message limit of gRPC clients, leaving room for the token and framing.
MAX_PAGE_BYTES = 2 * 1024 * 1024
# Bytes a repeated message field entry adds to its encoded size: a one-byte
# tag and a length of at most five bytes.
_ENTRY_OVERHEAD_BYTES = 6
_KIND = "page"

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_TEXT_BYTES = 4096
_OBJECT_ID = re.compile(r"[0-9a-f]{24}")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_MS = dt.timedelta(milliseconds=1)
_MIN_TIME_MS = (dt.datetime.min.replace(tzinfo=dt.UTC) - _EPOCH) // _ONE_MS
_MAX_TIME_MS = (dt.datetime.max.replace(tzinfo=dt.UTC) - _EPOCH) // _ONE_MS


def check_page_size(page_size: int, field: str, errors: FieldErrors) -> int:
    """The effective page size of a list call (0 means the default)."""
    if page_size == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        errors.add(field, f"must be 0 (default {DEFAULT_PAGE_SIZE}) or 1..{MAX_PAGE_SIZE}")
        return DEFAULT_PAGE_SIZE
    return page_size


# -- the parts a sort key is made of: each checks a decoded value -------------


def as_int64(value: Any) -> int:
    if type(value) is not int or not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError("not an int64")
    return value


def as_text(value: Any) -> str:
    # Encoding refuses lone surrogates, which JSON can carry but BSON cannot.
    if type(value) is not str or len(value.encode()) > _MAX_TEXT_BYTES:
        raise ValueError("not a key string")
    return value


def as_id(value: Any) -> str:
    if type(value) is not str or not _OBJECT_ID.fullmatch(value):
        raise ValueError("not an id")
    return value


def as_time(value: Any) -> dt.datetime:
    """A time, written as milliseconds since the epoch."""
    if type(value) is not int or not _MIN_TIME_MS <= value <= _MAX_TIME_MS:
        raise ValueError("not a representable time")
    return _EPOCH + value * _ONE_MS


KeyPart = Callable[[Any], Any]


def _dump(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return (value - _EPOCH) // _ONE_MS
    return value


def query_digest(*parts: Any) -> str:
    """Digest of the request fields a token must be reused with."""
    text = json.dumps(list(parts), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class PageTokens:
    def __init__(self, secret: str):
        self._codec = TokenCodec(secret, PAGE_TOKEN, noun="page token", max_chars=MAX_TOKEN_CHARS)

    @classmethod
    def from_settings(cls, settings: Settings) -> PageTokens:
        # One server secret signs every token; each purpose derives its key.
        return cls(settings.view_cursor_secret.get_secret_value())

    def encode(self, after: Sequence[str | int | dt.datetime], query: str) -> str:
        return self._codec.encode(_KIND, query, {"after": [_dump(value) for value in after]})

    def decode(self, token: str, query: str, shape: Sequence[KeyPart], field: str = "page_token") -> list[Any]:
        """The sort key of ``token``, each part checked by ``shape``;
        INVALID_ARGUMENT naming ``field`` if it is malformed, edited, made
        elsewhere, issued for another query or holds an impossible key."""
        after = self._codec.decode(token, kind=_KIND, binding=query, field=field).get("after")
        if not isinstance(after, list) or len(after) != len(shape):
            raise InvalidArgument.field(field, "malformed page token")
        try:
            return [part(value) for part, value in zip(shape, after, strict=True)]
        except ValueError:
            raise InvalidArgument.field(field, "page token holds a position no item can have") from None


Item = TypeVar("Item", bound=Message)


class Cursor(Protocol):
    """Documents a store streams in sort order; closed when no longer needed."""

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    async def close(self) -> None: ...


async def collect_page(
    cursor: Cursor,
    page_size: int,
    to_item: Callable[[dict[str, Any]], Item],
    token_after: Callable[[dict[str, Any]], str],
) -> tuple[list[Item], str]:
    """One page from a database ``cursor`` over documents in sort order
    (limited to ``page_size + 1``) and the token of the next page ("" on the
    last page): ``page_size`` items, or fewer to stay in ``MAX_PAGE_BYTES``.
    The cursor is closed with the page, so nothing beyond it is fetched."""
    items: list[Item] = []
    size = 0
    last: dict[str, Any] | None = None
    try:
        async for doc in cursor:
            if len(items) < page_size:
                item = to_item(doc)
                size += item.ByteSize() + _ENTRY_OVERHEAD_BYTES
                if not items or size <= MAX_PAGE_BYTES:
                    items.append(item)
                    last = doc
                    continue
            assert last is not None
            return items, token_after(last)
        return items, ""
    finally:
        await cursor.close()
