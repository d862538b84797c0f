"""Thumbnails of image blobs, stored as blobs themselves.

Pillow decodes and encodes off the event loop. A small index object
(``previews/{source}/{edge}.{format}.json``) remembers which preview blob a
source already has, so asking again costs two small reads; the encoding is
deterministic too, so even a lost index yields the same preview digest.

A preview is readable by whoever may read its source, though no frame
references it: each preview blob made here gets a record
``preview-sources/{preview}/{source}`` per source it was made of, which the
blob service's authorizer (``framevault.blob.access``) lists when a caller
asks for a blob no viewable frame references. Only this module writes those
keys, and only after rendering the preview of a source the caller was allowed
to read, so no caller can make a blob readable through a source it chose.
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from framevault.api.digests import BlobDigest, digest_of
from framevault.blob.keys import (
    cas_key,
    digests_of_preview_source_key,
    preview_index_key,
    preview_source_key,
    preview_sources_prefix,
)
from framevault.blob.storage import BlobStorage, ObjectMissing
from framevault.blob.store import BlobStore, RawDigest, checked_into, not_found
from framevault.common.config import Settings
from framevault.common.errors import FieldErrors, InvalidArgument

SOURCE_FORMATS = frozenset({"JPEG", "PNG", "TIFF"})
_EXIF_ORIENTATION = 0x0112
_ORIENTATIONS_SWAPPING_AXES = frozenset({5, 6, 7, 8})
# Sources listed per preview when its readers are checked: one S3 listing page. Different sources
# give the same preview bytes only when their pixels match, so a real preview has one or a few.
MAX_SOURCES_PER_PREVIEW = 1000


@dataclass(frozen=True)
class PreviewEncoding:
    pillow_format: str
    content_type: str
    save_options: tuple[tuple[str, object], ...]
    keeps_alpha: bool


# Fixed encoder options: the same source and edge always give the same bytes.
ENCODINGS: dict[str, PreviewEncoding] = {
    "jpeg": PreviewEncoding("JPEG", "image/jpeg", (("quality", 85),), keeps_alpha=False),
    "png": PreviewEncoding("PNG", "image/png", (("compress_level", 6),), keeps_alpha=True),
    "webp": PreviewEncoding("WEBP", "image/webp", (("quality", 80), ("method", 4)), keeps_alpha=True),
}


@dataclass(frozen=True)
class Preview:
    digest: BlobDigest
    content_type: str
    width: int
    height: int
    source_width: int
    source_height: int

    def to_json(self) -> bytes:
        return json.dumps({"hash": self.digest.hash, "size": self.digest.size, "content_type": self.content_type,
                           "width": self.width, "height": self.height, "source_width": self.source_width,
                           "source_height": self.source_height,
                           # Written after the preview's source record: an index without it predates them.
                           "source_recorded": True}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Preview | None:
        try:
            doc = json.loads(raw)
            return cls(BlobDigest(str(doc["hash"]), int(doc["size"])), str(doc["content_type"]), int(doc["width"]),
                       int(doc["height"]), int(doc["source_width"]), int(doc["source_height"]))
        except (ValueError, KeyError, TypeError):
            return None


class PreviewMaker:
    def __init__(self, storage: BlobStorage, blobs: BlobStore, settings: Settings):
        self._storage = storage
        self._blobs = blobs
        self._settings = settings

    async def create(self, raw: RawDigest, max_edge: int, format_name: str) -> Preview:
        errors = FieldErrors()
        source = checked_into(errors, raw, "digest")
        limit = self._settings.blob_max_preview_edge
        if not 1 <= max_edge <= limit:
            errors.add("max_edge", f"must be 1..{limit}")
        encoding = ENCODINGS.get(format_name)
        if encoding is None:
            errors.add("format", f"must be one of {', '.join(sorted(ENCODINGS)).upper()}")
        errors.raise_if_any()
        assert source is not None and encoding is not None
        if source.size > self._settings.blob_max_preview_source_bytes:
            raise InvalidArgument.field(
                "digest", f"sources over {self._settings.blob_max_preview_source_bytes} bytes get no preview")

        index_key = preview_index_key(source, max_edge, format_name)
        known = await self._known_preview(source, index_key)
        if known is not None:
            return known
        try:
            data = b"" if source.is_empty else await self._storage.get(cas_key(source))
        except ObjectMissing:
            raise not_found(source, "digest") from None
        preview_bytes, preview = await asyncio.to_thread(_render, data, max_edge, encoding)
        await self._blobs.store(preview.digest, preview_bytes)
        await self._record(source, preview, index_key)
        return preview

    async def _record(self, source: BlobDigest, preview: Preview, index_key: str) -> None:
        # The source record first: an index that says it exists is never left without it.
        await self._storage.put(preview_source_key(preview.digest, source), b"")
        await self._storage.put(index_key, preview.to_json(), content_type="application/json")

    async def _known_preview(self, source: BlobDigest, index_key: str) -> Preview | None:
        try:
            raw = await self._storage.get(index_key)
        except ObjectMissing:
            return None
        known = Preview.from_json(raw)
        if known is None or not await self._blobs.exists(known.digest):
            return None
        if not _source_recorded(raw):
            await self._record(source, known, index_key)
        return known


def _source_recorded(index: bytes) -> bool:
    try:
        return bool(json.loads(index).get("source_recorded") is True)
    except (ValueError, AttributeError):
        return False


async def preview_sources(storage: BlobStorage, preview: BlobDigest) -> list[BlobDigest]:
    """The sources ``preview`` was made of by CreatePreview (none for any other blob): one listing."""
    sources: list[BlobDigest] = []
    async for info in storage.list_objects(preview_sources_prefix(preview)):
        described = digests_of_preview_source_key(info.key)
        if described is not None:
            sources.append(described[1])
        if len(sources) == MAX_SOURCES_PER_PREVIEW:
            break
    return sources


def _render(data: bytes, max_edge: int, encoding: PreviewEncoding) -> tuple[bytes, Preview]:
    """Decodes a JPEG/PNG/TIFF and encodes its thumbnail; INVALID_ARGUMENT for anything else."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.format not in SOURCE_FORMATS:
                raise InvalidArgument.field("digest", f"{opened.format} images get no preview; "
                                                      "sources must be JPEG, PNG or TIFF")
            pixels = opened.width * opened.height
            if Image.MAX_IMAGE_PIXELS is not None and pixels > Image.MAX_IMAGE_PIXELS:
                raise InvalidArgument.field("digest", f"{pixels} pixels exceed the {Image.MAX_IMAGE_PIXELS} "
                                                      "a preview source may have")
            source_width, source_height = opened.size
            if opened.getexif().get(_EXIF_ORIENTATION) in _ORIENTATIONS_SWAPPING_AXES:
                source_width, source_height = source_height, source_width
            # JPEG can decode straight at a reduced scale: much faster for big photos.
            opened.draft("RGB", (max_edge, max_edge))
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidArgument.field("digest", f"not a readable JPEG, PNG or TIFF image ({exc})") from None
    image.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
    image = _convert_for(image, encoding)
    out = io.BytesIO()
    image.save(out, encoding.pillow_format, **dict(encoding.save_options))
    encoded = out.getvalue()
    return encoded, Preview(digest_of(encoded), encoding.content_type, image.width, image.height,
                            source_width, source_height)


def _convert_for(image: Image.Image, encoding: PreviewEncoding) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha and encoding.keeps_alpha:
        return image if image.mode == "RGBA" else image.convert("RGBA")
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # High-bit-depth grey (common in TIFF): scale to 8 bits instead of clipping.
        return image.convert("I").point(lambda v: v / 256).convert("L")
    return image.convert("RGB")
