"""The harness cleans up after itself: a run stopped with SIGTERM still stops
its services and removes the database and bucket it made, also when the signal
comes while it is stopping them."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
from minio import Minio
from pymongo import MongoClient

from framevault.stack.local import stack_env

HARNESS = Path(__file__).resolve().parent / "harness.py"
REPO = HARNESS.parents[2]
# What the harness prints first: the names of its data.
DATA_LINE = re.compile(r"^\[bench\] data: database (\S+), bucket (\S+)$")


def _stores() -> tuple[MongoClient[dict[str, object]], Minio]:
    env = stack_env()
    s3 = Minio(env["FRAMEVAULT_S3_ENDPOINT"], access_key=env["FRAMEVAULT_S3_ACCESS_KEY"],
               secret_key=env["FRAMEVAULT_S3_SECRET_KEY"], secure=env.get("FRAMEVAULT_S3_SECURE") == "true",
               region=env.get("FRAMEVAULT_S3_REGION", "us-east-1"))
    return MongoClient(env["FRAMEVAULT_MONGODB_URI"]), s3


def _stopped_with_sigterm(repeat: int, stop_at: str) -> None:
    """Runs P3 (64 KiB blobs, ``repeat`` client processes) and sends it SIGTERM at its first line
    starting with ``stop_at``: the run must exit with 128 + SIGTERM, its services stopped and its data removed."""
    harness = subprocess.Popen([sys.executable, str(HARNESS), "--only", "P3", "--blob-sizes", "64KiB",
                                "--repeat", str(repeat)], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    mongo, s3 = _stores()
    try:
        assert harness.stderr is not None
        names = DATA_LINE.match(harness.stderr.readline().strip())
        assert names, "the harness names its database and bucket first"
        database, bucket = names.groups()
        # Once a row is being measured, both services serve and the run's data exists.
        for line in harness.stderr:
            if line.startswith("[bench] P3:"):
                break
        services = psutil.Process(harness.pid).children(recursive=True)
        assert database in mongo.list_database_names()
        assert s3.bucket_exists(bucket)
        for later in itertools.chain([line], harness.stderr):
            if later.startswith(stop_at):
                break

        harness.send_signal(signal.SIGTERM)
        harness.communicate(timeout=120)

        assert harness.returncode == 128 + signal.SIGTERM
        assert database not in mongo.list_database_names()
        assert not s3.bucket_exists(bucket)
        # No service outlives the run (what init has not reaped yet is given a moment).
        assert psutil.wait_procs(services, timeout=10)[1] == []
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
        mongo.close()


def test_a_run_stopped_with_sigterm_removes_its_database_and_bucket() -> None:
    # Twenty client processes of P3 take tens of seconds: the signal comes while the row is measured,
    # however slowly this process gets to send it.
    _stopped_with_sigterm(repeat=20, stop_at="[bench] P3: blob throughput")


def test_a_sigterm_while_a_run_stops_its_services_waits_until_they_stopped_and_its_data_is_gone() -> None:
    # The last row is done: the signal comes while the run stops its services and removes its data
    # (or just before), which it finishes before it exits.
    _stopped_with_sigterm(repeat=1, stop_at="[bench] P3: done")
