"""A test session's own MongoDB database and S3 bucket on the local stack: made at the start, removed at the end."""

from __future__ import annotations

import contextlib
import datetime

from minio.deleteobjects import DeleteObject

from .local import Stack


def make_bucket(bucket: str) -> None:
    Stack().s3.client().make_bucket(bucket)


def remove_test_data(*, database: str, bucket: str) -> None:
    """Drops a test session's database and removes its bucket with everything
    in it (objects and unfinished multipart uploads). Every session makes its
    own bucket, and each bucket holds volumes of the local S3 server: left
    behind, they exhaust it after a few hundred sessions."""
    stack = Stack()
    with contextlib.closing(stack.mongo.client()) as mongo:
        mongo.drop_database(database)
    s3 = stack.s3.client()
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
# No test session or benchmark run lasts this long: data older than this was left by one that was killed.
STALE_SESSION_DATA_HOURS = 12.0


def remove_stale_test_data(max_age_hours: float = STALE_SESSION_DATA_HOURS,
                           prefixes: tuple[str, ...] = SESSION_DATA_PREFIXES) -> list[str]:
    """Removes the buckets (and their databases) of test sessions and benchmark runs that were killed
    before they could clean up, judged by the bucket's creation time; returns the buckets removed.
    Sessions running now are younger than ``max_age_hours``, so they keep theirs."""
    stack = Stack()
    cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=max_age_hours)
    stale = [bucket.name for bucket in stack.s3.client().list_buckets()
             if bucket.name.startswith(tuple(f"{prefix}-" for prefix in prefixes))
             and bucket.creation_date is not None and bucket.creation_date < cutoff]
    # A session's own database is named like its bucket; the databases its tests made start so.
    run_databases = {bucket: bucket.replace("-", "_", 1) for bucket in stale}
    with contextlib.closing(stack.mongo.client()) as mongo:
        for database in mongo.list_database_names():
            if any(database.startswith(f"{run}_") for run in run_databases.values()):
                mongo.drop_database(database)
    for bucket, database in run_databases.items():
        remove_test_data(database=database, bucket=bucket)
    return stale
