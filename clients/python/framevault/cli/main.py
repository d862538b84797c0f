"""The ``framevault`` command line: datasets, versions, ingest, export, blobs.

Connection settings (service addresses, TLS files, token) come from the
options, else the environment (``FRAMEVAULT_METADATA_TARGET``,
``FRAMEVAULT_CA_FILE``, ``FRAMEVAULT_TOKEN`` ...), else the client config file
(``$FRAMEVAULT_CONFIG`` or ``~/.config/framevault/client.toml``), exactly as
the SDK reads them (``framevault.sdk.settings``). Failures print
the server's message and every offending field to stderr; the exit code is 2
for bad usage or an invalid argument, 1 for any other failure.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import grpc

from framevault.cli import blobs, catalog, export, formats, ingest
from framevault.sdk import FramevaultError, configure
from framevault.sdk.settings import SettingsError, env_name

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
        except SettingsError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(USAGE_EXIT)
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): stop quietly.
            sys.stderr.close()
            ctx.exit(FAILURE_EXIT)


def _env_help(field: str, default: str = "") -> str:
    return f"[env {env_name(field)}{'; default ' + default if default else ''}]"


@click.group(cls=FramevaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--metadata", "metadata_target", metavar="TARGET",
              help="Metadata service: HOST:PORT, replicas as IP:PORT,IP:PORT or dns:///NAME:PORT, calls spread "
                   f"round-robin {_env_help('metadata_target', '127.0.0.1:50051')}.")
@click.option("--blob", "blob_target", metavar="TARGET",
              help=f"Blob service, written as --metadata {_env_help('blob_target', '127.0.0.1:50052')}.")
@click.option("--ca-file", type=click.Path(dir_okay=False), metavar="PEM",
              help=f"CA certificates the services' certificates are checked against; implies TLS "
                   f"{_env_help('ca_file')}.")
@click.option("--client-cert", "client_cert_file", type=click.Path(dir_okay=False), metavar="PEM",
              help=f"Client certificate for services that require mutual TLS {_env_help('client_cert_file')}.")
@click.option("--client-key", "client_key_file", type=click.Path(dir_okay=False), metavar="PEM",
              help=f"Key of the client certificate {_env_help('client_key_file')}.")
@click.option("--token-file", type=click.Path(dir_okay=False), metavar="PATH",
              help=f"File holding the API key or JWT sent as the bearer token {_env_help('token_file')}.")
@click.option("--token", metavar="TOKEN",
              help=f"API key or JWT sent as the bearer token {_env_help('token')}; prefer the variable or "
                   f"--token-file, a flag shows in the process list.")
@click.option("--plaintext/--tls", "plaintext", default=None,
              help=f"Connect without TLS, or insist on TLS {_env_help('plaintext')}; by default TLS is used "
                   f"when a CA file or client certificate is set.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="Deadline of each unary call (default 30).")
@click.version_option(package_name="framevault", prog_name="framevault")
def cli(timeout: float | None, **connection: Any) -> None:
    """framevault: versioned datasets of annotated frames."""
    if connection["token_file"] and connection["token"] is None:
        connection["token"] = ""  # an explicit --token-file beats a token from the environment or config file
    configure(call_timeout_seconds=timeout, **connection)


cli.add_command(catalog.dataset)
cli.add_command(catalog.version)
cli.add_command(ingest.ingest)
cli.add_command(export.export)
cli.add_command(formats.import_format)
cli.add_command(formats.export_as)
cli.add_command(blobs.blob)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="framevault")


if __name__ == "__main__":
    main()
