"""A test session's own MongoDB database and S3 bucket on the local stack: made at the start, removed at the end."""

from __future__ import annotations

import contextlib

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
