"""The Python quickstart of the root README runs as written, as a plain script."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from support import client_tls_env

from framevault.sdk import ClientSettings

from .helpers import make_image

README = Path(__file__).resolve().parents[2] / "README.md"


def quickstart_python() -> str:
    section = README.read_text(encoding="utf-8").split("## Quickstart", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)  # type: ignore[union-attr]


async def test_readme_python_quickstart_runs(sdk: ClientSettings, tmp_path: Path) -> None:
    make_image(tmp_path / "images" / "0001.jpg", (64, 48))
    # A fresh dataset name, so the script's snapshot name is free.
    code = quickstart_python().replace('"drives"', f'"quickstart-{uuid.uuid4().hex[:8]}"')
    env = {**os.environ, **client_tls_env(), "FRAMEVAULT_METADATA_TARGET": sdk.metadata_target,
           "FRAMEVAULT_BLOB_TARGET": sdk.blob_target}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", code], cwd=tmp_path, env=env,
                                   capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "(['car'], [1])" in done.stdout
