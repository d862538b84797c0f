"""``framevault dataset ...`` and ``framevault version ...``."""

from __future__ import annotations

from collections import Counter
from typing import Any

import click

from framevault.cli.options import json_option
from framevault.cli.output import dumps, echo_json, echo_table, when
from framevault.sdk import ChangeKind, Dataset, DatasetVersion, FrameChange

_DIFF_MARKS = {ChangeKind.added: "+", ChangeKind.changed: "~", ChangeKind.removed: "-"}


def version_record(version: DatasetVersion, names_by_id: dict[str, str]) -> dict[str, Any]:
    return {
        "id": version.version_id,
        "name": version.version_name,
        "status": version.status.value,
        "frame_count": version.frame_count,
        "parents": [names_by_id.get(p, p) for p in version.parent_ids],
        "parent_ids": version.parent_ids,
        "description": version.description,
        "metadata": version.metadata,
        "created": version.create_time,
        "published": version.publish_time,
    }


def dataset_record(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.id,
        "name": dataset.name,
        "description": dataset.description,
        "tags": dataset.tags,
        "metadata": dataset.metadata,
        "created": dataset.create_time,
        "updated": dataset.update_time,
    }


def echo_versions(versions: list[DatasetVersion]) -> None:
    names = {v.version_id: v.version_name for v in versions}
    echo_table(
        ["NAME", "STATUS", "FRAMES", "PARENT", "CREATED", "ID"],
        [[v.version_name, v.status.value, v.frame_count, ", ".join(names.get(p, p) for p in v.parent_ids) or "-",
          when(v.create_time), v.version_id] for v in versions],
    )


# --- datasets ------------------------------------------------------------------


@click.group()
def dataset() -> None:
    """Create, list and describe datasets."""


@dataset.command("create")
@click.argument("name")
@click.option("--description", "-d", default="", help="Free text.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--fail-if-exists", is_flag=True, help="Fail instead of returning an existing dataset.")
def dataset_create(name: str, description: str, tags: tuple[str, ...], fail_if_exists: bool) -> None:
    """Create dataset NAME with its empty draft version 'Current'."""
    created = Dataset.create(name, description=description, tags=list(tags), raise_if_exists=fail_if_exists)
    click.echo(f"dataset {created.name} ({created.id})")


@dataset.command("list")
@click.option("--prefix", default=None, help="Only names starting with this.")
@click.option("--tag", "tags", multiple=True, help="Only datasets with this tag (repeatable).")
@json_option
def dataset_list(prefix: str | None, tags: tuple[str, ...], as_json: bool) -> None:
    """List datasets by name."""
    datasets = Dataset.list_datasets(name_prefix=prefix, tags=list(tags))
    if as_json:
        echo_json([dataset_record(d) for d in datasets])
        return
    echo_table(["NAME", "TAGS", "CREATED", "ID"],
               [[d.name, ",".join(d.tags) or "-", when(d.create_time), d.id] for d in datasets])


@dataset.command("describe")
@click.argument("name")
@json_option
def dataset_describe(name: str, as_json: bool) -> None:
    """Show dataset NAME and its versions."""
    found = Dataset.get(name)
    versions = found.get_versions()
    if as_json:
        names = {v.version_id: v.version_name for v in versions}
        echo_json({**dataset_record(found), "versions": [version_record(v, names) for v in versions]})
        return
    click.echo(f"name:        {found.name}")
    click.echo(f"id:          {found.id}")
    click.echo(f"description: {found.description or '-'}")
    click.echo(f"tags:        {', '.join(found.tags) or '-'}")
    click.echo(f"metadata:    {dumps(found.metadata)}")
    click.echo(f"created:     {when(found.create_time)}")
    click.echo("versions:")
    echo_versions(versions)


@dataset.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete even when published versions exist.")
@click.confirmation_option(prompt="Delete the dataset with all its versions and frames?")
def dataset_delete(name: str, force: bool) -> None:
    """Delete dataset NAME with all its versions and frames."""
    Dataset.get(name).delete(force=force)
    click.echo(f"deleted dataset {name}")


