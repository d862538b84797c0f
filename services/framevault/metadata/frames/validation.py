"""Validation and normalisation of frames written by callers.

The rules are those of the frame codec (``framevault_codec``, built from
services/codec): every path that writes frames checks them there, from the
frame's protobuf bytes, and gets the revision document as BSON in the same
pass. A frame is checked field by field and every problem is reported with
its full path under the prefix the caller chooses (``frames[17]`` in an
upload stream, ``frame`` in UpdateFrame), so one round trip shows all
mistakes of a frame.

Normalisation (the stored frame, not the caller's message):
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
from dataclasses import dataclass

import framevault_codec
from framevault_codec import (
    DERIVED_ID_HEX_CHARS,
    MAX_CONTEXT_ID_BYTES,
    MAX_FRAME_BLOB_BYTES,
    MAX_FRAME_ID_BYTES,
    CheckedFrame,
    UploadItems,
    derive_frame_id,
    split_upload_items,
    text_problem,
    upload_results_response,
)

from framevault.api.digests import MAX_BLOB_SIZE, BlobDigest
from framevault.common.config import Settings
from framevault.common.errors import FieldViolation, FramevaultError, InvalidArgument
from framevault.metadata.frame_documents import EncodedRevision
from framevault.v1 import frame_pb2

__all__ = [
    "DERIVED_ID_HEX_CHARS", "MAX_CLIENT_KEY_BYTES", "MAX_CONTEXT_ID_BYTES", "MAX_FRAME_BLOB_BYTES", "MAX_FRAME_ID_BYTES",
    "CheckedFrame", "FrameCheck",
    "FrameLimits", "PreparedFrame", "UploadItems", "check_frame", "derive_frame_id", "frame_id_problem",
    "frame_violations", "prepare_frame", "split_upload_items", "text_problem", "upload_results_response",
]

# Of an upload item, not of a frame.
MAX_CLIENT_KEY_BYTES = 512


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

    @property
    def codec(self) -> framevault_codec.FrameCodec:
        return _codec(self)


@functools.lru_cache(maxsize=16)
def _codec(limits: FrameLimits) -> framevault_codec.FrameCodec:
    return framevault_codec.FrameCodec(max_inline_bytes=limits.max_inline_bytes,
                                       max_blob_bytes=limits.max_blob_bytes, max_meta_bytes=limits.max_meta_bytes)


class PreparedFrame:
    """A valid, normalised frame: its revision document and what must happen
    in the blob service first."""

    __slots__ = ("_checked", "etag", "frame_id", "inline_blobs", "referenced_blobs")

    def __init__(self, checked: CheckedFrame):
        self._checked = checked
        self.frame_id = checked.frame_id
        self.etag = checked.etag
        # ``blob:`` references the caller gave (they must already exist).
        # Most frames name none: the empty case makes no generator.
        referenced = checked.referenced_blobs
        self.referenced_blobs: tuple[BlobDigest, ...] = tuple(
            BlobDigest(hash_hex, size) for hash_hex, size in referenced) if referenced else ()
        # Inline bytes to store, by the digest their URI names; each is
        # forgotten once stored (``blob_refs.store_inline_blobs``).
        inline = checked.inline_blobs
        self.inline_blobs: dict[BlobDigest, bytes] = {
            BlobDigest(hash_hex, size): data for hash_hex, size, data in inline} if inline else {}

    def document(self, *, dataset_id: str, version_id: str, saved_ms: int) -> EncodedRevision:
        """The revision document written by ``version_id`` at ``saved_ms``."""
        return EncodedRevision(self._checked.document(dataset_id, version_id, saved_ms), frame_id=self.frame_id,
                               etag=self.etag, dataset_id=dataset_id, version_id=version_id)

    def too_large_to_store(self, prefix: str, exc: FramevaultError) -> InvalidArgument:
        """The answer when the database refused the frame as too large:
        INVALID_ARGUMENT naming the frame's largest part (``frame.rois``,
        ``frames[3].sources``...)."""
        parts = dict(zip(("sources", "rois", "meta", "blob"), self._checked.part_sizes, strict=True))
        largest = max(parts, key=parts.__getitem__)
        return InvalidArgument.field(f"{prefix}.{largest}", f"the frame is too large to store as one document "
                                                            f"({largest} is its largest part): {exc.message}")


@dataclass
class FrameCheck:
    """The outcome of validating one frame: prepared, or the violations."""

    # Given or derived; empty when neither is possible.
    frame_id: str
    prepared: PreparedFrame | None
    violations: list[FieldViolation]

    def error(self) -> InvalidArgument:
        return InvalidArgument(self.violations)


def frame_violations(checked: CheckedFrame, prefix: str) -> list[FieldViolation]:
    """The violations of a frame the codec checked with paths relative to the
    frame (``split_upload_items``, or ``check`` with an empty prefix), under
    ``prefix``."""
    return [FieldViolation(prefix + field, description) for field, description in checked.violations]


def frame_id_problem(frame_id: str) -> str | None:
    return text_problem(frame_id, MAX_FRAME_ID_BYTES)


def check_frame(frame: bytes | frame_pb2.Frame, prefix: str, limits: FrameLimits) -> FrameCheck:
    """Validates and normalises a frame (its encoded bytes, or the message);
    see the module docstring."""
    data = frame if isinstance(frame, bytes) else frame.SerializeToString()
    try:
        checked = limits.codec.check(data, prefix)
    except ValueError as exc:
        # The bytes came from a decoded message, so this does not happen.
        return FrameCheck("", None, [FieldViolation(prefix, f"does not decode as framevault.v1.Frame: {exc}")])
    if not checked.is_valid:
        return FrameCheck(checked.frame_id, None,
                          [FieldViolation(field, description) for field, description in checked.violations])
    return FrameCheck(checked.frame_id, PreparedFrame(checked), [])


def prepare_frame(frame: bytes | frame_pb2.Frame, prefix: str, limits: FrameLimits) -> PreparedFrame:
    """``check_frame`` for callers that want an exception on an invalid frame."""
    check = check_frame(frame, prefix, limits)
    if check.prepared is None:
        raise check.error()
    return check.prepared
