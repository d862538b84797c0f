"""Buckets and databases of killed test sessions are removed by the next session, those of live ones kept."""

import contextlib
import io
import subprocess
import sys
import uuid

from framevault.stack.local import Stack
from framevault.stack.session_data import make_bucket, remove_stale_test_data, remove_test_data

# A prefix no real session uses, so removing "everything older than now" touches only this test's data.
PREFIX = "fvstaletest"


def _leave_data_behind(bucket: str, database: str) -> None:
    stack = Stack()
    with contextlib.closing(stack.mongo.client()) as mongo:
        mongo[database]["frames"].insert_one({"_id": "left behind"})
        mongo[f"{database}_gc"]["frames"].insert_one({"_id": "left behind"})
    stack.s3.client().put_object(bucket, "cas/left-behind", data=io.BytesIO(b"x"), length=1)


def _assert_removed(bucket: str, database: str) -> None:
    stack = Stack()
    assert not stack.s3.client().bucket_exists(bucket)
    with contextlib.closing(stack.mongo.client()) as mongo:
        assert not {database, f"{database}_gc"} & set(mongo.list_database_names())


def test_data_of_sessions_without_an_owner_here_is_removed_once_old(stack_env):
    run_id = uuid.uuid4().hex[:10]
    bucket, database = f"{PREFIX}-{run_id}", f"{PREFIX}_{run_id}"
    # Made without recording an owner, as by a session of another machine or of older code.
    Stack().s3.client().make_bucket(bucket)
    _leave_data_behind(bucket, database)

    # Younger than the age limit: a session running now keeps its data.
    assert remove_stale_test_data(max_age_hours=1.0, prefixes=(PREFIX,)) == []
    assert Stack().s3.client().bucket_exists(bucket)

    assert remove_stale_test_data(max_age_hours=0.0, prefixes=(PREFIX,)) == [bucket]
    _assert_removed(bucket, database)


def test_data_of_an_owner_that_exited_is_removed_at_once_and_that_of_a_live_owner_kept(stack_env):
    run_id = uuid.uuid4().hex[:10]
    killed, killed_database = f"{PREFIX}-{run_id}", f"{PREFIX}_{run_id}"
    # A session process that makes its bucket (and one named after it) and dies without cleaning up.
    subprocess.run([sys.executable, "-c",
                    "import sys; from framevault.stack.session_data import make_bucket; make_bucket(sys.argv[1])",
                    killed], check=True)
    Stack().s3.client().make_bucket(f"{killed}-gc-1")
    _leave_data_behind(killed, killed_database)
    live = f"{PREFIX}-{uuid.uuid4().hex[:10]}"
    make_bucket(live)
    try:
        # Well within the age limit, yet its owner is gone: removed; this process's bucket is kept
        # even when every bucket counts as old.
        assert sorted(remove_stale_test_data(max_age_hours=0.0, prefixes=(PREFIX,))) == [killed, f"{killed}-gc-1"]
        _assert_removed(killed, killed_database)
        assert not Stack().s3.client().bucket_exists(f"{killed}-gc-1")
        assert Stack().s3.client().bucket_exists(live)
    finally:
        remove_test_data(database=live.replace("-", "_", 1), bucket=live)
