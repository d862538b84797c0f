"""COCO annotation files → framevault annotations.

One COCO object may carry a box, a polygon segmentation and keypoints; a
framevault ROI has one geometry, so each becomes its own ROI and they share
the ROI id ``coco-<annotation id>``, which marks them as the same object.
Run-length-encoded segmentations (crowd masks) need ``pycocotools`` (the
``coco`` extra): such a mask becomes a box ROI (the mask's bounding box) that
carries the compressed RLE in its metadata (``coco_rle``), and an export writes
it back unchanged. Without ``pycocotools`` :func:`read_coco` refuses them.

:func:`read_coco` reads a COCO file as a whole (every record checked before
anything is imported), :func:`write_coco` writes frames as one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from framevault.sdk.formats.records import (
    MASK_KEY,
    ExportCounts,
    FormatError,
    IssueKind,
    ReadResult,
    RecordIssue,
    annotation_kind,
    box_out_of_range,
    export_name,
    extra_module,
    image_source,
    still_frame,
)
from framevault.sdk.frames import Annotation, SingleFrame, make_annotation
from framevault.sdk.geometry import is_number

# --- run-length-encoded masks (pycocotools) -----------------------------------


def pycocotools_mask() -> Any:
    """``pycocotools.mask``.

    Raises:
        ImportError: not installed.
    """
    return extra_module("pycocotools.mask", "coco", "COCO run-length-encoded masks need pycocotools")


def compressed_rle(segmentation: dict[str, Any]) -> dict[str, Any]:
    """A COCO RLE (``counts`` as a list or as the compressed string) in its compressed form.

    Raises:
        ValueError: no ``size`` of two integers, or ``counts`` of another type.
        ImportError: pycocotools is not installed.
    """
    size = segmentation.get("size")
    counts = segmentation.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        raise ValueError("an RLE segmentation needs 'size': [height, width]")
    mask = pycocotools_mask()
    if isinstance(counts, list) and all(isinstance(c, int) for c in counts):
        rle = mask.frPyObjects({"size": size, "counts": counts}, size[0], size[1])
    elif isinstance(counts, str):
        rle = {"size": size, "counts": counts.encode("ascii")}
    else:
        raise ValueError("RLE 'counts' must be a list of integers or a string")
    return {"size": [int(size[0]), int(size[1])], "counts": rle["counts"].decode("ascii")}


def rle_bbox(segmentation: dict[str, Any]) -> list[float]:
    """The bounding box ``[x, y, w, h]`` of a COCO RLE."""
    rle = compressed_rle(segmentation)
    box = pycocotools_mask().toBbox({"size": rle["size"], "counts": rle["counts"].encode("ascii")})
    return [float(v) for v in box]


def rle_area(rle: dict[str, Any]) -> float:
    return float(pycocotools_mask().area({"size": rle["size"], "counts": rle["counts"].encode("ascii")}))


# --- a COCO file as a whole -----------------------------------------------------


def _numbers(value: Any, file: str, record: str, field_name: str, *, count: int | None = None,
             multiple: int = 1) -> list[float]:
    """``value`` as a list of numbers, or a FormatError naming the field."""
    if not isinstance(value, list) or not all(is_number(v) for v in value):
        raise FormatError(file, "must be a list of numbers", record=record, field=field_name)
    if count is not None and len(value) != count:
        raise FormatError(file, f"needs {count} numbers, got {len(value)}", record=record, field=field_name)
    if len(value) % multiple:
        raise FormatError(file, f"needs a multiple of {multiple} numbers, got {len(value)}", record=record,
                          field=field_name)
    return [float(v) for v in value]


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(str(path), f"not JSON: {exc.msg}", record=f"line {exc.lineno} column {exc.colno}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(str(path), f"cannot read: {exc}") from None


def _record_list(data: dict[str, Any], key: str, file: str, *, required: bool) -> list[dict[str, Any]]:
    value = data.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise FormatError(file, "must be a list", field=key)
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise FormatError(file, "must be an object", record=f"{key}[{index}]")
    return value


def read_coco(annotations_file: str | Path, images_dir: str | Path | None = None, *,
              locate_image: Callable[[str], str | None] | None = None) -> ReadResult:
    """The frames of a COCO detection / segmentation / keypoints file.

    Each COCO image becomes a frame (its source: the file under ``images_dir``,
    or ``file_name`` itself when that is a URI), with its size, an ROI per box,
    polygon, RLE mask and keypoint set (the ROIs of one object share the id
    ``coco-<annotation id>``), ``iscrowd``/``area``/``score`` kept, and the
    image's ``frame_labels`` (written by :func:`write_coco`) as frame labels.
    The frame's metadata keeps the COCO image id (``coco_image_id``).
    ``locate_image`` (a ``file_name`` → image source, or None when there is
    none) replaces the lookup under ``images_dir``.

    Records whose image is missing, whose category is unknown or whose box
    lies outside the image are left out and listed in ``issues``.

    Raises:
        FormatError: a malformed file (not JSON, a record or field of the wrong shape).
        ImportError: RLE masks and pycocotools is not installed.
    """
    path = Path(annotations_file)
    file = str(path)
    images_root = Path(images_dir) if images_dir is not None else None
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise FormatError(file, "not a COCO annotation file (no 'images' list): a COCO file is a JSON object "
                          "with 'images', 'annotations' and 'categories'", field="images" if isinstance(data, dict) else None)
    result = ReadResult()
    categories: dict[Any, str] = {}
    for index, category in enumerate(_record_list(data, "categories", file, required=False)):
        record = f"categories[{index}]"
        if "id" not in category or not isinstance(category.get("name"), str):
            raise FormatError(file, "a category needs 'id' and a 'name' string", record=record,
                              field="id" if "id" not in category else "name")
        categories[category["id"]] = category["name"]
        result.categories.append(category["name"])
    frames_by_image_id: dict[Any, SingleFrame] = {}
    for index, entry in enumerate(_record_list(data, "images", file, required=True)):
        record = f"images[{index}]"
        for key in ("id", "file_name"):
            if key not in entry:
                raise FormatError(file, "missing", record=record, field=key)
        if not isinstance(entry["file_name"], str) or not entry["file_name"]:
            raise FormatError(file, "must be a non-empty string", record=record, field="file_name")
        for key in ("width", "height"):
            if entry.get(key) is not None and (not isinstance(entry[key], int) or entry[key] < 0):
                raise FormatError(file, "must be a non-negative integer", record=record, field=key)
        labels = entry.get("frame_labels", [])
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise FormatError(file, "must be a list of strings", record=record, field="frame_labels")
        source = (locate_image(entry["file_name"]) if locate_image is not None
                  else image_source(images_root, entry["file_name"]))
        if source is None:
            result.issues.append(RecordIssue(IssueKind.missing_image, file, f"{record} (id {entry['id']})",
                                             f"no image {entry['file_name']!r} under {images_root}", "file_name"))
            continue
        frame = still_frame(source, entry["file_name"], entry.get("width"), entry.get("height"))
        frame.metadata[COCO_IMAGE_ID_KEY] = entry["id"]
        for label in labels:
            frame.add_annotation(labels=[label])
        frames_by_image_id[entry["id"]] = frame
        result.frames.append(frame)
    known_image_ids = {entry["id"] for entry in data["images"]}
    for index, ann in enumerate(_record_list(data, "annotations", file, required=False)):
        record = f"annotations[{index}]" + (f" (id {ann['id']})" if "id" in ann else "")
        try:
            annotations = _coco_object(ann, file, record, categories)
        except UnsupportedRecord as unsupported:
            result.issues.append(RecordIssue(IssueKind.unsupported, file, record, unsupported.reason,
                                             unsupported.field))
            continue
        if "image_id" not in ann:
            raise FormatError(file, "missing", record=record, field="image_id")
        owner = frames_by_image_id.get(ann["image_id"])
        if owner is None:
            reason = ("its image was left out" if ann["image_id"] in known_image_ids
                      else f"no image with id {ann['image_id']!r}")
            result.issues.append(RecordIssue(IssueKind.missing_image, file, record, reason, "image_id"))
            continue
        if ann.get("category_id") not in categories:
            result.issues.append(RecordIssue(IssueKind.unknown_category, file, record,
                                             f"no category with id {ann.get('category_id')!r}", "category_id"))
            continue
        outside = next((why for a in annotations if a.box2d_xywh is not None
                        for why in [box_out_of_range(a.box2d_xywh, owner.width, owner.height)] if why), None)
        if outside is not None:
            result.issues.append(RecordIssue(IssueKind.box_out_of_range, file, record, outside, "bbox"))
            continue
        owner.annotations.extend(annotations)
    return result


# Frame metadata key of the COCO image id a frame was read from.
COCO_IMAGE_ID_KEY = "coco_image_id"


class UnsupportedRecord(Exception):
    """A well-formed record with a geometry framevault has no form for."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


