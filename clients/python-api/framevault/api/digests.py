"""Blob digests (sha256 + size), their proto form, and the ``blob:`` URIs frames use for them."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from framevault.v1 import blob_pb2

BLOB_URI_PREFIX = "blob:sha256/"
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# The one spelling of a size: ASCII decimal without leading zeros, so one blob
# has exactly one URI (and frames derived from it one id). ``str.isdigit``
# would also let through other scripts' digits and superscripts.
_SIZE = re.compile(r"0|[1-9][0-9]*", re.ASCII)
# Sizes travel as protobuf int64.
MAX_BLOB_SIZE = 2**63 - 1
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class BlobUriError(ValueError):
    """A string is not a canonical ``blob:`` URI; the message says why."""


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


def file_digest(path: Path) -> BlobDigest:
    with path.open("rb") as f:
        sha = hashlib.file_digest(f, "sha256")
    return BlobDigest(sha.hexdigest(), path.stat().st_size)


# S3's additional-checksum headers of a PUT whose bytes must have a known sha256: a direct upload in
# one PUT signs both into its URL, and a store that checks them refuses bytes of another hash.
S3_CHECKSUM_HEADER = "x-amz-checksum-sha256"
S3_CHECKSUM_ALGORITHM_HEADER = "x-amz-sdk-checksum-algorithm"


def s3_checksum_headers(sha256_hex: str) -> dict[str, str]:
    """The values of those headers for bytes of this sha256."""
    return {S3_CHECKSUM_HEADER: base64.b64encode(bytes.fromhex(sha256_hex)).decode(),
            S3_CHECKSUM_ALGORITHM_HEADER: "SHA256"}


def digest_to_proto(digest: BlobDigest) -> blob_pb2.Digest:
    return blob_pb2.Digest(hash=digest.hash, size_bytes=digest.size)


def digest_from_proto(digest: blob_pb2.Digest) -> BlobDigest:
    return BlobDigest(digest.hash, digest.size_bytes)


def is_blob_uri(uri: str) -> bool:
    return uri.startswith("blob:")


def parse_blob_uri(uri: str, max_size: int = MAX_BLOB_SIZE) -> BlobDigest:
    """Parses ``blob:sha256/{hash}/{size}`` in its canonical spelling (size in
    ASCII decimal without leading zeros, at most ``max_size``).

    Raises:
        BlobUriError: anything else, with the reason.
    """
    rest = uri[len(BLOB_URI_PREFIX):] if uri.startswith(BLOB_URI_PREFIX) else None
    parts = rest.split("/") if rest is not None else []
    if len(parts) != 2 or not SHA256_HEX.fullmatch(parts[0]) or not _SIZE.fullmatch(parts[1]):
        raise BlobUriError(f"blob URI must be {BLOB_URI_PREFIX}<sha256 hex>/<size in decimal, no leading zeros>")
    limit = min(max_size, MAX_BLOB_SIZE)
    # Compared as text first, so a size of any length is never turned into a huge int.
    if len(parts[1]) > len(str(limit)) or int(parts[1]) > limit:
        raise BlobUriError(f"blob size must be at most {limit} bytes")
    return BlobDigest(parts[0], int(parts[1]))
