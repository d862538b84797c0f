"""What reading an annotation format yields: frames to import, and what could not be imported.

Two kinds of trouble, kept apart on purpose:

- :class:`FormatError`: the file itself is malformed (not JSON/XML, a box that
  is not four numbers, a class index that is not an integer). Reading stops,
  nothing is imported, and the error names the file, the record and the field.
- :class:`RecordIssue`: a well-formed record that cannot be imported as it
  stands — its image is missing, its box lies outside the image, its category
  is unknown. The record is left out, the issue is reported, and every other
  record is imported (as ``add_frames`` reports failed frames and registers the
  rest).
"""

from __future__ import annotations

import enum
import importlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import ModuleType

from framevault.sdk.frames import Annotation, SingleFrame
from framevault.sdk.sources import is_local_uri, local_path


class FormatError(ValueError):
    """A malformed annotation file: ``file``, ``record`` and ``field`` say where."""

    def __init__(self, file: str, message: str, *, record: str | None = None, field: str | None = None) -> None:
        self.file = file
        self.record = record
        self.field = field
        self.reason = message
        where = file + (f", {record}" if record else "") + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {message}")


class IssueKind(enum.Enum):
    """Why a well-formed record was left out."""

    missing_image = "missing image"
    box_out_of_range = "box out of range"
    unknown_category = "unknown category"
    unsupported = "unsupported geometry"


@dataclass(frozen=True)
class RecordIssue:
    """One record left out of an import, and why."""

    kind: IssueKind
    file: str
    record: str
    message: str
    field: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}, {self.record}" + (f", field {self.field!r}" if self.field else "")
        return f"{where}: {self.kind.value}: {self.message}"


@dataclass
class ReadResult:
    """The frames read from an annotation format, the labels it declares, and the records left out."""

    frames: list[SingleFrame] = field(default_factory=list)
    # Category / class names in the order the format declares them (COCO ids, YOLO indices).
    categories: list[str] = field(default_factory=list)
    issues: list[RecordIssue] = field(default_factory=list)

    @property
    def annotation_count(self) -> int:
        return sum(len(frame.annotations) for frame in self.frames)

    def summary(self) -> dict[str, object]:
        """What an import of this result would write (the dry run's report)."""
        geometries: Counter[str] = Counter(annotation_kind(a) for f in self.frames for a in f.annotations)
        return {
            "frames": len(self.frames),
            "annotations": self.annotation_count,
            "by_geometry": dict(sorted(geometries.items())),
            "labels": sorted({label for f in self.frames for a in f.annotations for label in a.labels}),
            "left_out": dict(sorted(Counter(issue.kind.value for issue in self.issues).items())),
        }


def annotation_kind(annotation: Annotation) -> str:
    """``box``, ``polygon``, ``keypoints`` ..., ``mask`` for an RLE-carrying box, ``frame label`` without geometry."""
    if MASK_KEY in annotation.metadata:
        return "mask"
    kind = annotation.geometry_kind
    return {None: "frame label", "box2d_xywh": "box", "poly2d_xy": "polygon"}.get(kind, kind or "")


# ROI metadata key of a COCO run-length-encoded mask ({"size": [h, w], "counts": "..."}):
# the ROI's geometry is the mask's bounding box, the mask itself rides along unchanged.
MASK_KEY = "coco_rle"

# Boxes may overshoot the image by this many pixels (float rounding in other tools' exports).
BOX_TOLERANCE = 1e-3


def box_out_of_range(box: tuple[float, float, float, float], width: int | None, height: int | None) -> str | None:
    """Why ``(x, y, w, h)`` does not fit an image of ``width`` × ``height`` (None when it fits or the size is unknown)."""
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return f"box {list(box)} has no area"
    if x < -BOX_TOLERANCE or y < -BOX_TOLERANCE:
        return f"box {list(box)} starts outside the image"
    if width and x + w > width + BOX_TOLERANCE:
        return f"box {list(box)} ends at x={x + w:g}, past the image width {width}"
    if height and y + h > height + BOX_TOLERANCE:
        return f"box {list(box)} ends at y={y + h:g}, past the image height {height}"
    return None


def image_source(images_dir: Path | None, file_name: str) -> str | None:
    """Where the image ``file_name`` of an annotation file is: a URI as written, or a file under
    ``images_dir`` (None when that file does not exist)."""
    if not is_local_uri(file_name):
        return file_name
    if file_name.startswith("file://"):
        path = Path(local_path(file_name))
    elif images_dir is None:
        return None
    else:
        path = images_dir / file_name
    return str(path) if path.is_file() else None


def still_frame(source: str, file_name: str, width: int | None, height: int | None, *,
                frame_id: str | None = None) -> SingleFrame:
    """The frame of one still image: its id is the image's path relative to the images folder unless
    given (so an import repeated updates the frames it made), its own context, timestamp 0."""
    posix = PurePosixPath(file_name).as_posix()
    return SingleFrame(source=source, width=width or None, height=height or None, timestamp=0,
                       context_id=frame_id or posix, metadata={FILE_NAME_KEY: posix}, id=frame_id or posix)


# Frame metadata key of the image's path relative to the dataset's images folder; exports name images by it.
FILE_NAME_KEY = "file_name"


def export_name(frame: SingleFrame) -> str:
    """The relative image path an export writes for ``frame``: the one it was imported under, else its id."""
    name = frame.metadata.get(FILE_NAME_KEY)
    if isinstance(name, str) and name and not name.startswith("/") and ".." not in PurePosixPath(name).parts:
        return name
    base = frame.id or PurePosixPath(frame.source).name or "frame"
    return base.replace("://", "_").lstrip("/")


@dataclass
class ExportCounts:
    """What a writer wrote, and what it had no place for (by kind), so nothing is dropped unseen."""

    frames: int = 0
    annotations: int = 0
    not_written: Counter[str] = field(default_factory=Counter)
    images_copied: int = 0
    # Frames whose image stayed where it is (a URI the export cannot copy), by frame id.
    images_referenced: list[str] = field(default_factory=list)


def extra_module(module: str, extra: str, purpose: str, *, provides: str | None = None) -> ModuleType:
    """The module ``module`` of the SDK's optional ``extra``; with ``provides``, only if it has that
    attribute (a namespace package of the same name from another distribution does not count).

    Raises:
        ImportError: it is not installed; the message says what needs it and how to install it.
    """
    missing = ImportError(f"{purpose}, which is not installed: pip install 'framevault[{extra}]'")
    try:
        loaded = importlib.import_module(module)
    except ImportError:
        raise missing from None
    if provides is not None and not hasattr(loaded, provides):
        raise missing
    return loaded
