"""``framevault import FORMAT`` and ``framevault export-as FORMAT``: COCO, YOLO, Pascal VOC and
FiftyOne datasets in and out of versions (``framevault.sdk.formats``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from framevault.cli.ingest import echo_failed_frames, target_version
from framevault.cli.options import (
    no_create_option,
    progress_option,
    read_dataset_option,
    read_version_option,
    upload_retries_option,
)
from framevault.sdk.formats import (
    FORMATS,
    FormatError,
    ReadResult,
    export_frames,
    import_frames,
    read_coco,
    read_voc,
    read_yolo,
    select_frames,
)
from framevault.sdk.progress import progress_enabled
from framevault.sdk.upload import UploadTotals

USAGE_EXIT = 2


def read_source(format_name: str, source: str, images: Path | None, labels: tuple[str, ...], progress: bool,
                ) -> ReadResult:
    """The frames of ``source`` in ``format_name``; malformed input is a usage error naming file, record and field."""
    try:
        if format_name == "coco":
            return read_coco(source, images if images is not None else Path(source).parent)
        if format_name == "yolo":
            return read_yolo(source, progress=progress)
        if format_name == "voc":
            return read_voc(source, images_dir=images, labels=list(labels) or None)
        from framevault.sdk.formats.fiftyone_dataset import read_fiftyone

        return read_fiftyone(source, progress=progress)
    except FormatError as exc:
        raise click.BadParameter(str(exc), param_hint="SOURCE") from None
    except ImportError as exc:  # an optional extra
        raise click.ClickException(str(exc)) from None


@click.command("import")
@click.argument("format_name", metavar="FORMAT", type=click.Choice(FORMATS))
@click.argument("source")
@click.option("--dataset", "dataset_name", required=True, help="Dataset to import into (created if missing).")
@click.option("--version", "version_name", default="Current", show_default=True,
              help="Draft version (created as a root version if missing).")
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder the images are in (coco: default the annotation file's folder; voc: default "
                   "SOURCE/JPEGImages).")
@click.option("--label", "labels", multiple=True,
              help="voc: a known class (repeat); objects of other classes are left out as unknown.")
@click.option("--upload/--reference", "upload", default=True, show_default=True,
              help="Upload images to the blob service, or reference them where they are (file:// or their URI).")
@click.option("--dry-run", is_flag=True, help="Report what would be imported; write nothing.")
@click.option("--strict", is_flag=True, help="Import nothing if any record would be left out.")
@upload_retries_option
@no_create_option
@progress_option
def import_format(format_name: str, source: str, dataset_name: str, version_name: str, images: Path | None,
                  labels: tuple[str, ...], upload: bool, dry_run: bool, strict: bool, retries: int, no_create: bool,
                  progress: bool | None) -> None:
    """Import SOURCE (coco: the annotation JSON; yolo: data.yaml or its folder; voc: the folder holding
    Annotations/; fiftyone: a dataset name) into a dataset version.

    Records that cannot be imported (missing image, box outside the image,
    unknown category) are listed on stderr and the rest is imported; a
    malformed file imports nothing and names the file, record and field.
    """
    read = read_source(format_name, source, images, labels, progress_enabled(progress))
    for issue in read.issues:
        click.echo(f"left out: {issue}", err=True)
    if strict and read.issues:
        click.echo(f"error: {len(read.issues)} records would be left out; nothing imported (--strict)", err=True)
        raise click.exceptions.Exit(USAGE_EXIT)
    if dry_run:
        click.echo(json.dumps({"dry_run": True, **read.summary()}, indent=2))
        return
    draft = target_version(dataset_name, version_name, create_dataset=not no_create)
    report = import_frames(draft, read, upload_images=upload, upload_retries=retries,
                           progress=progress_enabled(progress))
    totals = report.totals or UploadTotals()
    echo_failed_frames(totals.failed)
    click.echo(f"imported {totals.created + totals.updated + totals.unchanged} of {len(read.frames)} frames "
               f"({read.annotation_count} annotations) into {dataset_name}/{version_name}: {totals.created} created, "
               f"{totals.updated} updated, {totals.unchanged} unchanged, {len(totals.failed)} failed, "
               f"{len(read.issues)} records left out")
    if totals.failed:
        raise click.exceptions.Exit(1)


@click.command("export-as")
@click.argument("format_name", metavar="FORMAT", type=click.Choice(FORMATS))
@click.argument("output", type=click.Path(file_okay=False, path_type=Path))
@read_dataset_option
@read_version_option
@click.option("--query", "-q", default=None, help="Only the frames matching this Lucene-style filter.")
@click.option("--diff-base", default=None, metavar="VERSION",
              help="Only the frames added or changed since VERSION (removed ones are listed in removed.txt).")
@click.option("--copy-images/--reference-images", "copy_images", default=True, show_default=True,
              help="Copy the images beside the annotations (blobs downloaded), or only name them.")
@click.option("--category", "categories", multiple=True,
              help="Class order (COCO ids 1.., YOLO indices 0..); other labels follow sorted.")
@click.option("--fiftyone-dataset", default=None, help="fiftyone: name of the FiftyOne dataset to create.")
@click.option("--overwrite", is_flag=True, help="fiftyone: replace a FiftyOne dataset of that name.")
@progress_option
def export_as(format_name: str, output: Path, dataset_name: str, version_name: str, query: str | None,
              diff_base: str | None, copy_images: bool, categories: tuple[str, ...], fiftyone_dataset: str | None,
              overwrite: bool, progress: bool | None) -> None:
    """Write a version (or a query over it, or its difference from --diff-base) to OUTPUT as FORMAT."""
    if format_name == "fiftyone" and not fiftyone_dataset:
        raise click.UsageError("fiftyone needs --fiftyone-dataset NAME")
    shown = progress_enabled(progress)
    selection = select_frames(dataset_name, version_name, query=query, diff_base=diff_base, progress=shown)
    try:
        counts = export_frames(format_name, selection.frames, output, copy_images=copy_images,
                               categories=list(categories), fiftyone_dataset=fiftyone_dataset, overwrite=overwrite,
                               progress=shown)
    except ImportError as exc:  # an optional extra
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if diff_base is not None:
        (output / "removed.txt").write_text("".join(f"{frame_id}\n" for frame_id in selection.removed),
                                            encoding="utf-8")
    for frame_id in selection.skipped_groups:
        click.echo(f"not exported: {frame_id}: a frame with several sources", err=True)
    for kind, count in sorted(counts.not_written.items()):
        click.echo(f"not exported: {count} {kind} annotations ({format_name} has no place for them)", err=True)
    for frame_id in counts.images_referenced:
        click.echo(f"image not copied: {frame_id}: its source is neither a local file nor a blob", err=True)
    click.echo(f"exported {counts.frames} frames ({counts.annotations} annotations, {counts.images_copied} images "
               f"copied) to {output}" + (f"; {len(selection.removed)} removed since {diff_base}" if diff_base else ""))
