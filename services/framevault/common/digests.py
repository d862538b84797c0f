"""Blob digests (sha256 + size) and the ``blob:`` URIs frames use for them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from framevault.common.errors import InvalidArgument

BLOB_URI_PREFIX = "blob:sha256/"
_HASH = re.compile(r"[0-9a-f]{64}")
# The one spelling of a size: ASCII decimal without leading zeros, so one blob
# has exactly one URI (and frames derived from it one id). ``str.isdigit``
# would also let through other scripts' digits and superscripts.
_SIZE = re.compile(r"0|[1-9][0-9]*", re.ASCII)
# Sizes travel as protobuf int64.
MAX_BLOB_SIZE = 2**63 - 1
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, order=True)
class BlobDigest:
    hash: str
    size: int

    @property
    def uri(self) -> str:
        return f"{BLOB_URI_PREFIX}{self.hash}/{self.size}"

    @property
    def is_empty(self) -> bool:
        return self.size == 0 and self.hash == EMPTY_SHA256

    def __str__(self) -> str:
        return f"sha256/{self.hash}/{self.size}"


def digest_of(data: bytes) -> BlobDigest:
    return BlobDigest(hashlib.sha256(data).hexdigest(), len(data))


def checked_digest(hash_hex: str, size: int, field: str) -> BlobDigest:
    """Validates a caller-supplied digest; ``field`` names it in the error."""
    if not _HASH.fullmatch(hash_hex or ""):
        raise InvalidArgument.field(f"{field}.hash", "must be 64 lowercase hex characters (sha256)")
    if size < 0:
        raise InvalidArgument.field(f"{field}.size_bytes", "must be >= 0")
    return BlobDigest(hash_hex, size)


def is_blob_uri(uri: str) -> bool:
    return uri.startswith("blob:")


def parse_blob_uri(uri: str, field: str, max_size: int = MAX_BLOB_SIZE) -> BlobDigest:
    """Parses ``blob:sha256/{hash}/{size}`` in its canonical spelling (size in
    ASCII decimal without leading zeros, at most ``max_size``); raises
    InvalidArgument naming ``field``."""
    rest = uri[len(BLOB_URI_PREFIX):] if uri.startswith(BLOB_URI_PREFIX) else None
    parts = rest.split("/") if rest is not None else []
    if len(parts) != 2 or not _HASH.fullmatch(parts[0]) or not _SIZE.fullmatch(parts[1]):
        raise InvalidArgument.field(
            field, f"blob URI must be {BLOB_URI_PREFIX}<sha256 hex>/<size in decimal, no leading zeros>")
    limit = min(max_size, MAX_BLOB_SIZE)
    # Compared as text first, so a size of any length is never turned into a huge int.
    if len(parts[1]) > len(str(limit)) or int(parts[1]) > limit:
        raise InvalidArgument.field(field, f"blob size must be at most {limit} bytes")
    return BlobDigest(parts[0], int(parts[1]))


def stored_blob_digest(uri: str) -> BlobDigest | None:
    """The blob a stored ``blob:`` URI names, or None. Frames written before
    sizes had to be canonical may spell a size with leading zeros or with
    decimal digits of another script (``int`` reads both); the blob they
    name is still referenced, so a garbage collector must see it."""
    try:
        return parse_blob_uri(uri, "uri")
    except InvalidArgument:
        pass
    rest = uri[len(BLOB_URI_PREFIX):] if uri.startswith(BLOB_URI_PREFIX) else ""
    hash_hex, _, size = rest.partition("/")
    if not _HASH.fullmatch(hash_hex) or not size.isdecimal() or len(size) > 32:
        return None
    value = int(size)
    return BlobDigest(hash_hex, value) if value <= MAX_BLOB_SIZE else None
