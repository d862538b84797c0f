"""Moving annotation formats in and out of dataset versions.

Import: a :class:`~framevault.sdk.formats.records.ReadResult` (from
``read_coco``, ``read_yolo``, ``read_voc``, ``read_fiftyone``) goes into a
draft through ``add_frames``; images are uploaded to the blob service, or stay
where they are (local files are then referenced as ``file://`` URIs). A dry run
reports what would be imported and writes nothing.

Export: the frames of a version, of a filtered view of it (a query), or of the
difference between two versions, are written in a format; images are copied
beside the annotations (blobs downloaded through the content-addressed cache),
or left where they are.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from framevault.sdk.dataset import DatasetVersion
from framevault.sdk.dataview import DataView
from framevault.sdk.formats.coco import write_coco
from framevault.sdk.formats.records import ExportCounts, ReadResult, RecordIssue, export_name
from framevault.sdk.formats.voc import IMAGES_DIR, write_voc
from framevault.sdk.formats.yolo import image_path, write_yolo
from framevault.sdk.frames import SingleFrame
from framevault.sdk.progress import progress_bar
from framevault.sdk.runtime import sync_twin
from framevault.sdk.sources import is_local_uri, local_copy
from framevault.sdk.upload import UploadTotals
from framevault.sdk.version_history import ChangeKind

FORMATS = ("coco", "yolo", "voc", "fiftyone")
COCO_ANNOTATIONS = "annotations.json"
COCO_IMAGES = "images"


@dataclass
class ImportReport:
    """What an import did (or, as a dry run, would do)."""

    summary: dict[str, Any]
    issues: list[RecordIssue]
    # None for a dry run.
    totals: UploadTotals | None = None

    @property
    def dry_run(self) -> bool:
        return self.totals is None


async def aimport_frames(
    version: DatasetVersion, read: ReadResult, *, upload_images: bool = True, dry_run: bool = False,
    upload_retries: int = 3, progress: bool | None = None,
) -> ImportReport:
    """Adds the frames of ``read`` to the draft ``version`` (``add_frames``' partial success:
    frames the service refuses are in ``totals.failed``, the others are registered).

    Args:
        upload_images: upload local images to the blob service (else they are
            referenced where they are, as ``file://`` URIs).
        dry_run: write nothing; the report's summary says what would be imported.
    """
    report = ImportReport(summary=read.summary(), issues=list(read.issues))
    if dry_run:
        return report
    report.totals = await version.aadd_frames_with_totals(read.frames, upload_retries, auto_upload=upload_images,
                                                          progress=progress)
    return report


import_frames = sync_twin(aimport_frames)


@dataclass
class Selection:
    """The frames an export writes, and (for a diff) the ids of frames the target no longer has."""

    frames: list[SingleFrame] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # Frames with several sources (frame groups), which the formats have no place for.
    skipped_groups: list[str] = field(default_factory=list)


async def aselect_frames(
    dataset_name: str, version_name: str = "Current", *, query: str | None = None, diff_base: str | None = None,
    progress: bool | None = None,
) -> Selection:
    """The frames of a version to export: all, those matching ``query``, and with
    ``diff_base`` only those added or changed since that version (both given: both apply).
    """
    selection = Selection()
    wanted: set[str] | None = None
    frames: list[Any] = []
    with progress_bar(progress, desc="reading frames", unit="frame") as bar:
        if query is not None or diff_base is None:
            view = DataView()
            view.add_query(dataset_name=dataset_name, version_name=version_name, query=query)
            async for frame in view.aget_iterator():
                frames.append(frame)
                bar.update(1)
        if diff_base is not None:
            base = await DatasetVersion.aget_version(dataset_name, diff_base)
            target = await DatasetVersion.aget_version(dataset_name, version_name)
            wanted = {frame.id for frame in frames} if query is not None else None
            frames = []
            async for change in base.aiter_diff(target, include_frames=True):
                if change.kind is ChangeKind.removed:
                    selection.removed.append(change.frame_id)
                elif wanted is None or change.frame_id in wanted:
                    frames.append(change.target)
                    bar.update(1)
    for frame in frames:
        if isinstance(frame, SingleFrame):
            selection.frames.append(frame)
        else:
            selection.skipped_groups.append(frame.id or "")
    return selection


select_frames = sync_twin(aselect_frames)


async def acopy_images(frames: list[SingleFrame], destination_of: Callable[[SingleFrame], Path],
                       counts: ExportCounts, *, progress: bool | None = None) -> dict[str, str]:
    """Copies each frame's image to ``destination_of(frame)``: local files copied, ``blob:`` sources
    downloaded (once, into the content-addressed cache). Sources elsewhere (``s3://``, ``https://``)
    stay where they are and are listed in ``counts.images_referenced``.

    Returns:
        The local image path of every frame copied, by frame id.
    """
    paths: dict[str, str] = {}
    with progress_bar(progress, desc="copying images", unit="image", total=len(frames)) as bar:
        for frame in frames:
            if not (is_local_uri(frame.source) or frame.source.startswith("blob:")):
                counts.images_referenced.append(frame.id or "")
                bar.update(1)
                continue
            source = await local_copy(frame.source)
            target = destination_of(frame)
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.resolve() != target.resolve():
                await asyncio.to_thread(shutil.copyfile, source, target)
            paths[frame.id or ""] = str(target)
            counts.images_copied += 1
            bar.update(1)
    return paths


def _in_folder(folder: str) -> Callable[[SingleFrame], PurePosixPath]:
    return lambda frame: PurePosixPath(folder, export_name(frame))


# Where each format's export puts a frame's image, relative to the export folder.
IMAGE_PLACES: dict[str, Callable[[SingleFrame], PurePosixPath]] = {
    "coco": _in_folder(COCO_IMAGES),
    "yolo": image_path,
    "voc": _in_folder(IMAGES_DIR),
    "fiftyone": _in_folder(COCO_IMAGES),
}


async def aexport_frames(
    format_name: str, frames: list[SingleFrame], output: str | Path, *, copy_images: bool = True,
    categories: list[str] | None = None, fiftyone_dataset: str | None = None, overwrite: bool = False,
    progress: bool | None = None,
) -> ExportCounts:
    """Writes ``frames`` under ``output`` as ``format_name`` (one of :data:`FORMATS`):

    - coco: ``annotations.json``, images in ``images/``;
    - yolo: ``data.yaml``, ``labels/<split>/``, images in ``images/<split>/``;
    - voc: ``Annotations/``, images in ``JPEGImages/``;
    - fiftyone: the FiftyOne dataset ``fiftyone_dataset``, its images in ``output/images/``
      (FiftyOne samples are local files, so images are always copied).

    Without ``copy_images`` the annotations name each image by its relative
    path and the images stay where they are.

    Raises:
        ValueError: an unknown format, or fiftyone without a dataset name.
    """
    if format_name not in IMAGE_PLACES:
        raise ValueError(f"unknown format {format_name!r}; one of {', '.join(FORMATS)}")
    if format_name == "fiftyone":
        if not fiftyone_dataset:
            raise ValueError("a FiftyOne export needs the name of the dataset to create")
        copy_images = True
    place = IMAGE_PLACES[format_name]
    root = Path(output)
    root.mkdir(parents=True, exist_ok=True)
    counts = ExportCounts()
    paths: dict[str, str] = {}
    if copy_images:
        paths = await acopy_images(frames, lambda f: root / place(f), counts, progress=progress)
    written = await asyncio.to_thread(_write, format_name, frames, root, categories or [], fiftyone_dataset,
                                      paths, overwrite)
    counts.frames, counts.annotations = written.frames, written.annotations
    counts.not_written.update(written.not_written)
    counts.images_referenced.extend(written.images_referenced)
    return counts


export_frames = sync_twin(aexport_frames)


def _write(format_name: str, frames: list[SingleFrame], root: Path, categories: list[str],
           fiftyone_dataset: str | None, paths: dict[str, str], overwrite: bool) -> ExportCounts:
    if format_name == "coco":
        return write_coco(frames, root / COCO_ANNOTATIONS, categories=categories)
    if format_name == "yolo":
        return write_yolo(frames, root, categories=categories)
    if format_name == "voc":
        return write_voc(frames, root)
    from framevault.sdk.formats.fiftyone_dataset import write_fiftyone

    _, counts = write_fiftyone(frames, fiftyone_dataset or "", paths, overwrite=overwrite)
    return counts
