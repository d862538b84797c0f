"""Pascal VOC detection XML ↔ framevault frames.

A VOC tree holds one ``Annotations/<name>.xml`` per image and the images in
``JPEGImages/``: ``<filename>``, ``<size>`` (width, height, depth) and one
``<object>`` per box (``name``, ``pose``, ``truncated``, ``difficult``,
``bndbox`` with ``xmin ymin xmax ymax``, and a ``score`` where a model wrote
one). A box becomes an ROI ``(xmin, ymin, xmax - xmin, ymax - ymin)``, as
other tools read it; pose, truncated and difficult ride in the ROI's metadata.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from framevault.sdk.formats.records import (
    ExportCounts,
    FormatError,
    IssueKind,
    ReadResult,
    RecordIssue,
    annotation_kind,
    box_out_of_range,
    export_name,
    image_source,
    still_frame,
)
from framevault.sdk.frames import SingleFrame, make_annotation

ANNOTATIONS_DIR = "Annotations"
IMAGES_DIR = "JPEGImages"
OBJECT_FLAGS = ("truncated", "difficult", "occluded")


def _text(element: ElementTree.Element, path: str) -> str | None:
    found = element.find(path)
    return found.text.strip() if found is not None and found.text is not None else None


def _number(element: ElementTree.Element, path: str, file: str, record: str, *, required: bool = True) -> float | None:
    text = _text(element, path)
    if text is None:
        if required:
            raise FormatError(file, "missing", record=record, field=path)
        return None
    try:
        return float(text)
    except ValueError:
        raise FormatError(file, f"not a number: {text!r}", record=record, field=path) from None


def read_voc(root: str | Path, *, images_dir: str | Path | None = None, labels: Sequence[str] | None = None,
             ) -> ReadResult:
    """The frames of a VOC tree (``root/Annotations/*.xml``, images in ``root/JPEGImages``
    unless ``images_dir`` says otherwise).

    With ``labels``, objects of any other class are left out as unknown
    categories. Files whose image is missing, and boxes outside the image,
    are left out and listed in ``issues``.

    Raises:
        FormatError: a file that is not XML, or an object without a name or
            with a box that is not four numbers.
    """
    base = Path(root)
    annotations_dir = base / ANNOTATIONS_DIR if (base / ANNOTATIONS_DIR).is_dir() else base
    images_root = Path(images_dir) if images_dir is not None else base / IMAGES_DIR
    known = list(labels) if labels is not None else None
    result = ReadResult(categories=list(known or []))
    for xml_file in sorted(annotations_dir.glob("*.xml")):
        _read_file(result, xml_file, images_root, known)
    if known is None:
        result.categories = sorted({label for f in result.frames for a in f.annotations for label in a.labels})
    return result


def _read_file(result: ReadResult, xml_file: Path, images_root: Path, known: list[str] | None) -> None:
    file = str(xml_file)
    try:
        document = ElementTree.parse(xml_file).getroot()
    except ElementTree.ParseError as exc:
        line, column = exc.position
        raise FormatError(file, f"not XML: {exc}", record=f"line {line} column {column + 1}") from None
    except OSError as exc:
        raise FormatError(file, f"cannot read: {exc}") from None
    if document.tag != "annotation":
        raise FormatError(file, f"the root element is <{document.tag}>, not <annotation>")
    file_name = _text(document, "filename")
    if not file_name:
        raise FormatError(file, "missing", record="<annotation>", field="filename")
    width = _number(document, "size/width", file, "<size>", required=False)
    height = _number(document, "size/height", file, "<size>", required=False)
    source = image_source(images_root, file_name)
    if source is None:
        result.issues.append(RecordIssue(IssueKind.missing_image, file, "<annotation>",
                                         f"no image {file_name!r} under {images_root}", "filename"))
        return
    frame = still_frame(source, file_name, int(width) if width else None, int(height) if height else None)
    for index, element in enumerate(document.findall("object")):
        record = f"object[{index}]"
        name = _text(element, "name")
        if not name:
            raise FormatError(file, "missing", record=record, field="name")
        corners = [_number(element, f"bndbox/{key}", file, record) for key in ("xmin", "ymin", "xmax", "ymax")]
        xmin, ymin, xmax, ymax = (float(c or 0) for c in corners)
        box = (xmin, ymin, xmax - xmin, ymax - ymin)
        if known is not None and name not in known:
            result.issues.append(RecordIssue(IssueKind.unknown_category, file, record,
                                             f"class {name!r} is not one of {known}", "name"))
            continue
        outside = box_out_of_range(box, frame.width, frame.height)
        if outside is not None:
            result.issues.append(RecordIssue(IssueKind.box_out_of_range, file, record, outside, "bndbox"))
            continue
        metadata: dict[str, Any] = {}
        pose = _text(element, "pose")
        if pose:
            metadata["pose"] = pose
        for flag in OBJECT_FLAGS:
            value = _number(element, flag, file, record, required=False)
            if value is not None:
                metadata[flag] = int(value)
        score = _number(element, "score", file, record, required=False)
        if score is not None and not 0 <= score <= 1:
            raise FormatError(file, f"must be within [0, 1], got {score:g}", record=record, field="score")
        frame.annotations.append(make_annotation(box2d_xywh=box, labels=[name], confidence=score, metadata=metadata))
    result.frames.append(frame)


def write_voc(frames: Iterable[SingleFrame], root: str | Path) -> ExportCounts:
    """Writes one ``Annotations/<name>.xml`` per frame under ``root`` (the images belong in
    ``JPEGImages/<name>``). Only boxes have a place in VOC; the other annotations are counted, not written."""
    out = Path(root) / ANNOTATIONS_DIR
    out.mkdir(parents=True, exist_ok=True)
    counts = ExportCounts()
    for frame in frames:
        name = export_name(frame)
        document = ElementTree.Element("annotation")
        ElementTree.SubElement(document, "folder").text = IMAGES_DIR
        ElementTree.SubElement(document, "filename").text = name
        size = ElementTree.SubElement(document, "size")
        for key, value in (("width", frame.width or 0), ("height", frame.height or 0), ("depth", 3)):
            ElementTree.SubElement(size, key).text = str(value)
        ElementTree.SubElement(document, "segmented").text = "0"
        for annotation in frame.annotations:
            if annotation.box2d_xywh is None or not annotation.labels:
                counts.not_written[annotation_kind(annotation)] += 1
                continue
            element = ElementTree.SubElement(document, "object")
            ElementTree.SubElement(element, "name").text = annotation.labels[0]
            ElementTree.SubElement(element, "pose").text = str(annotation.metadata.get("pose", "Unspecified"))
            for flag in OBJECT_FLAGS:
                if flag in annotation.metadata:
                    ElementTree.SubElement(element, flag).text = str(int(annotation.metadata[flag]))
            if annotation.confidence is not None:
                ElementTree.SubElement(element, "score").text = repr(annotation.confidence)
            x, y, w, h = annotation.box2d_xywh
            box = ElementTree.SubElement(element, "bndbox")
            for key, corner in (("xmin", x), ("ymin", y), ("xmax", x + w), ("ymax", y + h)):
                ElementTree.SubElement(box, key).text = str(int(corner)) if corner.is_integer() else repr(corner)
            counts.annotations += 1
        xml_file = (out / name).with_suffix(".xml")
        xml_file.parent.mkdir(parents=True, exist_ok=True)
        ElementTree.indent(document)
        ElementTree.ElementTree(document).write(xml_file, encoding="utf-8", xml_declaration=False)
        counts.frames += 1
    return counts
