"""The object-key layout of the blob bucket, and upload resource names.

Every key the service writes is built here from validated parts (a digest,
a canonical UUID), never from caller text, so no request can reach a key
outside its own blob or upload. Layout (see README.md):

    cas/sha256/{hash[:2]}/{hash}_{size}         a blob, visible only once verified
    uploads/{uuid}/{hash}_{size}.json           state of a resumable upload
    previews/{hash}_{size}/{edge}.{format}.json which preview blob a source has
    preview-sources/{hash}_{size}/{hash}_{size} a source (second digest) a preview blob was made of
    staging/{uuid}/{hash}_{size}                bytes of a direct upload, never read as the blob
    staging/{uuid}/{hash}_{size}.json           state of a direct upload
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from framevault.api.digests import BlobDigest
from framevault.common.errors import InvalidArgument

CAS_PREFIX = "cas/sha256/"
UPLOADS_PREFIX = "uploads/"
PREVIEWS_PREFIX = "previews/"
PREVIEW_SOURCES_PREFIX = "preview-sources/"
STAGING_PREFIX = "staging/"

_CAS_KEY = re.compile(r"cas/sha256/([0-9a-f]{2})/([0-9a-f]{64})_(0|[1-9][0-9]{0,18})")
_UPLOAD_NAME = re.compile(r"uploads/([^/]+)/blobs/([^/]+)/([^/]+)")
_UPLOAD_STATE_KEY = re.compile(r"uploads/([0-9a-f-]{36})/([0-9a-f]{64})_(0|[1-9][0-9]{0,18})\.json")
_STAGING_KEY = re.compile(r"staging/([0-9a-f-]{36})/([0-9a-f]{64})_(0|[1-9][0-9]{0,18})(\.json)?")
_PREVIEW_SOURCE_KEY = re.compile(
    r"preview-sources/([0-9a-f]{64})_(0|[1-9][0-9]{0,18})/([0-9a-f]{64})_(0|[1-9][0-9]{0,18})")
_PREVIEW_INDEX_KEY = re.compile(r"previews/([0-9a-f]{64})_(0|[1-9][0-9]{0,18})/[1-9][0-9]*\.[a-z]+\.json")
_HASH = re.compile(r"[0-9a-f]{64}")
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")


def cas_key(digest: BlobDigest) -> str:
    # Two hex characters of fan-out spread keys over S3 partitions and keep listings of one prefix short.
    return f"{CAS_PREFIX}{digest.hash[:2]}/{digest.hash}_{digest.size}"


def digest_of_cas_key(key: str) -> BlobDigest | None:
    """The digest a CAS key names, or None for any other key."""
    match = _CAS_KEY.fullmatch(key)
    if match is None or match.group(1) != match.group(2)[:2]:
        return None
    return BlobDigest(match.group(2), int(match.group(3)))


@dataclass(frozen=True)
class UploadName:
    """A parsed ``uploads/{uuid}/blobs/{hash}/{size}`` resource name."""

    upload_id: str
    digest: BlobDigest

    @property
    def resource_name(self) -> str:
        return f"uploads/{self.upload_id}/blobs/{self.digest.hash}/{self.digest.size}"

    @property
    def state_key(self) -> str:
        return f"{UPLOADS_PREFIX}{self.upload_id}/{self.digest.hash}_{self.digest.size}.json"

    @property
    def staging_key(self) -> str:
        """Where a direct upload's parts are assembled: never the blob's CAS key."""
        return f"{STAGING_PREFIX}{self.upload_id}/{self.digest.hash}_{self.digest.size}"

    @property
    def staging_state_key(self) -> str:
        return f"{self.staging_key}.json"


def parse_upload_name(name: str, max_size: int, field: str = "resource_name") -> UploadName:
    """Strictly parses an upload resource name; anything else is INVALID_ARGUMENT naming ``field``."""
    match = _UPLOAD_NAME.fullmatch(name or "")
    if match is None:
        raise InvalidArgument.field(field, "must be uploads/{uuid}/blobs/{sha256 hex}/{size_bytes}")
    raw_uuid, hash_hex, raw_size = match.groups()
    try:
        parsed = uuid.UUID(raw_uuid)
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != raw_uuid:
        raise InvalidArgument.field(field, "upload id must be a lowercase canonical UUID (8-4-4-4-12 hex)")
    if not _HASH.fullmatch(hash_hex):
        raise InvalidArgument.field(field, "hash must be 64 lowercase hex characters (sha256)")
    if not _SIZE.fullmatch(raw_size):
        raise InvalidArgument.field(field, "size_bytes must be a decimal integer without leading zeros")
    size = int(raw_size)
    if size > max_size:
        raise InvalidArgument.field(field, f"size_bytes {size} exceeds the maximum blob size {max_size}")
    return UploadName(upload_id=raw_uuid, digest=BlobDigest(hash_hex, size))


def upload_name_of_state_key(key: str) -> UploadName | None:
    match = _UPLOAD_STATE_KEY.fullmatch(key)
    if match is None:
        return None
    return UploadName(upload_id=match.group(1), digest=BlobDigest(match.group(2), int(match.group(3))))


def upload_name_of_staging_key(key: str) -> UploadName | None:
    """The upload a staging object or staging state key belongs to, or None for any other key."""
    match = _STAGING_KEY.fullmatch(key)
    if match is None:
        return None
    return UploadName(upload_id=match.group(1), digest=BlobDigest(match.group(2), int(match.group(3))))


def preview_index_key(source: BlobDigest, max_edge: int, format_name: str) -> str:
    return f"{preview_index_prefix(source)}{max_edge}.{format_name}.json"


def preview_index_prefix(source: BlobDigest) -> str:
    return f"{PREVIEWS_PREFIX}{source.hash}_{source.size}/"


def preview_source_key(preview: BlobDigest, source: BlobDigest) -> str:
    return f"{preview_sources_prefix(preview)}{source.hash}_{source.size}"


def preview_sources_prefix(preview: BlobDigest) -> str:
    return f"{PREVIEW_SOURCES_PREFIX}{preview.hash}_{preview.size}/"


def digests_of_preview_source_key(key: str) -> tuple[BlobDigest, BlobDigest] | None:
    """The preview and the source a ``preview-sources/`` key names, or None for any other key."""
    match = _PREVIEW_SOURCE_KEY.fullmatch(key)
    if match is None:
        return None
    return BlobDigest(match.group(1), int(match.group(2))), BlobDigest(match.group(3), int(match.group(4)))


def source_of_preview_index_key(key: str) -> BlobDigest | None:
    """The source whose preview a ``previews/`` index key locates, or None for any other key."""
    match = _PREVIEW_INDEX_KEY.fullmatch(key)
    return None if match is None else BlobDigest(match.group(1), int(match.group(2)))
