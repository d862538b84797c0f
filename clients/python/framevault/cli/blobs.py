"""``framevault blob put|get``: raw bytes by content digest."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from framevault.cli.options import progress_option
from framevault.sdk import BlobTransfer, parse_digest
from framevault.sdk.runtime import current_client, run_sync


@click.group()
def blob() -> None:
    """Store and fetch raw bytes by digest (blob:sha256/<hash>/<size>)."""


@blob.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@progress_option
def blob_put(file: Path, progress: bool | None) -> None:
    """Upload FILE (unless the store has it) and print its blob URI."""

    async def put() -> str:
        return (await BlobTransfer(current_client(), progress=progress).upload_file(str(file))).uri

    click.echo(run_sync(put()))


@blob.command("get")
@click.argument("digest")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default stdout).")
def blob_get(digest: str, output: Path | None) -> None:
    """Download the blob DIGEST (blob:sha256/<hash>/<size>, or <hash>/<size>)."""
    try:
        parsed = parse_digest(digest)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="DIGEST") from None

    async def get_to_file(target: Path) -> None:
        await BlobTransfer(current_client()).read_to_file(parsed, target)

    async def get_bytes() -> bytes:
        return await BlobTransfer(current_client()).read_bytes(parsed)

    if output is None:
        sys.stdout.buffer.write(run_sync(get_bytes()))
        sys.stdout.buffer.flush()
        return
    run_sync(get_to_file(output))
    click.echo(f"wrote {parsed.size} bytes to {output}", err=True)
