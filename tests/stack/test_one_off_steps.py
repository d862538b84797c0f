"""The one-off steps of a fresh machine: ``make install`` runs them side by side, and the stack command
that several of them call starts without loading client libraries it does not use."""

from __future__ import annotations

import re
import subprocess
import sys

from framevault.stack.settings import REPO_ROOT


def test_the_stack_command_loads_only_what_its_command_uses() -> None:
    # `framevault-stack env`, `build-weed` and `build-versitygw` talk to no database, S3 server or service.
    code = ("import sys, framevault.stack.cli; "
            "print(' '.join(sorted({'pymongo', 'minio', 'grpc', 'urllib3'} & set(sys.modules))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "", done.stdout


def test_make_install_runs_its_one_off_steps_at_once() -> None:
    # A dry run (-n) names the commands without running them; the sub-make runs the steps with -j.
    done = subprocess.run(["make", "-n", "--no-print-directory", "install"], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=True, timeout=120)
    (sub_make,) = [line for line in done.stdout.splitlines() if line.endswith("install-steps")]
    assert re.search(r" -j\d+ ", sub_make), sub_make
    listed = subprocess.run(["make", "-pn", "--no-print-directory", "install-steps"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True, timeout=120).stdout
    (steps,) = [line for line in listed.splitlines() if line.startswith("install-steps:")]
    # The S3 server builds (the stack's, the storage tests'), the codec, the FiftyOne environment and PyTorch.
    for stamp in (".venv/.seaweedfs", ".venv/.versitygw", ".venv/.fiftyone", ".venv/.torch", ".venv/.codec",
                  ".venv/.installed"):
        assert stamp in steps.split(), steps
