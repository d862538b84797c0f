"""Caller-supplied blob digests and ``blob:`` URIs, checked with the field named.

The digest type and the one URI parser are ``framevault.api.digests``; this
module turns their errors into ``InvalidArgument`` for the services.
"""

from __future__ import annotations

from framevault.api.digests import BLOB_URI_PREFIX, MAX_BLOB_SIZE, SHA256_HEX, BlobDigest, BlobUriError
from framevault.api.digests import parse_blob_uri as parse_canonical_blob_uri
from framevault.common.errors import InvalidArgument


def checked_digest(hash_hex: str, size: int, field: str) -> BlobDigest:
    """Validates a caller-supplied digest; ``field`` names it in the error."""
    if not SHA256_HEX.fullmatch(hash_hex or ""):
        raise InvalidArgument.field(f"{field}.hash", "must be 64 lowercase hex characters (sha256)")
    if size < 0:
        raise InvalidArgument.field(f"{field}.size_bytes", "must be >= 0")
    return BlobDigest(hash_hex, size)


def parse_blob_uri(uri: str, field: str, max_size: int = MAX_BLOB_SIZE) -> BlobDigest:
    """``framevault.api.digests.parse_blob_uri``, raising InvalidArgument naming ``field``."""
    try:
        return parse_canonical_blob_uri(uri, max_size)
    except BlobUriError as exc:
        raise InvalidArgument.field(field, str(exc)) from None


def stored_blob_digest(uri: str) -> BlobDigest | None:
    """The blob a stored ``blob:`` URI names, or None. Frames written before
    sizes had to be canonical may spell a size with leading zeros or with
    decimal digits of another script (``int`` reads both); the blob they
    name is still referenced, so a garbage collector must see it."""
    try:
        return parse_canonical_blob_uri(uri)
    except BlobUriError:
        pass
    rest = uri[len(BLOB_URI_PREFIX):] if uri.startswith(BLOB_URI_PREFIX) else ""
    hash_hex, _, size = rest.partition("/")
    if not SHA256_HEX.fullmatch(hash_hex) or not size.isdecimal() or len(size) > 32:
        return None
    value = int(size)
    return BlobDigest(hash_hex, value) if value <= MAX_BLOB_SIZE else None
