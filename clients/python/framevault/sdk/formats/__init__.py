"""Interchange formats: COCO, YOLO, Pascal VOC and FiftyOne in and out of dataset versions.

    from framevault.sdk.formats import read_coco, import_frames, select_frames, export_frames

    read = read_coco("annotations/instances.json", images_dir="images")
    for issue in read.issues:          # records left out (missing image, box out of range, unknown category)
        print(issue)
    report = import_frames(draft, read, upload_images=True)   # dry_run=True: only read.summary()

    selection = select_frames("drives", "v2", query="label:car", diff_base="v1")
    export_frames("yolo", selection.frames, "out/")

A malformed file raises :class:`FormatError` naming the file, the record and
the field; nothing is imported then. The image-folder import
(:func:`read_image_folder`, ``framevault ingest``) reads its COCO file with :func:`read_coco`.
"""

from framevault.sdk.formats.coco import read_coco, write_coco
from framevault.sdk.formats.image_folder import IMAGE_SUFFIXES, ImageFolder, image_files, image_size, read_image_folder
from framevault.sdk.formats.records import ExportCounts, FormatError, IssueKind, ReadResult, RecordIssue
from framevault.sdk.formats.transfer import (
    FORMATS,
    ImportReport,
    Selection,
    aexport_frames,
    aimport_frames,
    aselect_frames,
    export_frames,
    import_frames,
    select_frames,
)
from framevault.sdk.formats.voc import read_voc, write_voc
from framevault.sdk.formats.yolo import read_yolo, write_yolo

__all__ = [
    "FORMATS",
    "IMAGE_SUFFIXES",
    "ExportCounts",
    "FormatError",
    "ImageFolder",
    "ImportReport",
    "IssueKind",
    "ReadResult",
    "RecordIssue",
    "Selection",
    "aexport_frames",
    "aimport_frames",
    "aselect_frames",
    "export_frames",
    "image_files",
    "image_size",
    "import_frames",
    "read_coco",
    "read_image_folder",
    "read_voc",
    "read_yolo",
    "select_frames",
    "write_coco",
    "write_voc",
    "write_yolo",
]
