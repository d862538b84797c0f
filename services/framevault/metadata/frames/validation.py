"""Validation and normalisation of frames written by callers.

Pure functions: nothing here touches the database or the blob service. A
frame is checked field by field and every problem is reported with its full
path under the prefix the caller chooses (``frames[17]`` in an upload stream,
``frame`` in UpdateFrame), so one round trip shows all mistakes of a frame.

Normalisation happens on the message in place, on the same pass:
- output-only fields are cleared (they are never stored from a caller);
- an empty source id becomes ``default``;
- inline bytes are replaced by the ``blob:`` URI of their content, computed
  locally, so the frame id and etag do not depend on when the bytes are
  stored; the bytes travel beside the frame until they are stored;
- an empty frame id is derived from the first source URI
  (``derive_frame_id``) and an empty context id defaults to that URI.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from framevault.api.digests import MAX_BLOB_SIZE, BlobDigest, digest_of, is_blob_uri
from framevault.common.config import Settings
from framevault.common.digests import parse_blob_uri
from framevault.common.errors import FieldErrors, FieldViolation, FramevaultError, InvalidArgument
from framevault.common.metadata_values import validate_metadata
from framevault.metadata.frame_documents import OUTPUT_ONLY_FIELDS, has_output_only_fields
from framevault.v1 import frame_pb2

MAX_FRAME_ID_BYTES = 512
MAX_CONTEXT_ID_BYTES = 4096
MAX_URI_BYTES = 4096
MAX_SOURCE_ID_BYTES = 256
MAX_CONTENT_TYPE_BYTES = 256
MAX_LABEL_BYTES = 256
MAX_ROI_ID_BYTES = 512
MAX_CLIENT_KEY_BYTES = 512
MAX_FRAME_BLOB_BYTES = 64 * 1024
MAX_SOURCES = 256
MAX_MASKS_PER_SOURCE = 64
MAX_LABELS_PER_ROI = 256
DEFAULT_SOURCE_ID = "default"
EXTERNAL_URI_SCHEMES = frozenset({"s3", "https", "http", "file"})
DERIVED_ID_HEX_CHARS = 32

_NUL_OR_SPACE = re.compile(r"[\s\x00]")
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][\w.+-]*/[\w.+-]+(\s*;.*)?")


def derive_frame_id(uri: str) -> str:
    """The id of a frame uploaded without one: a function of its first source URI.

    It is the first 32 hex characters (128 bits) of the SHA-256 of the URI's
    UTF-8 bytes. The same URI always gives the same id, so re-adding a frame
    by URI updates it instead of duplicating it; inline bytes are first turned
    into their ``blob:sha256/{hash}/{size}`` URI, so the same bytes give the
    same id too.
    """
    return hashlib.sha256(uri.encode()).hexdigest()[:DERIVED_ID_HEX_CHARS]


@dataclass(frozen=True)
class FrameLimits:
    """Limits that come from settings rather than from the contract."""

    max_inline_bytes: int
    # The largest blob a ``blob:`` URI may name (the blob service's limit).
    max_blob_bytes: int = MAX_BLOB_SIZE
    # The metadata of one frame, its sources' and ROIs' included, encoded.
    max_meta_bytes: int = Settings.frame_max_meta_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> FrameLimits:
        return cls(max_inline_bytes=settings.upload_max_inline_bytes, max_blob_bytes=settings.blob_max_size_bytes,
                   max_meta_bytes=settings.frame_max_meta_bytes)


@dataclass
class PreparedFrame:
    """A valid, normalised frame and what must happen in the blob service first."""

    frame: frame_pb2.Frame
    # ``blob:`` references the caller gave (they must already exist).
    referenced_blobs: tuple[BlobDigest, ...]
    # Inline bytes to store, by the digest their URI names.
    inline_blobs: dict[BlobDigest, bytes] = field(default_factory=dict)

    @property
    def frame_id(self) -> str:
        return self.frame.id


@dataclass
class FrameCheck:
    """The outcome of validating one frame: prepared, or the violations."""

    # Given or derived; empty when neither is possible.
    frame_id: str
    prepared: PreparedFrame | None
    violations: list[FieldViolation]

    def error(self) -> InvalidArgument:
        return InvalidArgument(self.violations)


def text_problem(value: str, max_bytes: int, *, required: bool = True) -> str | None:
    """Why ``value`` is not an acceptable identifier-like string, or None."""
    if not value:
        return "must not be empty" if required else None
    # A character takes at most 4 bytes in UTF-8: short values need no encoding.
    if len(value) * 4 > max_bytes and len(value.encode()) > max_bytes:
        return f"must be at most {max_bytes} bytes"
    if "\x00" in value:
        return "must not contain NUL"
    return None


def frame_id_problem(frame_id: str) -> str | None:
    return text_problem(frame_id, MAX_FRAME_ID_BYTES)


def check_frame(frame: frame_pb2.Frame, prefix: str, limits: FrameLimits) -> FrameCheck:
    """Validates and normalises ``frame`` in place; see the module docstring."""
    errors = FieldErrors()
    _clear_output_only(frame)
    inline: dict[BlobDigest, bytes] = {}
    referenced: list[BlobDigest] = []
    uris = _UriCollector(errors, referenced, inline, limits)

    # Field paths are built only for a violation: frames are checked in bulk
    # and almost all of them are valid.
    frame_id = frame.id
    if frame_id:
        _check_text(frame_id, MAX_FRAME_ID_BYTES, prefix, ".id", errors)
    context_id = frame.context_id
    if context_id:
        _check_text(context_id, MAX_CONTEXT_ID_BYTES, prefix, ".context_id", errors)
    if frame.timestamp < 0:
        errors.add(f"{prefix}.timestamp", "must be >= 0")

    sources = frame.sources
    source_ids = _check_sources(sources, f"{prefix}.sources", errors, uris)
    for i, roi in enumerate(frame.rois):
        _check_roi(roi, f"{prefix}.rois[{i}]", source_ids, errors)
    if frame.HasField("meta"):
        validate_metadata(frame.meta, f"{prefix}.meta", errors)
    _check_meta_size(frame, prefix, limits.max_meta_bytes, errors)
    if len(frame.blob) > MAX_FRAME_BLOB_BYTES:
        errors.add(f"{prefix}.blob", f"must be at most {MAX_FRAME_BLOB_BYTES} bytes")

    first_uri = sources[0].uri if sources else ""
    if errors:
        first_uri_ok = bool(first_uri) and not any(
            v.field.startswith(f"{prefix}.sources[0].uri")
            or v.field.startswith(f"{prefix}.sources[0].inline_content")
            for v in errors.violations
        )
        if not frame_id and first_uri_ok:
            frame_id = derive_frame_id(first_uri)
        id_ok = not any(v.field == f"{prefix}.id" for v in errors.violations)
        return FrameCheck(frame_id if id_ok else "", None, errors.violations)
    if not frame_id:
        # Without violations the first source has a URI (given or computed).
        frame_id = frame.id = derive_frame_id(first_uri)
    if not context_id:
        # URIs are never longer than context ids may be.
        frame.context_id = first_uri
    blobs = tuple(dict.fromkeys(d for d in referenced if d not in inline)) if referenced else ()
    return FrameCheck(frame_id, PreparedFrame(frame, blobs, inline), [])


def _check_meta_size(frame: frame_pb2.Frame, prefix: str, max_bytes: int, errors: FieldErrors) -> None:
    """Bounds the metadata a frame carries in all, so that a frame stays far
    below the 4 MiB message limit clients have by default; the violation names
    the largest metadata field."""
    parts = [(".meta", frame.meta.ByteSize())] if frame.HasField("meta") else []
    parts += [(f".sources[{i}].meta", source.meta.ByteSize())
              for i, source in enumerate(frame.sources) if source.HasField("meta")]
    parts += [(f".rois[{i}].meta", roi.meta.ByteSize()) for i, roi in enumerate(frame.rois) if roi.HasField("meta")]
    total = sum(size for _, size in parts)
    if total > max_bytes:
        largest = max(parts, key=lambda part: part[1])[0]
        errors.add(prefix + largest, f"the frame's metadata (its meta and that of its sources and ROIs) must be at "
                                     f"most {max_bytes} bytes encoded in all; it has {total}")


def too_large_to_store(frame: frame_pb2.Frame, prefix: str, exc: FramevaultError) -> InvalidArgument:
    """The answer to a frame the database refused as too large: INVALID_ARGUMENT
    naming the frame's largest part (``frame.rois``, ``frames[3].sources``...)."""
    parts = {"sources": sum(s.ByteSize() for s in frame.sources), "rois": sum(r.ByteSize() for r in frame.rois),
             "meta": frame.meta.ByteSize(), "blob": len(frame.blob)}
    largest = max(parts, key=parts.__getitem__)
    return InvalidArgument.field(f"{prefix}.{largest}", f"the frame is too large to store as one document "
                                                        f"({largest} is its largest part): {exc.message}")


