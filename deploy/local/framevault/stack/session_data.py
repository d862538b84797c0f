"""A test session's own MongoDB database and S3 bucket on the local stack: made at the start, removed at the end."""

from __future__ import annotations

import contextlib
import datetime
import os
from pathlib import Path

from minio.deleteobjects import DeleteObject

from .local import Stack


def make_bucket(bucket: str) -> None:
    """Makes a session's bucket and records this process as its owner: the bucket (and anything
    named after it) belongs to the session for as long as this process runs."""
    stack = Stack()
    owners = _owners_dir(stack)
    owners.mkdir(parents=True, exist_ok=True)
    (owners / bucket).write_text(_process_identity(os.getpid()) or "")
    stack.s3.client().make_bucket(bucket)


def _owners_dir(stack: Stack) -> Path:
    return stack.dir / "session-owners"


def _process_identity(pid: int) -> str | None:
    """``<pid> <start time>`` of a running process, None when none runs under ``pid``. The start
    time (clock ticks since boot, /proc/<pid>/stat) tells a reused pid from the owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    return f"{pid} {stat.rpartition(')')[2].split()[19]}"


def _owner_alive(record: str) -> bool:
    pid, _, _ = record.partition(" ")
    return pid.isdigit() and _process_identity(int(pid)) == record


def remove_test_data(*, database: str, bucket: str) -> None:
    """Drops a test session's database and removes its bucket with everything
    in it (objects and unfinished multipart uploads). Every session makes its
    own bucket, and each bucket holds volumes of the local S3 server: left
    behind, they exhaust it after a few hundred sessions."""
    stack = Stack()
    with contextlib.closing(stack.mongo.client()) as mongo:
        mongo.drop_database(database)
    s3 = stack.s3.client()
    (_owners_dir(stack) / bucket).unlink(missing_ok=True)
    if not s3.bucket_exists(bucket):
        return
    names = [DeleteObject(o.object_name) for o in s3.list_objects(bucket, recursive=True) if o.object_name]
    errors = list(s3.remove_objects(bucket, names)) if names else []
    assert not errors, errors
    # minio-py has no public call for unfinished multipart uploads.
    for upload in s3._list_multipart_uploads(bucket).uploads:
        assert upload.upload_id is not None, upload
        s3._abort_multipart_upload(bucket, upload.object_name, upload.upload_id)
    s3.remove_bucket(bucket)


# Prefixes of the buckets and databases test sessions and benchmark runs make for themselves.
SESSION_DATA_PREFIXES = ("fvtest", "fve2e", "fvbench")
# Buckets no process here owns (made elsewhere or before owners were recorded) count as left behind
# once older than this: no test session or benchmark run lasts this long.
STALE_SESSION_DATA_HOURS = 12.0


def remove_stale_test_data(max_age_hours: float = STALE_SESSION_DATA_HOURS,
                           prefixes: tuple[str, ...] = SESSION_DATA_PREFIXES) -> list[str]:
    """Removes the buckets (and their databases) of test sessions and benchmark runs that were killed
    before they could clean up; returns the buckets removed. A bucket whose owner (``make_bucket``)
    has exited is removed at once, whatever its age; one whose owner runs is kept; one with no owner
    record is judged by its creation time. Buckets named after a session's bucket (``<bucket>-gc-…``)
    belong to that session."""
    stack = Stack()
    owners = _owners_dir(stack)
    records = {path.name: path.read_text() for path in owners.iterdir()} if owners.is_dir() else {}
    cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=max_age_hours)

    def left_behind(bucket: str, created: datetime.datetime | None) -> bool:
        owner = next((records[name] for name in sorted(records, key=len, reverse=True)
                      if bucket == name or bucket.startswith(f"{name}-")), None)
        if owner is not None:
            return not _owner_alive(owner)
        return created is not None and created < cutoff

    stale = [bucket.name for bucket in stack.s3.client().list_buckets()
             if bucket.name.startswith(tuple(f"{prefix}-" for prefix in prefixes))
             and left_behind(bucket.name, bucket.creation_date)]
    # A session's own database is named like its bucket; the databases its tests made start so.
    run_databases = {bucket: bucket.replace("-", "_", 1) for bucket in stale}
    with contextlib.closing(stack.mongo.client()) as mongo:
        for database in mongo.list_database_names():
            if any(database.startswith(f"{run}_") for run in run_databases.values()):
                mongo.drop_database(database)
    for bucket, database in run_databases.items():
        remove_test_data(database=database, bucket=bucket)
    # Owners that exited leave their record behind when their buckets are gone already.
    for name, record in records.items():
        if name.startswith(prefixes) and not _owner_alive(record):
            (owners / name).unlink(missing_ok=True)
    return stale