def _coco_object(ann: dict[str, Any], file: str, record: str, categories: dict[Any, str]) -> list[Annotation]:
    """The ROIs of one COCO annotation: box (carrying an RLE mask if any), polygon, keypoints."""
    label = categories.get(ann.get("category_id"), "")
    meta: dict[str, Any] = {}
    for key in ("iscrowd", "area"):
        if key in ann:
            if not is_number(ann[key]):
                raise FormatError(file, "must be a number", record=record, field=key)
            meta[key] = ann[key]
    if "id" in ann:
        meta["coco_id"] = ann["id"]
    score = ann.get("score")
    if score is not None and not (is_number(score) and 0 <= score <= 1):
        raise FormatError(file, "must be a number within [0, 1]", record=record, field="score")
    roi_id = f"coco-{ann['id']}" if "id" in ann else None
    common: dict[str, Any] = {"labels": [label], "confidence": score, "id": roi_id}
    out: list[Annotation] = []
    segmentation = ann.get("segmentation")
    mask: dict[str, Any] | None = None
    if isinstance(segmentation, dict):
        try:
            mask = compressed_rle(segmentation)
        except ValueError as exc:
            raise FormatError(file, str(exc), record=record, field="segmentation") from None
    box = ann.get("bbox")
    if box is not None and box != []:
        xywh = _numbers(box, file, record, "bbox", count=4)
        out.append(make_annotation(box2d_xywh=xywh, metadata={**meta, **({MASK_KEY: mask} if mask else {})},
                                   **common))
    elif mask is not None:
        out.append(make_annotation(box2d_xywh=rle_bbox(mask), metadata={**meta, MASK_KEY: mask}, **common))
    if isinstance(segmentation, list) and segmentation:
        parts = []
        for part_index, part in enumerate(segmentation):
            coords = _numbers(part, file, record, f"segmentation[{part_index}]", multiple=2)
            if len(coords) < 6:
                # Well-formed but degenerate (real COCO files hold such 1- and 2-point "polygons").
                raise UnsupportedRecord(f"segmentation[{part_index}]",
                                        f"polygon part {part_index} has {len(coords) // 2} points, a polygon needs 3")
            parts.append(coords)
        out.append(make_annotation(poly2d_xy=parts, metadata=dict(meta), **common))
    elif segmentation not in (None, [], {}) and mask is None:
        raise FormatError(file, "must be a list of polygons or an RLE object", record=record, field="segmentation")
    keypoints = ann.get("keypoints")
    if keypoints:
        coords = _numbers(keypoints, file, record, "keypoints", multiple=3)
        triples = [(coords[i], coords[i + 1], int(coords[i + 2])) for i in range(0, len(coords), 3)]
        out.append(make_annotation(keypoints=triples, metadata=dict(meta), **common))
    if not out:
        out.append(make_annotation(metadata=dict(meta), **common))
    return out