# --- versions ------------------------------------------------------------------


@click.group()
def version() -> None:
    """Create, list, publish, snapshot and compare versions."""


@version.command("create")
@click.argument("dataset_name", metavar="DATASET")
@click.argument("name")
@click.option("--parent", default=None, help="Name of the published parent (none: an empty root version).")
@click.option("--description", "-d", default="", help="Free text.")
def version_create(dataset_name: str, name: str, parent: str | None, description: str) -> None:
    """Create version NAME of DATASET: a child of a published parent (copy-free) or an empty root."""
    created = DatasetVersion.create_version(dataset_name, name, parent_version_name=parent, description=description,
                                            raise_if_exists=True)
    click.echo(f"version {dataset_name}/{created.version_name} ({created.version_id}, {created.status.value}, "
               f"{created.frame_count} frames)")


@version.command("list")
@click.argument("dataset_name", metavar="DATASET")
@json_option
def version_list(dataset_name: str, as_json: bool) -> None:
    """List the versions of DATASET, oldest first, with their parents."""
    versions = DatasetVersion.get_versions(dataset_name)
    if as_json:
        names = {v.version_id: v.version_name for v in versions}
        echo_json([version_record(v, names) for v in versions])
        return
    echo_versions(versions)


@version.command("publish")
@click.argument("dataset_name", metavar="DATASET")
@click.argument("name")
def version_publish(dataset_name: str, name: str) -> None:
    """Publish draft NAME of DATASET (read-only from then on)."""
    published = DatasetVersion.get_version(dataset_name, name).publish_version()
    click.echo(f"published {dataset_name}/{published.version_name} ({published.frame_count} frames)")


@version.command("snapshot")
@click.argument("dataset_name", metavar="DATASET")
@click.option("--version", "version_name", default="Current", show_default=True, help="The draft to snapshot.")
@click.option("--name", "snapshot_name", default=None, help="Snapshot name (default: 'snapshot <UTC time>').")
@click.option("--description", "-d", default="", help="Free text.")
def version_snapshot(dataset_name: str, version_name: str, snapshot_name: str | None, description: str) -> None:
    """Publish a draft as a snapshot and reopen the draft on top of it."""
    snapshot = DatasetVersion.create_snapshot(dataset_name, snapshot_name, version_name=version_name,
                                              description=description)
    click.echo(f"snapshot {dataset_name}/{snapshot.version_name} ({snapshot.version_id}, {snapshot.frame_count} "
               f"frames); draft {version_name} continues from it")


@version.command("diff")
@click.argument("dataset_name", metavar="DATASET")
@click.argument("base")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per change (JSON Lines).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Show at most this many changes and print the --page-token that continues after them.")
@click.option("--page-token", default="", metavar="TOKEN", help="Continue after the changes an earlier --limit showed.")
def version_diff(dataset_name: str, base: str, target: str, as_json: bool, limit: int | None, page_token: str) -> None:
    """Frames added (+), changed (~) and removed (-) from version BASE to version TARGET."""
    base_version = DatasetVersion.get_version(dataset_name, base)
    target_version = DatasetVersion.get_version(dataset_name, target)
    counts: Counter[ChangeKind] = Counter()

    def show(change: FrameChange) -> None:
        counts[change.kind] += 1
        if as_json:
            click.echo(dumps({"frame_id": change.frame_id, "kind": change.kind.value}))
        else:
            click.echo(f"{_DIFF_MARKS[change.kind]} {change.frame_id}")

    next_page_token = ""
    if limit is None:
        with base_version.iter_diff(target_version, page_token=page_token) as changes:
            for change in changes:
                show(change)
    else:
        page = base_version.diff_page(target_version, limit, page_token)
        for change in page.changes:
            show(change)
        next_page_token = page.next_page_token
    click.echo(f"{counts[ChangeKind.added]} added, {counts[ChangeKind.changed]} changed, "
               f"{counts[ChangeKind.removed]} removed", err=True)
    if next_page_token:
        click.echo(f"more changes follow: --page-token {next_page_token}", err=True)
