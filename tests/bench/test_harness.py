"""The harness cleans up after itself: a run stopped with SIGTERM still stops
its services and removes the database and bucket it made."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

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


def test_a_run_stopped_with_sigterm_removes_its_database_and_bucket() -> None:
    harness = subprocess.Popen([sys.executable, str(HARNESS), "--only", "P3", "--blob-sizes", "64KiB",
                                "--repeat", "1"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
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
        assert database in mongo.list_database_names()
        assert s3.bucket_exists(bucket)

        harness.send_signal(signal.SIGTERM)
        harness.communicate(timeout=120)

        assert harness.returncode == 128 + signal.SIGTERM
        assert database not in mongo.list_database_names()
        assert not s3.bucket_exists(bucket)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
        mongo.close()