def write_coco(frames: Iterable[SingleFrame], path: str | Path, *, categories: Sequence[str] = ()) -> ExportCounts:
    """Writes ``frames`` as one COCO file (images named by :func:`export_name`).

    Category ids follow ``categories`` (1, 2, ...), then every other label in
    sorted order. The ROIs sharing an id become one COCO object (box, polygon,
    RLE mask, keypoints); a polygon without a box gets the polygon's bounding
    box. Frame labels go to the image's ``frame_labels``. Geometries COCO has
    no place for (ellipses, 3D) are counted in the result, not written.
    """
    frame_list = list(frames)
    names = list(dict.fromkeys([*categories, *sorted({
        a.labels[0] for f in frame_list for a in f.annotations if a.labels and not a.is_frame_label})]))
    category_ids = {name: index + 1 for index, name in enumerate(names)}
    counts = ExportCounts()
    images: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    for image_id, frame in enumerate(frame_list, start=1):
        image: dict[str, Any] = {"id": image_id, "file_name": export_name(frame),
                                 "width": frame.width or 0, "height": frame.height or 0}
        labels = [label for a in frame.annotations if a.is_frame_label for label in a.labels]
        if labels:
            image["frame_labels"] = labels
        images.append(image)
        grouped: dict[str, list[Annotation]] = {}
        for position, annotation in enumerate(frame.annotations):
            if annotation.is_frame_label:
                continue
            if annotation.geometry_kind not in ("box2d_xywh", "poly2d_xy", "keypoints") or not annotation.labels:
                counts.not_written[annotation_kind(annotation)] += 1
                continue
            grouped.setdefault(annotation.id or f"#{position}", []).append(annotation)
        for parts in grouped.values():
            objects.append(_coco_annotation(parts, len(objects) + 1, image_id, category_ids))
            counts.annotations += 1
        counts.frames += 1
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({
        "info": {"description": "exported by framevault"},
        "images": images,
        "annotations": objects,
        "categories": [{"id": category_ids[name], "name": name, "supercategory": ""} for name in names],
    }), encoding="utf-8")
    return counts


