"""YOLO detection datasets (the Ultralytics / YOLOv5 layout) ↔ framevault frames.

A dataset is a ``data.yaml`` (``path``, one folder per split under
``train``/``val``/``test``, class ``names`` as a list or an index map) and,
beside each ``images/<split>/x.jpg``, a ``labels/<split>/x.txt`` with one line
per box: ``class x_center y_center width height [confidence]``, normalized to
the image size. Frames are named ``<split>/<path under the split folder>``
and remember their split in ``meta.split``; image sizes come from the image
files (Pillow, the ``images`` extra). Reading YAML needs PyYAML (the ``yolo``
extra).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm.auto import tqdm

from framevault.sdk.formats.image_folder import image_files, image_size, pillow_image
from framevault.sdk.formats.records import (
    ExportCounts,
    FormatError,
    IssueKind,
    ReadResult,
    RecordIssue,
    annotation_kind,
    box_out_of_range,
    export_name,
    extra_module,
    still_frame,
)
from framevault.sdk.frames import SingleFrame, make_annotation
from framevault.sdk.progress import progress_bar

SPLITS = ("train", "val", "test")
YAML_NAMES = ("data.yaml", "dataset.yaml")
SPLIT_KEY = "split"


def yaml_module() -> Any:
    """``yaml`` (PyYAML).

    Raises:
        ImportError: PyYAML (the ``yolo`` extra) is not installed.
    """
    return extra_module("yaml", "yolo", "YOLO's data.yaml is read with PyYAML")


def find_yaml(path: Path) -> Path:
    """``path`` itself, or the ``data.yaml``/``dataset.yaml`` in the folder ``path``."""
    if path.is_dir():
        for name in YAML_NAMES:
            if (path / name).is_file():
                return path / name
        raise FormatError(str(path), f"no {' or '.join(YAML_NAMES)} in this folder")
    return path


def class_names(data: dict[str, Any], file: str) -> list[str]:
    names = data.get("names")
    if isinstance(names, dict):
        if not all(isinstance(key, int) for key in names) or sorted(names) != list(range(len(names))):
            raise FormatError(file, "class indices must be 0, 1, ... without gaps", field="names")
        return [str(names[index]) for index in range(len(names))]
    if isinstance(names, list):
        return [str(name) for name in names]
    raise FormatError(file, "must list the class names (a list, or a map from index to name)", field="names")


def label_file_of(image: Path, images_dir: Path, labels_dir: Path) -> Path:
    return (labels_dir / image.relative_to(images_dir)).with_suffix(".txt")


def labels_dir_of(images_dir: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder of the path becomes ``labels``."""
    parts = list(images_dir.parts)
    for index in range(len(parts) - 1, -1, -1):
        if parts[index] == "images":
            parts[index] = "labels"
            return Path(*parts)
    return images_dir


def read_yolo(dataset: str | Path, *, progress: bool | None = False) -> ReadResult:
    """The frames of a YOLO detection dataset (``data.yaml`` or the folder holding it).

    Label files without an image, class indices past ``names`` and boxes
    outside the image are left out and listed in ``issues``. ``progress``
    shows a bar over the images (each is opened for its size).

    Raises:
        FormatError: an unreadable ``data.yaml``, or a label line that is not
            ``class x y w h [confidence]`` numbers.
        ImportError: PyYAML or Pillow is not installed.
    """
    yaml_path = find_yaml(Path(dataset))
    file = str(yaml_path)
    yaml = yaml_module()
    pillow_image()
    try:
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FormatError(file, f"cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise FormatError(file, f"not YAML: {getattr(exc, 'problem', exc)}",
                          record=f"line {mark.line + 1} column {mark.column + 1}" if mark else None) from None
    if not isinstance(data, dict):
        raise FormatError(file, "data.yaml is a mapping with 'names' and split folders")
    result = ReadResult(categories=class_names(data, file))
    root = yaml_path.parent / str(data.get("path") or ".")
    if not root.is_dir():
        root = yaml_path.parent
    for split in SPLITS:
        entries = data.get(split)
        if entries is None:
            continue
        for entry in entries if isinstance(entries, list) else [entries]:
            if not isinstance(entry, str):
                raise FormatError(file, "must be a folder of images (or a list of them)", field=split)
            images_dir = (root / entry).resolve()
            if not images_dir.is_dir():
                raise FormatError(file, f"no folder {images_dir}", field=split)
            with progress_bar(progress, desc=f"reading YOLO {split}", unit="image") as bar:
                _read_split(result, split, images_dir, labels_dir_of(images_dir), bar)
    return result


def _read_split(result: ReadResult, split: str, images_dir: Path, labels_dir: Path, bar: tqdm) -> None:
    images = image_files(images_dir, recursive=True)
    bar.reset(total=len(images))
    for image in images:
        bar.update(1)
        relative = image.relative_to(images_dir).as_posix()
        width, height = image_size(image)
        frame = still_frame(str(image), relative, width, height, frame_id=f"{split}/{relative}")
        frame.metadata[SPLIT_KEY] = split
        label_file = label_file_of(image, images_dir, labels_dir)
        if label_file.is_file():
            _read_labels(result, frame, label_file)
        result.frames.append(frame)
    stems = {label_file_of(image, images_dir, labels_dir) for image in images}
    if labels_dir.is_dir():
        for orphan in sorted(p for p in labels_dir.rglob("*.txt") if p not in stems):
            result.issues.append(RecordIssue(IssueKind.missing_image, str(orphan), "the whole file",
                                             f"no image beside it under {images_dir}"))


