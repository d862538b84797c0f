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

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from framevault.common.digests import BlobDigest, digest_of, is_blob_uri, parse_blob_uri
from framevault.common.errors import FieldErrors, FieldViolation, InvalidArgument
from framevault.common.metadata_values import validate_metadata
from framevault.metadata.frame_documents import OUTPUT_ONLY_FIELDS
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
    if len(value.encode()) > max_bytes:
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

    if frame.id:
        _check_text(frame.id, MAX_FRAME_ID_BYTES, f"{prefix}.id", errors)
    if frame.context_id:
        _check_text(frame.context_id, MAX_CONTEXT_ID_BYTES, f"{prefix}.context_id", errors)
    if frame.timestamp < 0:
        errors.add(f"{prefix}.timestamp", "must be >= 0")

    source_ids = _check_sources(frame.sources, f"{prefix}.sources", errors, uris)
    for i, roi in enumerate(frame.rois):
        _check_roi(roi, f"{prefix}.rois[{i}]", source_ids, errors)
    validate_metadata(frame.meta, f"{prefix}.meta", errors)
    if len(frame.blob) > MAX_FRAME_BLOB_BYTES:
        errors.add(f"{prefix}.blob", f"must be at most {MAX_FRAME_BLOB_BYTES} bytes")

    first_uri = frame.sources[0].uri if frame.sources else ""
    first_uri_ok = bool(first_uri) and not any(
        v.field.startswith(f"{prefix}.sources[0].uri") or v.field.startswith(f"{prefix}.sources[0].inline_content")
        for v in errors.violations
    )
    frame_id = frame.id
    if not frame_id and first_uri_ok:
        frame_id = derive_frame_id(first_uri)
    id_ok = not any(v.field == f"{prefix}.id" for v in errors.violations)
    if errors:
        return FrameCheck(frame_id if id_ok else "", None, errors.violations)
    frame.id = frame_id
    if not frame.context_id:
        # URIs are never longer than context ids may be.
        frame.context_id = first_uri
    prepared = PreparedFrame(frame, tuple(dict.fromkeys(d for d in referenced if d not in inline)), inline)
    return FrameCheck(frame_id, prepared, [])


def prepare_frame(frame: frame_pb2.Frame, prefix: str, limits: FrameLimits) -> PreparedFrame:
    """``check_frame`` for callers that want an exception on the first invalid frame."""
    check = check_frame(frame, prefix, limits)
    if check.prepared is None:
        raise check.error()
    return check.prepared


def _clear_output_only(frame: frame_pb2.Frame) -> None:
    for name in OUTPUT_ONLY_FIELDS:
        frame.ClearField(name)  # type: ignore[arg-type]
    for roi in frame.rois:
        del roi.label_ids[:]


def _check_text(value: str, max_bytes: int, path: str, errors: FieldErrors, *, required: bool = True) -> None:
    problem = text_problem(value, max_bytes, required=required)
    if problem:
        errors.add(path, problem)


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
        data = bytes(message.inline_content)
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
        uri = message.uri
        problem = uri_problem(uri)
        if problem:
            self.errors.add(f"{path}.uri", problem)
            return
        if is_blob_uri(uri):
            self.referenced.append(parse_blob_uri(uri, f"{path}.uri"))


def uri_problem(uri: str) -> str | None:
    """Why ``uri`` is not an acceptable location of raw data, or None."""
    if not uri:
        return "required (a blob: URI or an s3, https, http or file URI), unless inline_content is set"
    if len(uri.encode()) > MAX_URI_BYTES:
        return f"must be at most {MAX_URI_BYTES} bytes"
    if _NUL_OR_SPACE.search(uri):
        return "must not contain NUL or whitespace"
    if is_blob_uri(uri):
        try:
            parse_blob_uri(uri, "uri")
        except InvalidArgument as exc:
            return exc.violations[0].description
        return None
    scheme, _, rest = uri.partition(":")
    scheme = scheme.lower()
    if scheme not in EXTERNAL_URI_SCHEMES:
        return "scheme must be blob, s3, https, http or file"
    if not rest.startswith("//"):
        return f"must have the form {scheme}://..."
    authority, _, path = rest[2:].partition("/")
    if scheme in ("s3", "https", "http") and not authority:
        return f"{scheme} URIs need a host or bucket ({scheme}://<host>/<path>)"
    if scheme == "file" and not path:
        return "file URIs need a path (file:///<path>)"
    return None


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
        if not source.id:
            source.id = DEFAULT_SOURCE_ID
        _check_unique_id(source.id, seen, f"{at}.id", errors,
                         f"duplicate source id {source.id!r} (an empty id means {DEFAULT_SOURCE_ID!r})")
        uris.check(source, at)
        _check_content_type(source.content_type, f"{at}.content_type", errors)
        if source.width < 0:
            errors.add(f"{at}.width", "must be >= 0")
        if source.height < 0:
            errors.add(f"{at}.height", "must be >= 0")
        if source.timestamp < 0:
            errors.add(f"{at}.timestamp", "must be >= 0")
        validate_metadata(source.meta, f"{at}.meta", errors)
        if source.HasField("preview"):
            uris.check(source.preview, f"{at}.preview")
            _check_content_type(source.preview.content_type, f"{at}.preview.content_type", errors)
            if source.preview.timestamp < 0:
                errors.add(f"{at}.preview.timestamp", "must be >= 0")
        _check_masks(source.masks, f"{at}.masks", errors, uris)
    return seen


