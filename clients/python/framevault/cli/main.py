"""The ``framevault`` command line: datasets, versions, ingest, export, blobs.

Service addresses come from ``--metadata`` / ``--blob`` or the environment
(``FRAMEVAULT_METADATA_TARGET`` / ``FRAMEVAULT_BLOB_TARGET``). Failures print
the server's message and every offending field to stderr; the exit code is 2
for bad usage or an invalid argument, 1 for any other failure.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import grpc

from framevault.cli import blobs, catalog, export, ingest
from framevault.sdk import FramevaultError, configure
from framevault.sdk.settings import BLOB_TARGET_ENV, METADATA_TARGET_ENV

USAGE_EXIT = 2
FAILURE_EXIT = 1


def report_error(error: FramevaultError) -> None:
    """Prints a failed call the way people can act on: the message, then each field at fault."""
    click.echo(f"error: {error.describe()}", err=True)
    for line in error.detail_lines():
        click.echo(f"  {line}", err=True)


def exit_code_for(error: FramevaultError) -> int:
    return USAGE_EXIT if error.code == grpc.StatusCode.INVALID_ARGUMENT else FAILURE_EXIT


class FramevaultGroup(click.Group):
    """Turns SDK errors raised by any subcommand into messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FramevaultError as error:
            report_error(error)
            ctx.exit(exit_code_for(error))
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): stop quietly.
            sys.stderr.close()
            ctx.exit(FAILURE_EXIT)


@click.group(cls=FramevaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--metadata", "metadata_target", envvar=METADATA_TARGET_ENV, metavar="HOST:PORT",
              help=f"Metadata service address [env {METADATA_TARGET_ENV}; default 127.0.0.1:50051].")
@click.option("--blob", "blob_target", envvar=BLOB_TARGET_ENV, metavar="HOST:PORT",
              help=f"Blob service address [env {BLOB_TARGET_ENV}; default 127.0.0.1:50052].")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="Deadline of each unary call (default 30).")
@click.version_option(package_name="framevault", prog_name="framevault")
def cli(metadata_target: str | None, blob_target: str | None, timeout: float | None) -> None:
    """framevault: versioned datasets of annotated frames."""
    configure(metadata_target=metadata_target, blob_target=blob_target, call_timeout_seconds=timeout)


cli.add_command(catalog.dataset)
cli.add_command(catalog.version)
cli.add_command(ingest.ingest)
cli.add_command(export.export)
cli.add_command(blobs.blob)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="framevault")


if __name__ == "__main__":
    main()
