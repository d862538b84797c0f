"""Buckets and databases of killed test sessions are removed by the next session, those of live ones kept."""

import contextlib
import io
import uuid

from framevault.stack.local import Stack
from framevault.stack.session_data import make_bucket, remove_stale_test_data

# A prefix no real session uses, so removing "everything older than now" touches only this test's data.
PREFIX = "fvstaletest"


def test_data_of_killed_sessions_is_removed_and_that_of_live_ones_kept(stack_env):
    run_id = uuid.uuid4().hex[:10]
    bucket, database = f"{PREFIX}-{run_id}", f"{PREFIX}_{run_id}"
    make_bucket(bucket)
    stack = Stack()
    with contextlib.closing(stack.mongo.client()) as mongo:
        mongo[database]["frames"].insert_one({"_id": "left behind"})
        mongo[f"{database}_gc"]["frames"].insert_one({"_id": "left behind"})
    stack.s3.client().put_object(bucket, "cas/left-behind", data=io.BytesIO(b"x"), length=1)

    # Younger than the age limit: a session running now keeps its data.
    assert remove_stale_test_data(max_age_hours=1.0, prefixes=(PREFIX,)) == []
    assert stack.s3.client().bucket_exists(bucket)

    assert remove_stale_test_data(max_age_hours=0.0, prefixes=(PREFIX,)) == [bucket]
    assert not stack.s3.client().bucket_exists(bucket)
    with contextlib.closing(stack.mongo.client()) as mongo:
        assert not {database, f"{database}_gc"} & set(mongo.list_database_names())