def _check_masks(masks: Sequence[frame_pb2.Mask], path: str, errors: FieldErrors, uris: _UriCollector) -> None:
    if len(masks) > MAX_MASKS_PER_SOURCE:
        errors.add(path, f"at most {MAX_MASKS_PER_SOURCE} masks per source")
        return
    seen: set[str] = set()
    for i, mask in enumerate(masks):
        at = f"{path}[{i}]"
        _check_unique_id(mask.id, seen, f"{at}.id", errors, f"duplicate mask id {mask.id!r} within the source",
                         required=False)
        uris.check(mask, at)
        _check_content_type(mask.content_type, f"{at}.content_type", errors)
        if mask.timestamp < 0:
            errors.add(f"{at}.timestamp", "must be >= 0")


def _check_unique_id(value: str, seen: set[str], path: str, errors: FieldErrors, duplicate: str, *,
                     required: bool = True) -> None:
    problem = text_problem(value, MAX_SOURCE_ID_BYTES, required=required)
    if problem:
        errors.add(path, problem)
    elif value in seen:
        errors.add(path, duplicate)
    seen.add(value)


def _check_content_type(value: str, path: str, errors: FieldErrors) -> None:
    if not value:
        return
    if len(value.encode()) > MAX_CONTENT_TYPE_BYTES:
        errors.add(path, f"must be at most {MAX_CONTENT_TYPE_BYTES} bytes")
    elif not _CONTENT_TYPE.fullmatch(value):
        errors.add(path, "must be a MIME type such as image/jpeg")


def _check_roi(roi: frame_pb2.Roi, path: str, source_ids: set[str], errors: FieldErrors) -> None:
    _check_text(roi.id, MAX_ROI_ID_BYTES, f"{path}.id", errors, required=False)
    if len(roi.labels) > MAX_LABELS_PER_ROI:
        errors.add(f"{path}.labels", f"at most {MAX_LABELS_PER_ROI} labels per ROI")
    else:
        for i, label in enumerate(roi.labels):
            _check_text(label, MAX_LABEL_BYTES, f"{path}.labels[{i}]", errors)
    if roi.HasField("confidence") and not (math.isfinite(roi.confidence) and 0.0 <= roi.confidence <= 1.0):
        errors.add(f"{path}.confidence", "must be a finite number in [0, 1]")
    _check_geometry(roi, path, errors)
    for i, source_id in enumerate(roi.sources):
        if source_id not in source_ids:
            errors.add(f"{path}.sources[{i}]", f"names no source of the frame ({source_id!r})")
    validate_metadata(roi.meta, f"{path}.meta", errors)
    if roi.HasField("mask"):
        _check_text(roi.mask.id, MAX_SOURCE_ID_BYTES, f"{path}.mask.id", errors, required=False)
        value = roi.mask.value
        if len(value) != 3 or any(not 0 <= v <= 255 for v in value):
            errors.add(f"{path}.mask.value", "must be three integers in 0..255")


def _check_geometry(roi: frame_pb2.Roi, path: str, errors: FieldErrors) -> None:
    kind = roi.WhichOneof("geometry")
    if kind is None:
        return
    at = f"{path}.{kind}"
    if kind == "polygon":
        if not roi.polygon.parts:
            errors.add(f"{at}.parts", "a polygon needs at least one part")
        for i, part in enumerate(roi.polygon.parts):
            xy = part.xy
            if len(xy) < 6 or len(xy) % 2:
                errors.add(f"{at}.parts[{i}].xy", "needs an even count of at least 6 numbers (x1, y1, x2, y2, ...)")
            elif not _all_finite(xy):
                errors.add(f"{at}.parts[{i}].xy", "numbers must be finite")
    elif kind == "box":
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
    return all(math.isfinite(v) for v in values)


def _finite_fields(message: Any, names: Sequence[str], path: str, errors: FieldErrors) -> None:
    for name in names:
        if not math.isfinite(getattr(message, name)):
            errors.add(f"{path}.{name}", "must be finite")


def _non_negative_fields(message: Any, names: Sequence[str], path: str, errors: FieldErrors) -> None:
    for name in names:
        value = getattr(message, name)
        if math.isfinite(value) and value < 0:
            errors.add(f"{path}.{name}", "must be >= 0")