def prepare_frame(frame: frame_pb2.Frame, prefix: str, limits: FrameLimits) -> PreparedFrame:
    """``check_frame`` for callers that want an exception on the first invalid frame."""
    check = check_frame(frame, prefix, limits)
    if check.prepared is None:
        raise check.error()
    return check.prepared


def _clear_output_only(frame: frame_pb2.Frame) -> None:
    """Clears the frame's output-only fields (those of ROIs: ``_check_roi``)."""
    # Reading them is cheaper than clearing them, and callers rarely set any.
    if has_output_only_fields(frame):
        for name in OUTPUT_ONLY_FIELDS:
            frame.ClearField(name)  # type: ignore[arg-type]


def _check_text(value: str, max_bytes: int, path: str, suffix: str, errors: FieldErrors, *,
                required: bool = True) -> None:
    """Adds the problem of ``value`` (if any) at ``path + suffix``."""
    problem = text_problem(value, max_bytes, required=required)
    if problem:
        errors.add(path + suffix, problem)


class _UriCollector:
    """Checks URI fields, turns inline bytes into ``blob:`` URIs, collects digests."""

    def __init__(self, errors: FieldErrors, referenced: list[BlobDigest], inline: dict[BlobDigest, bytes],
                 limits: FrameLimits):
        self.errors = errors
        self.referenced = referenced
        self.inline = inline
        self.limits = limits

    def check(self, message: Any, path: str) -> None:
        """``message`` has ``uri`` and ``inline_content`` (Source, Preview, Mask)."""
        data = message.inline_content
        if data:
            if message.uri:
                self.errors.add(f"{path}.uri", "set either uri or inline_content, not both")
                return
            if len(data) > self.limits.max_inline_bytes:
                self.errors.add(f"{path}.inline_content", f"must be at most {self.limits.max_inline_bytes} bytes")
                return
            digest = digest_of(data)
            self.inline[digest] = data
            message.uri = digest.uri
            message.ClearField("inline_content")
            return
        problem, referenced = _checked_uri(message.uri, self.limits.max_blob_bytes)
        if problem:
            self.errors.add(f"{path}.uri", problem)
        elif referenced is not None:
            self.referenced.append(referenced)


