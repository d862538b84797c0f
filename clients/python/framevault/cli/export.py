"""``framevault export``: a view of a version as JSON Lines."""

from __future__ import annotations

from typing import IO

import click

from framevault.api.limits import MAX_PAGE_SIZE
from framevault.cli.options import read_dataset_option, read_version_option
from framevault.cli.output import dumps
from framevault.sdk import DataView, IterationOrder
from framevault.sdk.frame_codec import frame_to_json_dict


@click.command()
@read_dataset_option
@read_version_option
@click.option("--query", "-q", default=None,
              help='Lucene-style filter, e.g. \'label:car AND meta.city:"bremen" AND source.width:>=640\'.')
@click.option("--order", type=click.Choice([o.value for o in IterationOrder if o is not IterationOrder.metadata]),
              default="sequential", show_default=True,
              help="sequential: by context, then timestamp; random: seeded shuffle.")
@click.option("--sort", "sort_key", default=None, metavar="meta.<key>",
              help="Order by a frame-metadata key instead, e.g. meta.speed (frames without it last; "
                   "read page by page).")
@click.option("--descending", is_flag=True, help="With --sort: largest value first.")
@click.option("--seed", type=click.IntRange(min=0), default=1337, show_default=True, help="Seed of the random order.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many frames.")
@click.option("--shard", default=None, metavar="I/N", help="Only worker I's share of N (e.g. 0/4).")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-", show_default=True,
              help="Where to write (default stdout).")
def export(dataset_name: str, version_name: str, query: str | None, order: str, sort_key: str | None,
           descending: bool, seed: int, limit: int | None, shard: str | None, output: IO[str]) -> None:
    """Stream the frames of a version (optionally filtered) as JSON Lines, one frame per line."""
    shard_index, shard_count = _parse_shard(shard)
    view = DataView(iteration_order=order, maximum_number_of_frames=limit, random_seed=seed)
    view.add_query(dataset_name=dataset_name, version_name=version_name, query=query)
    count = 0
    if sort_key is not None:
        if shard_count > 1 or order != "sequential":
            raise click.UsageError("--sort orders the whole view: it takes neither --shard nor --order")
        try:
            view.set_sort(sort_key, descending)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--sort") from None
        token = ""
        while True:
            page = view.get_page(MAX_PAGE_SIZE, token)
            for proto in page.protos:
                output.write(dumps(frame_to_json_dict(proto)) + "\n")
                count += 1
            token = page.next_page_token
            if not token:
                break
    elif descending:
        raise click.UsageError("--descending applies to --sort meta.<key>")
    else:
        with view.get_iterator(shard_index, shard_count, as_proto=True) as frames:
            for frame in frames:
                output.write(dumps(frame_to_json_dict(frame)) + "\n")  # type: ignore[arg-type]
                count += 1
    output.flush()
    click.echo(f"exported {count} frames", err=True)


def _parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    try:
        index, count = (int(part) for part in text.split("/", 1))
    except ValueError:
        raise click.BadParameter("expected I/N, e.g. 0/4", param_hint="--shard") from None
    if not 0 <= index < count:
        raise click.BadParameter("need 0 <= I < N", param_hint="--shard")
    return index, count
