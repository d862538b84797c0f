"""The SDK keeps to the services' limits: it takes the request limits from framevault.api.limits, as
the services do, falls back to the blob service's own batch defaults, and needs no module of the
services to run."""

from __future__ import annotations

import subprocess
import sys

from framevault.api import limits
from framevault.cli import export
from framevault.common.config import Settings
from framevault.common.errors import FieldErrors
from framevault.metadata.catalog import page_tokens
from framevault.metadata.frames import operations
from framevault.sdk import blobs, dataview, version_frames


def test_the_sdk_and_the_service_take_their_request_limits_from_one_place():
    assert page_tokens.MAX_PAGE_SIZE is dataview.MAX_PAGE_SIZE is export.MAX_PAGE_SIZE is limits.MAX_PAGE_SIZE
    assert page_tokens.DEFAULT_PAGE_SIZE is dataview.DEFAULT_PAGE_SIZE is limits.DEFAULT_PAGE_SIZE
    assert operations.MAX_DELETE_IDS is version_frames.MAX_DELETE_IDS is limits.MAX_DELETE_IDS


def test_the_service_refuses_a_page_just_over_the_limit_the_sdk_keeps_to():
    errors = FieldErrors()
    assert page_tokens.check_page_size(limits.MAX_PAGE_SIZE, "page_size", errors) == limits.MAX_PAGE_SIZE
    assert page_tokens.check_page_size(0, "page_size", errors) == limits.DEFAULT_PAGE_SIZE
    assert not errors
    page_tokens.check_page_size(limits.MAX_PAGE_SIZE + 1, "page_size", errors)
    assert [violation.field for violation in errors.violations] == ["page_size"]


def test_the_sdk_batch_fallbacks_are_the_blob_service_defaults():
    defaults = Settings()
    assert blobs.DEFAULT_MAX_BATCH_BLOBS == defaults.blob_max_batch_blobs
    assert blobs.DEFAULT_MAX_BATCH_TOTAL_BYTES == defaults.blob_max_batch_total_size_bytes


def test_the_sdk_and_its_cli_import_no_module_of_the_services():
    services = ("framevault.metadata", "framevault.blob", "framevault.common", "framevault.auth",
                "framevault.gateway")
    script = ("import sys, framevault.sdk, framevault.cli.main; "
              f"print(sorted(m for m in sys.modules if m.startswith({services!r})))")
    imported = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"
