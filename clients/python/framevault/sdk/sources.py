"""Where frame content lives: local files, ``file://`` URIs and ``blob:`` URIs.

Frames and uploads decide with these which sources are local files, and
``local_copy`` gives any source as a local file (downloading blobs once).
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from framevault.sdk.blobs import BlobTransfer, parse_digest
from framevault.sdk.runtime import current_client

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
# The schemes most sources have, told apart without a regular expression.
_REMOTE_PREFIXES = ("s3://", "blob:", "https://", "http://", "gs://")


def is_local_uri(uri: str) -> bool:
    """True for a local file reference: a plain path or a ``file://`` URI."""
    if not uri or uri.startswith(_REMOTE_PREFIXES):
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
    """The MIME type implied by a URI's extension, or ``""``.

    Most URIs of a dataset share a handful of extensions, so the type of a
    plain extension is looked up once; see :func:`_uri_path` for the path.
    """
    plain = _PLAIN_REMOTE_URI.fullmatch(uri)
    if plain is not None:
        known = _TYPE_BY_SUFFIX.get(plain[1])
        if known is not None:
            return known
    path = _uri_path(uri)
    if ":" in path:
        # mimetypes reads what comes before a colon as a scheme (data: URLs among them).
        return mimetypes.guess_type(path)[0] or ""
    suffix = posixpath.splitext(path)[1]
    if not suffix:
        return ""
    known = _TYPE_BY_SUFFIX.get(suffix)
    if known is None:
        known = mimetypes.guess_type(path)[0] or ""
        # Compressed and aliased suffixes (.gz, .tgz) make mimetypes look past the last suffix.
        if not _suffix_looks_further(suffix):
            _TYPE_BY_SUFFIX[suffix] = known
    return known


_TYPE_BY_SUFFIX: dict[str, str] = {}
# Characters after which urlparse's path is not simply what follows the authority: query,
# fragment, parameters, IPv6 brackets, and what urlsplit strips or normalizes.
_URL_SPECIAL = re.compile(r"[?#;\[\]\x00-\x20\x7f-\U0010ffff]")
# A remote URI (a scheme of two or more letters, an authority and a path) without any of those
# characters and without a colon in its path, whose last path segment ends in ``.`` and letters or
# digits after a character that is neither ``.`` nor ``/``: its path's extension is that ending
# (group 1), as _uri_path and posixpath.splitext would find, in one pass over the URI.
_PLAIN_REMOTE_URI = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]+://[^/?#;\[\]\x00-\x20\x7f-\U0010ffff]*"
    r"/[^:?#;\[\]\x00-\x20\x7f-\U0010ffff]*[^/.:?#;\[\]\x00-\x20\x7f-\U0010ffff](\.[A-Za-z0-9]+)")


def _suffix_looks_further(suffix: str) -> bool:
    return (suffix in mimetypes.suffix_map or suffix in mimetypes.encodings_map
            or suffix.lower() in mimetypes.encodings_map)


def _uri_path(uri: str) -> str:
    """The path whose extension names a URI's type: a local path as is, else ``urlparse(uri).path``
    (computed directly for plain URIs, which is what ``urlparse`` gives for them)."""
    if not _SCHEME.match(uri) or _WINDOWS_DRIVE.match(uri):
        return uri
    if _URL_SPECIAL.search(uri):
        return urlparse(uri).path
    rest = uri.split(":", 1)[1]
    if not rest.startswith("//"):
        return rest
    slash = rest.find("/", 2)
    return rest[slash:] if slash >= 0 else ""


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
