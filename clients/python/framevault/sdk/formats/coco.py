"""COCO annotation files → framevault annotations.

One COCO object may carry a box, a polygon segmentation and keypoints; a
framevault ROI has one geometry, so each becomes its own ROI and they share
the ROI id ``coco-<annotation id>``, which marks them as the same object.
Run-length-encoded segmentations (crowd masks) have no polygon form and are
counted as skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from framevault.sdk import Annotation
from framevault.sdk.frames import make_annotation


class CocoError(ValueError):
    """The file is not a usable COCO annotation file, or (``annotations_of``)
    an annotation of it cannot be read."""


@dataclass(frozen=True)
class CocoRecordError:
    """A COCO annotation that could not be imported; the frame of its image was left out."""

    frame_id: str
    # Names the annotation, e.g. "annotation 7 of cat.jpg: a box needs 4 numbers".
    message: str

    def __str__(self) -> str:
        return f"{self.frame_id}: {self.message}"


@dataclass
class CocoImage:
    id: Any
    file_name: str
    width: int | None
    height: int | None
    annotations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CocoIndex:
    """A COCO file's images (by file name), categories and annotations."""

    images_by_name: dict[str, CocoImage]
    categories: dict[Any, str]
    # Annotations naming an image the file does not list.
    orphan_annotations: int = 0
    skipped_rle: int = 0

    def find(self, relative_path: str) -> CocoImage | None:
        """The COCO image of a file, matched by relative path, then by base name."""
        posix = PurePosixPath(relative_path).as_posix()
        return self.images_by_name.get(posix) or self.images_by_name.get(PurePosixPath(posix).name)

    def annotations_of(self, image: CocoImage) -> list[Annotation]:
        """The framevault annotations of one COCO image.

        Raises:
            CocoError: an annotation with malformed geometry.
        """
        out: list[Annotation] = []
        for ann in image.annotations:
            label = self.categories.get(ann.get("category_id"), str(ann.get("category_id", "unknown")))
            roi_id = f"coco-{ann['id']}" if "id" in ann else None
            meta: dict[str, Any] = {key: ann[key] for key in ("iscrowd", "area") if key in ann}
            if "id" in ann:
                meta["coco_id"] = ann["id"]
            confidence = ann.get("score")
            common: dict[str, Any] = {"labels": [label], "confidence": confidence, "metadata": meta, "id": roi_id}
            try:
                if ann.get("bbox"):
                    out.append(make_annotation(box2d_xywh=ann["bbox"], **common))
                segmentation = ann.get("segmentation")
                if isinstance(segmentation, list) and segmentation:
                    parts = [part for part in segmentation if isinstance(part, list) and len(part) >= 6]
                    if parts:
                        out.append(make_annotation(poly2d_xy=parts, **common))
                elif isinstance(segmentation, dict):
                    self.skipped_rle += 1
                keypoints = ann.get("keypoints")
                if keypoints and ann.get("num_keypoints", 1):
                    triples = [tuple(keypoints[i:i + 3]) for i in range(0, len(keypoints) - 2, 3)]
                    out.append(make_annotation(keypoints=[(x, y, int(v)) for x, y, v in triples], **common))
            except ValueError as exc:
                raise CocoError(f"annotation {ann.get('id', '?')} of {image.file_name}: {exc}") from None
        return out


def load_coco(path: Path) -> CocoIndex:
    """Reads a COCO annotation file.

    Raises:
        CocoError: not JSON, or without ``images``.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CocoError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise CocoError(f"{path} is not a COCO annotation file (no 'images' list)")
    images_by_id: dict[Any, CocoImage] = {}
    by_name: dict[str, CocoImage] = {}
    for entry in data["images"]:
        if not isinstance(entry, dict) or "file_name" not in entry or "id" not in entry:
            raise CocoError(f"{path}: every image needs 'id' and 'file_name'")
        image = CocoImage(entry["id"], str(entry["file_name"]), entry.get("width"), entry.get("height"))
        images_by_id[image.id] = image
        by_name[PurePosixPath(image.file_name).as_posix()] = image
    categories = {c["id"]: str(c.get("name", c["id"])) for c in data.get("categories", []) if "id" in c}
    orphans = 0
    for ann in data.get("annotations", []):
        owner = images_by_id.get(ann.get("image_id")) if isinstance(ann, dict) else None
        if owner is None:
            orphans += 1
            continue
        owner.annotations.append(ann)
    return CocoIndex(by_name, categories, orphan_annotations=orphans)