def _coco_annotation(parts: list[Annotation], ann_id: int, image_id: int,
                     category_ids: dict[str, int]) -> dict[str, Any]:
    first = parts[0]
    out: dict[str, Any] = {"id": ann_id, "image_id": image_id, "category_id": category_ids[first.labels[0]],
                           "iscrowd": int(first.metadata.get("iscrowd", 0) or 0)}
    box = next((a.box2d_xywh for a in parts if a.box2d_xywh is not None), None)
    polygon = next((a.poly2d_xy for a in parts if a.poly2d_xy is not None), None)
    mask = next((a.metadata[MASK_KEY] for a in parts if isinstance(a.metadata.get(MASK_KEY), dict)), None)
    keypoints = next((a.keypoints for a in parts if a.keypoints is not None), None)
    if polygon is not None:
        out["segmentation"] = [list(part) for part in polygon]
        if box is None:
            xs = [c for part in polygon for c in part[0::2]]
            ys = [c for part in polygon for c in part[1::2]]
            box = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
    elif mask is not None:
        out["segmentation"] = {"size": list(mask["size"]), "counts": mask["counts"]}
    else:
        out["segmentation"] = []
    if keypoints is not None:
        out["keypoints"] = [c for point in keypoints for c in (point[0], point[1], point[2] if len(point) == 3 else 2)]
        out["num_keypoints"] = sum(1 for point in keypoints if len(point) < 3 or point[2] > 0)
        if box is None and keypoints:
            xs, ys = [p[0] for p in keypoints], [p[1] for p in keypoints]
            box = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
    out["bbox"] = list(box) if box is not None else []
    area = first.metadata.get("area")
    if not is_number(area):
        area = rle_area(mask) if mask is not None and polygon is None else (box[2] * box[3] if box else 0)
    out["area"] = area
    if first.confidence is not None:
        out["score"] = first.confidence
    return out
