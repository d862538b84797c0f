"""Options several commands take, declared once so they read and behave the same everywhere."""

from __future__ import annotations

import click

progress_option = click.option(
    "--progress/--no-progress", default=None, help="Progress bars (default: when stderr is a terminal).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
# For commands that write frames into a draft.
upload_retries_option = click.option(
    "--retries", type=click.IntRange(0, 10), default=3, show_default=True,
    help="Service-side retries per frame for transient failures.")
no_create_option = click.option(
    "--no-create", "no_create", is_flag=True, help="Fail if the dataset or version does not exist.")
# For commands that read a version.
read_dataset_option = click.option("--dataset", "dataset_name", required=True, help="Dataset to read.")
read_version_option = click.option(
    "--version", "version_name", default="Current", show_default=True, help="Version to read.")
