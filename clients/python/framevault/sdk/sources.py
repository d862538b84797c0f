"""Where frame content lives: local files, ``file://`` URIs and ``blob:`` URIs.

Frames and uploads decide with these which sources are local files, and
``local_copy`` gives any source as a local file (downloading blobs once).
"""

from __future__ import annotations

import mimetypes
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from framevault.sdk.blobs import BlobTransfer, parse_digest
from framevault.sdk.runtime import current_client

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def is_local_uri(uri: str) -> bool:
    """True for a local file reference: a plain path or a ``file://`` URI."""
    if not uri:
        return False
    if uri.startswith("file://"):
        return True
    return not _SCHEME.match(uri) or bool(_WINDOWS_DRIVE.match(uri))


def local_path(uri: str) -> str:
    """The filesystem path of a local file reference (see :func:`is_local_uri`)."""
    if uri.startswith("file://"):
        parsed = urlparse(uri)
        return unquote(parsed.path) if not parsed.netloc else f"//{parsed.netloc}{unquote(parsed.path)}"
    return os.path.expanduser(uri)


def guess_content_type(uri: str) -> str:
    """The MIME type implied by a URI's extension, or ``""``."""
    path = urlparse(uri).path if _SCHEME.match(uri) and not _WINDOWS_DRIVE.match(uri) else uri
    return mimetypes.guess_type(path)[0] or ""


def default_cache_dir() -> Path:
    """Where downloaded blobs are kept: ``$XDG_CACHE_HOME/framevault/blobs`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "framevault" / "blobs"


async def local_copy(uri: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """A local file holding the content of ``uri``.

    Local files are returned as they are; ``blob:`` URIs are downloaded once
    into the cache (content-addressed, so a cached file is never stale).

    Raises:
        ValueError: a URI scheme other than ``blob:`` or a local file.
        FramevaultError: the blob could not be read (e.g. NOT_FOUND).
    """
    if is_local_uri(uri):
        return Path(local_path(uri))
    if not uri.startswith("blob:"):
        raise ValueError(f"only blob: URIs and local files can be fetched, not {uri!r}")
    digest = parse_digest(uri)
    target = Path(cache_dir or default_cache_dir()) / "sha256" / digest.hash[:2] / digest.hash
    if target.is_file() and target.stat().st_size == digest.size:
        return target
    return await BlobTransfer(current_client()).read_to_file(digest, target)