def uri_problem(uri: str, max_blob_bytes: int) -> str | None:
    """Why ``uri`` is not an acceptable location of raw data, or None."""
    return _checked_uri(uri, max_blob_bytes)[0]


def _checked_uri(uri: str, max_blob_bytes: int) -> tuple[str | None, BlobDigest | None]:
    """(why ``uri`` is not acceptable or None, the blob it names if it is a ``blob:`` URI)."""
    if not uri:
        return "required (a blob: URI or an s3, https, http or file URI), unless inline_content is set", None
    if len(uri) * 4 > MAX_URI_BYTES and len(uri.encode()) > MAX_URI_BYTES:
        return f"must be at most {MAX_URI_BYTES} bytes", None
    # Printable ASCII holds no NUL and no whitespace but the space: most URIs
    # are decided without the regular expression.
    if not (uri.isascii() and uri.isprintable() and " " not in uri) and _NUL_OR_SPACE.search(uri):
        return "must not contain NUL or whitespace", None
    if is_blob_uri(uri):
        try:
            return None, parse_blob_uri(uri, "uri", max_blob_bytes)
        except InvalidArgument as exc:
            return exc.violations[0].description, None
    scheme, _, rest = uri.partition(":")
    scheme = scheme.lower()
    if scheme not in EXTERNAL_URI_SCHEMES:
        return "scheme must be blob, s3, https, http or file", None
    if not rest.startswith("//"):
        return f"must have the form {scheme}://...", None
    authority, _, path = rest[2:].partition("/")
    if scheme in ("s3", "https", "http") and not authority:
        return f"{scheme} URIs need a host or bucket ({scheme}://<host>/<path>)", None
    if scheme == "file" and not path:
        return "file URIs need a path (file:///<path>)", None
    return None, None


