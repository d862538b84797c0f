"""A folder of images, optionally with a COCO annotation file, as frames.

Each image becomes one frame whose id is its path relative to the folder, so
importing the folder again updates frames instead of duplicating them. Image
sizes come from the COCO file, else from the image header (read with Pillow,
the SDK's ``images`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType

from framevault.sdk import SingleFrame
from framevault.sdk.formats.coco import COCO_IMAGE_ID_KEY, read_coco
from framevault.sdk.formats.records import FILE_NAME_KEY, ReadResult, RecordIssue, extra_module

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
    """The images of a folder and, optionally, what :func:`read_coco` read from the COCO file annotating them."""

    folder: Path
    files: list[Path]
    coco: ReadResult | None = None
    sequence: bool = False
    fps: float = 30.0

    @property
    def issues(self) -> list[RecordIssue]:
        """The COCO records left out (image not in the folder, unknown category, box out of range ...)."""
        return self.coco.issues if self.coco is not None else []

    @property
    def unmatched(self) -> list[str]:
        """Relative paths of the images the COCO file has no entry for (imported without annotations)."""
        if self.coco is None:
            return []
        annotated = self.coco_frames()
        return [self.relative(path) for path in self.files if str(path) not in annotated]

    def coco_frames(self) -> dict[str, SingleFrame]:
        """The frames read from the COCO file, by the image file they were matched with."""
        return {frame.source: frame for frame in self.coco.frames} if self.coco is not None else {}

    def relative(self, path: Path) -> str:
        return path.relative_to(self.folder).as_posix()

    def frames(self) -> Iterator[SingleFrame]:
        """One frame per image, in file order, with the annotations and size the COCO file gives it.

        Stills are each their own context at timestamp 0; with ``sequence``
        every folder is one context (a video as frames) and timestamps follow
        ``fps``.
        """
        annotated = self.coco_frames()
        position_in_folder: dict[Path, int] = {}
        for path in self.files:
            relative = self.relative(path)
            coco_frame = annotated.get(str(path))
            width, height = (coco_frame.width, coco_frame.height) if coco_frame and coco_frame.width else (None, None)
            if width is None:
                width, height = image_size(path)
            metadata: dict[str, object] = {FILE_NAME_KEY: relative}
            if coco_frame is not None:
                metadata[COCO_IMAGE_ID_KEY] = coco_frame.metadata[COCO_IMAGE_ID_KEY]
            if self.sequence:
                index = position_in_folder.get(path.parent, 0)
                position_in_folder[path.parent] = index + 1
                context = path.parent.relative_to(self.folder).as_posix() or "."
                timestamp = round(index * 1000 / self.fps)
            else:
                context, timestamp = relative, 0
            frame = SingleFrame(source=str(path), width=width, height=height, timestamp=timestamp,
                                context_id=context, metadata=metadata, id=relative)
            if coco_frame is not None:
                frame.annotations.extend(coco_frame.annotations)
            yield frame


def folder_image_locator(folder: Path, files: list[Path]) -> Callable[[str], str | None]:
    """A COCO ``file_name`` → the image under ``folder``: by relative path, else by base name
    (COCO files often name images without their sub-folder)."""
    by_relative = {path.relative_to(folder).as_posix(): str(path) for path in files}
    by_name = {path.name: str(path) for path in reversed(files)}

    def locate(file_name: str) -> str | None:
        posix = PurePosixPath(file_name).as_posix()
        return by_relative.get(posix) or by_name.get(PurePosixPath(posix).name)

    return locate


def read_image_folder(
    folder: str | Path, *, coco_file: str | Path | None = None, recursive: bool = True, sequence: bool = False,
    fps: float = 30.0,
) -> ImageFolder:
    """The images under ``folder`` (sub-folders too unless ``recursive`` is
    false) with the boxes, polygons, RLE masks and keypoints of ``coco_file``
    (read by :func:`read_coco`) as annotations.

    Raises:
        FormatError: the COCO file is malformed (nothing is read then).
        ImportError: Pillow is not installed, or the COCO file holds RLE masks and pycocotools is not.
        ValueError: ``fps`` is not positive.
    """
    if not fps > 0:
        raise ValueError("fps must be > 0")
    pillow_image()
    root = Path(folder)
    files = image_files(root, recursive)
    coco = (read_coco(coco_file, root, locate_image=folder_image_locator(root, files))
            if coco_file is not None else None)
    return ImageFolder(root, files, coco, sequence, fps)