def _read_labels(result: ReadResult, frame: SingleFrame, label_file: Path) -> None:
    file = str(label_file)
    try:
        lines = label_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(file, f"cannot read: {exc}") from None
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        record = f"line {number}"
        if len(fields) not in (5, 6):
            raise FormatError(file, f"a box line is 'class x_center y_center width height [confidence]', "
                                    f"got {len(fields)} values", record=record)
        try:
            class_index = int(fields[0])
        except ValueError:
            raise FormatError(file, f"not an integer: {fields[0]!r}", record=record, field="class") from None
        values: list[float] = []
        for name, text in zip(("x_center", "y_center", "width", "height", "confidence"), fields[1:], strict=False):
            try:
                value = float(text)
            except ValueError:
                raise FormatError(file, f"not a number: {text!r}", record=record, field=name) from None
            if not math.isfinite(value):
                raise FormatError(file, f"not a finite number: {text!r}", record=record, field=name)
            values.append(value)
        if not 0 <= class_index < len(result.categories):
            result.issues.append(RecordIssue(IssueKind.unknown_category, file, record,
                                             f"class {class_index}, data.yaml names {len(result.categories)} classes",
                                             "class"))
            continue
        cx, cy, w, h = values[:4]
        unit_box = (cx - w / 2, cy - h / 2, w, h)
        outside = box_out_of_range(unit_box, 1, 1)
        if outside is not None:
            result.issues.append(RecordIssue(IssueKind.box_out_of_range, file, record,
                                             outside.replace("image width 1", "normalized width 1")
                                             .replace("image height 1", "normalized height 1")))
            continue
        if not frame.width or not frame.height:
            result.issues.append(RecordIssue(IssueKind.missing_image, file, record,
                                             f"the size of {frame.source} is unknown, the box cannot be scaled"))
            continue
        box = (unit_box[0] * frame.width, unit_box[1] * frame.height, w * frame.width, h * frame.height)
        confidence = values[4] if len(values) == 5 else None
        if confidence is not None and not 0 <= confidence <= 1:
            raise FormatError(file, f"must be within [0, 1], got {confidence}", record=record, field="confidence")
        frame.annotations.append(make_annotation(box2d_xywh=box, labels=[result.categories[class_index]],
                                                 confidence=confidence))


def write_yolo(frames: Iterable[SingleFrame], root: str | Path, *, categories: Sequence[str] = (),
               default_split: str = "train") -> ExportCounts:
    """Writes the label files and ``data.yaml`` of ``frames`` under ``root``
    (``labels/<split>/<name>.txt``; the images belong at ``images/<split>/<name>``, see
    :func:`image_path`). Classes follow ``categories``, then every other box label in
    sorted order. Only boxes have a place in YOLO detection files; the other
    annotations, and boxes of frames of unknown size, are counted, not written.
    """
    out = Path(root)
    frame_list = list(frames)
    names = list(dict.fromkeys([*categories, *sorted({
        a.labels[0] for f in frame_list for a in f.annotations if a.box2d_xywh is not None and a.labels})]))
    index_of = {name: index for index, name in enumerate(names)}
    counts = ExportCounts()
    splits: set[str] = set()
    for frame in frame_list:
        split = split_of(frame, default_split)
        splits.add(split)
        lines = []
        for annotation in frame.annotations:
            if annotation.box2d_xywh is None or not annotation.labels:
                counts.not_written[annotation_kind(annotation)] += 1
                continue
            if not frame.width or not frame.height:
                counts.not_written["box of an image of unknown size"] += 1
                continue
            x, y, w, h = annotation.box2d_xywh
            line = (f"{index_of[annotation.labels[0]]} {(x + w / 2) / frame.width:.6f} "
                    f"{(y + h / 2) / frame.height:.6f} {w / frame.width:.6f} {h / frame.height:.6f}")
            if annotation.confidence is not None:
                line += f" {annotation.confidence:.6f}"
            lines.append(line)
            counts.annotations += 1
        label_file = (out / "labels" / split / export_name(frame)).with_suffix(".txt")
        label_file.parent.mkdir(parents=True, exist_ok=True)
        label_file.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        counts.frames += 1
    data: dict[str, Any] = {"path": str(out.resolve()), "names": dict(enumerate(names))}
    for split in sorted(splits or {default_split}):
        data[split] = f"images/{split}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "data.yaml").write_text(yaml_module().safe_dump(data, sort_keys=False), encoding="utf-8")
    return counts


def split_of(frame: SingleFrame, default_split: str = "train") -> str:
    split = frame.metadata.get(SPLIT_KEY)
    return split if isinstance(split, str) and split in SPLITS else default_split


def image_path(frame: SingleFrame, default_split: str = "train") -> PurePosixPath:
    """Where the image of ``frame`` goes in a YOLO tree, relative to its root."""
    return PurePosixPath("images", split_of(frame, default_split), export_name(frame))
