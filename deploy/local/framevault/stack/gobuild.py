"""The Go toolchain the S3 servers' binaries are built with, once, into the cache (settings.cache_dir)."""

from __future__ import annotations

import os
import shutil

from .supervision import StackError


def find_go(binary: str, override_variable: str) -> str:
    """Path of ``go``; ``binary`` and ``override_variable`` name what needs it in the error."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if not go:
        raise StackError(
            f"the {binary} binary must be built once, but no Go toolchain was found on PATH "
            f"(install Go >= the version in its go.mod, or set {override_variable})"
        )
    return go


def go_env() -> dict[str, str]:
    """The environment of ``go`` commands: outside any workspace, no VCS stamping, static binaries."""
    env = dict(os.environ)
    env["GOWORK"] = "off"
    env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -buildvcs=false").strip()
    env.setdefault("CGO_ENABLED", "0")
    return env
