"""A folder of images, optionally with a COCO annotation file, as frames.

Each image becomes one frame whose id is its path relative to the folder, so
importing the folder again updates frames instead of duplicating them. Image
sizes come from the COCO file, else from the image header (read with Pillow,
the SDK's ``images`` extra).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from framevault.sdk import SingleFrame
from framevault.sdk.formats.coco import CocoError, CocoIndex, CocoRecordError, load_coco
from framevault.sdk.formats.records import extra_module

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def image_files(folder: Path, recursive: bool) -> list[Path]:
    """Image files under ``folder``, sorted by relative path."""
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in pattern if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def pillow_image() -> ModuleType:
    """``PIL.Image``.

    Raises:
        ImportError: Pillow (the ``images`` extra) is not installed.
    """
    return extra_module("PIL.Image", "images", "framevault reads image sizes with Pillow")


def image_size(path: Path) -> tuple[int | None, int | None]:
    """Width and height from the file header (None when Pillow cannot tell)."""
    image_module = pillow_image()
    try:
        with image_module.open(path) as image:
            return image.size
    except (OSError, image_module.UnidentifiedImageError):
        return None, None


@dataclass
class ImageFolder:
    """The images of a folder and, optionally, the COCO index annotating them."""

    folder: Path
    files: list[Path]
    coco: CocoIndex | None = None
    sequence: bool = False
    fps: float = 30.0
    # COCO records that could not be imported, filled while ``frames()`` is consumed
    # (anew by each iteration).
    errors: list[CocoRecordError] = field(default_factory=list)

    @property
    def unmatched(self) -> list[str]:
        """Relative paths of the images the COCO file has no entry for (imported without annotations)."""
        if self.coco is None:
            return []
        return [relative for relative in map(self.relative, self.files) if self.coco.find(relative) is None]

    def relative(self, path: Path) -> str:
        return path.relative_to(self.folder).as_posix()

    def frames(self, *, strict: bool = False) -> Iterator[SingleFrame]:
        """One frame per image, in file order.

        Stills are each their own context at timestamp 0; with ``sequence``
        every folder is one context (a video as frames) and timestamps follow
        ``fps``. The frame of an image with an unreadable COCO annotation is
        left out and the problem appended to ``errors``, so the other frames
        still import (as with upload results).

        Raises:
            CocoError: with ``strict``, at the first unreadable annotation.
        """
        self.errors.clear()
        position_in_folder: dict[Path, int] = {}
        for path in self.files:
            relative = self.relative(path)
            coco_image = self.coco.find(relative) if self.coco else None
            width, height = (coco_image.width, coco_image.height) if coco_image and coco_image.width else (None, None)
            if width is None:
                width, height = image_size(path)
            metadata: dict[str, object] = {"file_name": relative}
            if coco_image is not None:
                metadata["coco_image_id"] = coco_image.id
            if self.sequence:
                index = position_in_folder.get(path.parent, 0)
                position_in_folder[path.parent] = index + 1
                context = path.parent.relative_to(self.folder).as_posix() or "."
                timestamp = round(index * 1000 / self.fps)
            else:
                context, timestamp = relative, 0
            frame = SingleFrame(source=str(path), width=width, height=height, timestamp=timestamp,
                                context_id=context, metadata=metadata, id=relative)
            if coco_image is not None and self.coco is not None:
                try:
                    frame.annotations.extend(self.coco.annotations_of(coco_image))
                except CocoError as exc:
                    if strict:
                        raise
                    self.errors.append(CocoRecordError(relative, str(exc)))
                    continue
            yield frame


def read_image_folder(
    folder: str | Path, *, coco_file: str | Path | None = None, recursive: bool = True, sequence: bool = False,
    fps: float = 30.0,
) -> ImageFolder:
    """The images under ``folder`` (sub-folders too unless ``recursive`` is
    false) with the boxes, polygons and keypoints of ``coco_file`` as annotations.

    Raises:
        CocoError: the COCO file cannot be read or is not a COCO annotation file.
        ImportError: Pillow is not installed.
        ValueError: ``fps`` is not positive.
    """
    if not fps > 0:
        raise ValueError("fps must be > 0")
    pillow_image()
    root = Path(folder)
    coco = load_coco(Path(coco_file)) if coco_file is not None else None
    return ImageFolder(root, image_files(root, recursive), coco, sequence, fps)
