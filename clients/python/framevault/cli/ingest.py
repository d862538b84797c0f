"""``framevault ingest FOLDER``: a folder of images (and COCO annotations) into a version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import click

from framevault.cli.coco import CocoError, CocoIndex, load_coco
from framevault.sdk import Dataset, DatasetVersion, NotFoundError, SingleFrame
from framevault.sdk.progress import progress_enabled

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def image_files(folder: Path, recursive: bool) -> list[Path]:
    """Image files under ``folder``, sorted by relative path."""
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in pattern if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def pillow_image() -> ModuleType:
    """``PIL.Image``; Pillow is an optional dependency of the SDK (the ``images`` extra)."""
    try:
        from PIL import Image
    except ImportError:
        raise click.ClickException(
            "framevault ingest reads image sizes with Pillow, which is not installed: "
            "pip install 'framevault[images]'") from None
    return Image


def image_size(path: Path) -> tuple[int | None, int | None]:
    """Width and height from the file header (None when Pillow cannot tell)."""
    image_module = pillow_image()
    try:
        with image_module.open(path) as image:
            return image.size
    except (OSError, image_module.UnidentifiedImageError):
        return None, None


def folder_frames(
    folder: Path, files: list[Path], coco: CocoIndex | None, sequence: bool, fps: float,
) -> Iterator[SingleFrame]:
    """One frame per image; ids are relative paths, so ingesting again updates instead of duplicating.

    Stills are each their own context at timestamp 0; with ``sequence`` every
    folder is one context (a video as frames) and timestamps follow ``fps``.
    """
    position_in_folder: dict[Path, int] = {}
    for path in files:
        relative = path.relative_to(folder).as_posix()
        coco_image = coco.find(relative) if coco else None
        width, height = (coco_image.width, coco_image.height) if coco_image and coco_image.width else (None, None)
        if width is None:
            width, height = image_size(path)
        metadata: dict[str, object] = {"file_name": relative}
        if coco_image is not None:
            metadata["coco_image_id"] = coco_image.id
        if sequence:
            index = position_in_folder.get(path.parent, 0)
            position_in_folder[path.parent] = index + 1
            context = path.parent.relative_to(folder).as_posix() or "."
            timestamp = round(index * 1000 / fps)
        else:
            context, timestamp = relative, 0
        frame = SingleFrame(source=str(path), width=width, height=height, timestamp=timestamp, context_id=context,
                            metadata=metadata, id=relative)
        if coco_image is not None and coco is not None:
            frame.annotations.extend(coco.annotations_of(coco_image))
        yield frame


def target_version(dataset_name: str, version_name: str, create_dataset: bool) -> DatasetVersion:
    """The draft to ingest into; creates the dataset (and a missing root version) when allowed."""
    if create_dataset:
        Dataset.create(dataset_name)
    try:
        return DatasetVersion.get_version(dataset_name, version_name)
    except NotFoundError:
        if not create_dataset or version_name == "Current":
            raise
        created = DatasetVersion.create_version(dataset_name, version_name)
        click.echo(f"created version {dataset_name}/{version_name}", err=True)
        return created


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--dataset", "dataset_name", required=True, help="Dataset to ingest into (created if missing).")
@click.option("--version", "version_name", default="Current", show_default=True,
              help="Draft version (created as a root version if missing).")
@click.option("--coco", "coco_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="COCO annotations (instances/keypoints JSON); boxes, polygons and keypoints become ROIs.")
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="Descend into sub-folders.")
@click.option("--sequence", is_flag=True, help="Treat each folder as one video: context = folder, timestamps by --fps.")
@click.option("--fps", type=click.FloatRange(min=0.001), default=30.0, show_default=True,
              help="Frame rate for --sequence timestamps.")
@click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True,
              help="Service-side retries per frame for transient failures.")
@click.option("--no-create", "no_create", is_flag=True, help="Fail if the dataset or version does not exist.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: when stderr is a terminal).")
def ingest(
    folder: Path, dataset_name: str, version_name: str, coco_file: Path | None, recursive: bool, sequence: bool,
    fps: float, retries: int, no_create: bool, progress: bool | None,
) -> None:
    """Ingest the images of FOLDER into a dataset version.

    Image bytes go to the blob service (only those it lacks); each image
    becomes a frame whose id is its path relative to FOLDER.
    """
    pillow_image()
    try:
        coco = load_coco(coco_file) if coco_file else None
    except CocoError as exc:
        raise click.BadParameter(str(exc), param_hint="--coco") from None
    files = image_files(folder, recursive)
    if not files:
        raise click.UsageError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    draft = target_version(dataset_name, version_name, create_dataset=not no_create)
    if coco is not None:
        unmatched = sum(1 for f in files if coco.find(f.relative_to(folder).as_posix()) is None)
        if unmatched:
            click.echo(f"warning: {unmatched} of {len(files)} images have no entry in {coco_file}", err=True)
    try:
        totals = draft.add_frames_with_totals(folder_frames(folder, files, coco, sequence, fps),
                                              upload_retries=retries, progress=progress_enabled(progress))
    except CocoError as exc:
        raise click.BadParameter(str(exc), param_hint="--coco") from None
    if coco is not None and coco.skipped_rle:
        click.echo(f"warning: skipped {coco.skipped_rle} run-length-encoded segmentations (no polygon form)",
                   err=True)
    for failure in totals.failed:
        frame_id = failure.frame_id or getattr(failure.frame, "id", "") or "?"
        click.echo(f"failed: {frame_id}: {failure.error.describe()}", err=True)
        for line in failure.error.detail_lines():
            click.echo(f"  {line}", err=True)
    click.echo(f"ingested {totals.created + totals.updated + totals.unchanged} of {len(files)} images into "
               f"{dataset_name}/{version_name}: {totals.created} created, {totals.updated} updated, "
               f"{totals.unchanged} unchanged, {len(totals.failed)} failed")
    if totals.failed:
        raise click.exceptions.Exit(1)