def _check_sources(sources: Sequence[frame_pb2.Source], path: str, errors: FieldErrors,
                   uris: _UriCollector) -> set[str]:
    if not sources:
        errors.add(path, "at least one source is required")
        return set()
    if len(sources) > MAX_SOURCES:
        errors.add(path, f"at most {MAX_SOURCES} sources")
        return set()
    seen: set[str] = set()
    for i, source in enumerate(sources):
        at = f"{path}[{i}]"
        source_id = source.id
        if not source_id:
            source_id = source.id = DEFAULT_SOURCE_ID
        if _id_problem(source_id, seen, at, errors, required=True):
            errors.add(f"{at}.id", f"duplicate source id {source_id!r} (an empty id means {DEFAULT_SOURCE_ID!r})")
        uris.check(source, at)
        _check_content_type(source.content_type, at, ".content_type", errors)
        if source.width < 0:
            errors.add(f"{at}.width", "must be >= 0")
        if source.height < 0:
            errors.add(f"{at}.height", "must be >= 0")
        if source.timestamp < 0:
            errors.add(f"{at}.timestamp", "must be >= 0")
        if source.HasField("meta"):
            validate_metadata(source.meta, f"{at}.meta", errors)
        if source.HasField("preview"):
            preview = source.preview
            uris.check(preview, f"{at}.preview")
            _check_content_type(preview.content_type, at, ".preview.content_type", errors)
            if preview.timestamp < 0:
                errors.add(f"{at}.preview.timestamp", "must be >= 0")
        masks = source.masks
        if masks:
            _check_masks(masks, f"{at}.masks", errors, uris)
    return seen


def _check_masks(masks: Sequence[frame_pb2.Mask], path: str, errors: FieldErrors, uris: _UriCollector) -> None:
    if len(masks) > MAX_MASKS_PER_SOURCE:
        errors.add(path, f"at most {MAX_MASKS_PER_SOURCE} masks per source")
        return
    seen: set[str] = set()
    for i, mask in enumerate(masks):
        at = f"{path}[{i}]"
        if _id_problem(mask.id, seen, at, errors, required=False):
            errors.add(f"{at}.id", f"duplicate mask id {mask.id!r} within the source")
        uris.check(mask, at)
        _check_content_type(mask.content_type, at, ".content_type", errors)
        if mask.timestamp < 0:
            errors.add(f"{at}.timestamp", "must be >= 0")


def _id_problem(value: str, seen: set[str], path: str, errors: FieldErrors, *, required: bool) -> bool:
    """Adds a malformed id's problem at ``path.id``; True when ``value`` was
    already seen (the caller words that violation), and records ``value``."""
    problem = text_problem(value, MAX_SOURCE_ID_BYTES, required=required)
    duplicate = False
    if problem:
        errors.add(f"{path}.id", problem)
    elif value in seen:
        duplicate = True
    seen.add(value)
    return duplicate


def content_type_problem(value: str) -> str | None:
    """Why a non-empty ``value`` is not an acceptable MIME type, or None."""
    # More characters than the byte limit: too long however it encodes (and
    # never cached, so the cache below stays small).
    if len(value) > MAX_CONTENT_TYPE_BYTES:
        return f"must be at most {MAX_CONTENT_TYPE_BYTES} bytes"
    return _short_content_type_problem(value)


@functools.lru_cache(maxsize=1024)
def _short_content_type_problem(value: str) -> str | None:
    # Cached: a dataset uses a handful of content types.
    if len(value.encode()) > MAX_CONTENT_TYPE_BYTES:
        return f"must be at most {MAX_CONTENT_TYPE_BYTES} bytes"
    if not _CONTENT_TYPE.fullmatch(value):
        return "must be a MIME type such as image/jpeg"
    return None


def _check_content_type(value: str, path: str, suffix: str, errors: FieldErrors) -> None:
    if not value:
        return
    problem = content_type_problem(value)
    if problem:
        errors.add(path + suffix, problem)


