"""The FiftyOne test environment: a virtualenv of its own, on the pins of requirements-fiftyone.lock.

fiftyone pins MongoDB drivers (motor ~=3.6, pymongo ~=4.9) older than the
services' (requirements.lock), so it cannot live in the dev venv. It is built
once per machine and lock content (about 3.5 minutes and 1 GB with an empty pip
cache) in the local stack's cache folder (``~/.cache/framevault/``, ``$FRAMEVAULT_CACHE_DIR``), reused by every checkout and CI run on
the machine, and runs the SDK and CLI from this checkout's sources (PYTHONPATH).
FiftyOne keeps its datasets in a database of the stack's mongod named after the
test session's (``<session database>_fiftyone``), never its own server.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from framevault.stack.settings import cache_dir

REPO = Path(__file__).resolve().parents[2]
LOCK_FILE = REPO / "requirements-fiftyone.lock"
TOOL = Path(__file__).with_name("fiftyone_tool.py")
# An interpreter that already has the lock's packages (skips the build).
PYTHON_OVERRIDE = "FRAMEVAULT_FIFTYONE_PYTHON"
BUILD_TIMEOUT_SECONDS = 1500
RUN_TIMEOUT_SECONDS = 600


def environment_python() -> Path:
    """The FiftyOne environment's interpreter, building the environment first if needed."""
    override = os.environ.get(PYTHON_OVERRIDE)
    if override:
        return Path(override)
    digest = hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()[:12]
    root = cache_dir()
    target = root / f"fiftyone-env-{digest}"
    python = target / "bin" / "python"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"fiftyone-env-{digest}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # another test session may be building the same one
        if (target / "complete").is_file():
            return python
        shutil.rmtree(target, ignore_errors=True)  # an interrupted build
        subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(LOCK_FILE)], check=True, timeout=BUILD_TIMEOUT_SECONDS)
        (target / "complete").write_text(digest)
    return python


def fiftyone_environ(mongodb_uri: str, database: str, **extra: str) -> dict[str, str]:
    """The environment of a process in the FiftyOne environment: this checkout's SDK, the stack's mongod."""
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith(("FIFTYONE_", "PYTHON"))},
        "PYTHONPATH": os.pathsep.join([str(REPO / "clients" / "python"), str(REPO / "clients" / "python-api")]),
        "FIFTYONE_DATABASE_URI": mongodb_uri,
        "FIFTYONE_DATABASE_NAME": database,
        # The stack's MongoDB is older than FiftyOne's newest; the tests need none of the newer features.
        "FIFTYONE_DATABASE_VALIDATION": "false",
        "FIFTYONE_DO_NOT_TRACK": "true",
        "FRAMEVAULT_CONFIG": "",
        **extra,
    }


def run_in_fiftyone(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Runs ``python ARGS`` in the FiftyOne environment; fails the test with its output on a non-zero exit."""
    done = subprocess.run([str(environment_python()), *args], capture_output=True, text=True, env=environ,
                          timeout=RUN_TIMEOUT_SECONDS, cwd=REPO)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}\n--- stdout\n{done.stdout}\n"
                             f"--- stderr\n{done.stderr}")
    return done


def fiftyone_tool(environ: dict[str, str], *args: str) -> Any:
    """The JSON that ``fiftyone_tool.py ARGS`` prints on its last line."""
    done = run_in_fiftyone(environ, str(TOOL), *args)
    return json.loads(done.stdout.strip().splitlines()[-1])
