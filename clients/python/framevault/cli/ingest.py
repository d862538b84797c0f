"""``framevault ingest FOLDER``: a folder of images (and COCO annotations) into a version."""

from __future__ import annotations

from pathlib import Path

import click

from framevault.cli.options import no_create_option, progress_option, upload_retries_option
from framevault.sdk import Dataset, DatasetVersion, FailedFrame, NotFoundError
from framevault.sdk.formats import IMAGE_SUFFIXES, FormatError, read_image_folder
from framevault.sdk.progress import progress_enabled


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


def echo_failed_frames(failed: list[FailedFrame]) -> None:
    """Each frame the service did not register, with its error and the fields at fault, on stderr."""
    for failure in failed:
        frame_id = failure.frame_id or getattr(failure.frame, "id", "") or "?"
        click.echo(f"failed: {frame_id}: {failure.error.describe()}", err=True)
        for line in failure.error.detail_lines():
            click.echo(f"  {line}", err=True)


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--dataset", "dataset_name", required=True, help="Dataset to ingest into (created if missing).")
@click.option("--version", "version_name", default="Current", show_default=True,
              help="Draft version (created as a root version if missing).")
@click.option("--coco", "coco_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="COCO annotations (instances/keypoints JSON); boxes, polygons, RLE masks and keypoints become ROIs.")
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="Descend into sub-folders.")
@click.option("--sequence", is_flag=True, help="Treat each folder as one video: context = folder, timestamps by --fps.")
@click.option("--fps", type=click.FloatRange(min=0.001), default=30.0, show_default=True,
              help="Frame rate for --sequence timestamps.")
@upload_retries_option
@no_create_option
@progress_option
def ingest(
    folder: Path, dataset_name: str, version_name: str, coco_file: Path | None, recursive: bool, sequence: bool,
    fps: float, retries: int, no_create: bool, progress: bool | None,
) -> None:
    """Ingest the images of FOLDER into a dataset version.

    Image bytes go to the blob service (only those it lacks); each image
    becomes a frame whose id is its path relative to FOLDER.
    """
    try:
        images = read_image_folder(folder, coco_file=coco_file, recursive=recursive, sequence=sequence, fps=fps)
    except ImportError as exc:  # Pillow (the images extra), pycocotools for RLE masks (the coco extra)
        raise click.ClickException(str(exc)) from None
    except FormatError as exc:
        raise click.BadParameter(str(exc), param_hint="--coco") from None
    files = images.files
    if not files:
        raise click.UsageError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    draft = target_version(dataset_name, version_name, create_dataset=not no_create)
    if images.unmatched:
        click.echo(f"warning: {len(images.unmatched)} of {len(files)} images have no entry in {coco_file}", err=True)
    for issue in images.issues:
        click.echo(f"left out: {issue}", err=True)
    totals = draft.add_frames_with_totals(images.frames(), upload_retries=retries,
                                          progress=progress_enabled(progress))
    echo_failed_frames(totals.failed)
    click.echo(f"ingested {totals.created + totals.updated + totals.unchanged} of {len(files)} images into "
               f"{dataset_name}/{version_name}: {totals.created} created, {totals.updated} updated, "
               f"{totals.unchanged} unchanged, {len(totals.failed)} failed")
    if totals.failed:
        raise click.exceptions.Exit(1)