def _check_roi(roi: frame_pb2.Roi, path: str, source_ids: set[str], errors: FieldErrors) -> None:
    if roi.label_ids:
        # Output only: label ids come from a view's label enumeration.
        del roi.label_ids[:]
    if roi.id:
        _check_text(roi.id, MAX_ROI_ID_BYTES, path, ".id", errors)
    labels = roi.labels
    if len(labels) > MAX_LABELS_PER_ROI:
        errors.add(f"{path}.labels", f"at most {MAX_LABELS_PER_ROI} labels per ROI")
    else:
        for i, label in enumerate(labels):
            problem = text_problem(label, MAX_LABEL_BYTES)
            if problem:
                errors.add(f"{path}.labels[{i}]", problem)
    if roi.HasField("confidence"):
        confidence = roi.confidence
        if not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
            errors.add(f"{path}.confidence", "must be a finite number in [0, 1]")
    kind = roi.WhichOneof("geometry")
    if kind is not None:
        _check_geometry(roi, kind, path, errors)
    sources = roi.sources
    if sources:
        for i, source_id in enumerate(sources):
            if source_id not in source_ids:
                errors.add(f"{path}.sources[{i}]", f"names no source of the frame ({source_id!r})")
    if roi.HasField("meta"):
        validate_metadata(roi.meta, f"{path}.meta", errors)
    if roi.HasField("mask"):
        mask = roi.mask
        if mask.id:
            _check_text(mask.id, MAX_SOURCE_ID_BYTES, path, ".mask.id", errors)
        value = mask.value
        if len(value) != 3 or any(not 0 <= v <= 255 for v in value):
            errors.add(f"{path}.mask.value", "must be three integers in 0..255")


def _check_geometry(roi: frame_pb2.Roi, kind: str, path: str, errors: FieldErrors) -> None:
    if kind == "polygon":
        parts = roi.polygon.parts
        if not parts:
            errors.add(f"{path}.polygon.parts", "a polygon needs at least one part")
        for i, part in enumerate(parts):
            xy = part.xy
            count = len(xy)
            if count < 6 or count % 2:
                errors.add(f"{path}.polygon.parts[{i}].xy",
                           "needs an even count of at least 6 numbers (x1, y1, x2, y2, ...)")
            elif not _all_finite(xy):
                errors.add(f"{path}.polygon.parts[{i}].xy", "numbers must be finite")
        return
    at = f"{path}.{kind}"
    if kind == "box":
        b = roi.box
        _finite_fields(b, ("x", "y", "w", "h"), at, errors)
        _non_negative_fields(b, ("w", "h"), at, errors)
    elif kind == "ellipse":
        e = roi.ellipse
        _finite_fields(e, ("cx", "cy", "rx", "ry", "theta"), at, errors)
        _non_negative_fields(e, ("rx", "ry"), at, errors)
    elif kind == "keypoints":
        xy, visibility = roi.keypoints.xy, roi.keypoints.visibility
        if not xy or len(xy) % 2:
            errors.add(f"{at}.xy", "needs an even, non-zero count of numbers (x1, y1, x2, y2, ...)")
        elif not _all_finite(xy):
            errors.add(f"{at}.xy", "numbers must be finite")
        elif visibility and len(visibility) != len(xy) // 2:
            errors.add(f"{at}.visibility", f"must be empty or have one entry per point ({len(xy) // 2})")
        if any(not 0 <= v <= 2 for v in visibility):
            errors.add(f"{at}.visibility", "entries must be 0 (absent), 1 (occluded) or 2 (visible)")
    elif kind == "keypoints_3d":
        xyz = roi.keypoints_3d.xyz
        if not xyz or len(xyz) % 3:
            errors.add(f"{at}.xyz", "needs a non-zero count of numbers divisible by 3 (x1, y1, z1, ...)")
        elif not _all_finite(xyz):
            errors.add(f"{at}.xyz", "numbers must be finite")
    elif kind == "box_3d":
        names = ("x", "y", "z", "size_x", "size_y", "size_z", "qw", "qx", "qy", "qz")
        _finite_fields(roi.box_3d, names, at, errors)
        _non_negative_fields(roi.box_3d, ("size_x", "size_y", "size_z"), at, errors)


def _all_finite(values: Iterable[float]) -> bool:
    # A NaN or an infinity anywhere makes the sum NaN or infinite, so a finite
    # sum proves every value finite in one C-level pass. A non-finite sum of
    # finite values (an overflow) is told apart by the exact test.
    return math.isfinite(sum(values)) or all(math.isfinite(v) for v in values)


def _finite_fields(message: Any, names: Sequence[str], path: str, errors: FieldErrors) -> None:
    for name in names:
        if not math.isfinite(getattr(message, name)):
            errors.add(f"{path}.{name}", "must be finite")


def _non_negative_fields(message: Any, names: Sequence[str], path: str, errors: FieldErrors) -> None:
    for name in names:
        value = getattr(message, name)
        if math.isfinite(value) and value < 0:
            errors.add(f"{path}.{name}", "must be >= 0")
