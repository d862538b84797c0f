"""Conformance suite of ``BlobStorage``: every adapter, against every S3 server here.

Each case runs once per (adapter, server) pair: SeaweedFS (the local stack)
and versitygw (a second S3 implementation, started from the project's stack
script by the ``versitygw_settings`` fixture, built on first use). A new
adapter or server joins by adding one entry to ``ADAPTERS`` or ``SERVERS``;
the cases stay the same.
"""

from __future__ import annotations

import itertools
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from framevault.blob.storage import (
    BlobStorage,
    ObjectMissing,
    PartsChanged,
    S3BlobStorage,
    TaggedBytes,
    UploadMissing,
    WriteConflict,
)
from framevault.common.config import Settings

MIB = 1024 * 1024

ADAPTERS: dict[str, Callable[[Settings], BlobStorage]] = {
    "s3": S3BlobStorage,
}
# Fixture giving the settings of each S3 server, bucket included.
SERVERS = {
    "seaweedfs": "settings",
    "versitygw": "versitygw_settings",
}


@pytest.fixture(params=[f"{a}-{s}" for a, s in itertools.product(sorted(ADAPTERS), SERVERS)])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[BlobStorage]:
    adapter_name, server = request.param.split("-", 1)
    adapter = ADAPTERS[adapter_name](request.getfixturevalue(SERVERS[server]))
    yield adapter
    await adapter.close()


@pytest.fixture
def prefix() -> str:
    return f"conformance/{uuid.uuid4().hex}/"


async def test_bucket_is_reachable(storage: BlobStorage) -> None:
    assert await storage.bucket_exists()


async def test_put_then_stat_and_get(storage: BlobStorage, prefix: str) -> None:
    key = prefix + "small"
    await storage.put(key, b"hello world")
    info = await storage.stat(key)
    assert info is not None and info.size == 11 and info.last_modified is not None
    assert await storage.get(key) == b"hello world"


async def test_put_larger_than_sdk_part_size_is_one_object(storage: BlobStorage, prefix: str) -> None:
    data = os.urandom(6 * MIB)
    await storage.put(prefix + "six", data)
    assert await storage.get(prefix + "six") == data


async def test_ranged_get(storage: BlobStorage, prefix: str) -> None:
    await storage.put(prefix + "r", bytes(range(256)))
    assert await storage.get(prefix + "r", 10, 5) == bytes(range(10, 15))
    assert await storage.get(prefix + "r", 250) == bytes(range(250, 256))


async def test_read_range_streams_in_chunks(storage: BlobStorage, prefix: str) -> None:
    data = os.urandom(3 * MIB + 17)
    await storage.put(prefix + "stream", data)
    chunks = [c async for c in storage.read_range(prefix + "stream", 5, len(data) - 5, MIB)]
    assert [len(c) for c in chunks] == [MIB, MIB, MIB, 12]
    assert b"".join(chunks) == data[5:]


async def test_missing_key(storage: BlobStorage, prefix: str) -> None:
    assert await storage.stat(prefix + "nope") is None
    with pytest.raises(ObjectMissing):
        await storage.get(prefix + "nope")
    with pytest.raises(ObjectMissing):
        async for _ in storage.read_range(prefix + "nope", 0, 10, MIB):
            pass


async def test_delete_and_delete_many(storage: BlobStorage, prefix: str) -> None:
    for name in ("a", "b", "c"):
        await storage.put(prefix + name, name.encode())
    await storage.delete(prefix + "a")
    await storage.delete(prefix + "never-existed")
    assert await storage.stat(prefix + "a") is None
    await storage.delete_many([prefix + "b", prefix + "c", prefix + "never-existed"])
    assert [o.key async for o in storage.list_objects(prefix)] == []


async def test_list_is_recursive_and_ordered(storage: BlobStorage, prefix: str) -> None:
    keys = [prefix + k for k in ("x/2", "x/1", "y/deep/3", "z")]
    for key in keys:
        await storage.put(key, b"1234")
    listed = [o async for o in storage.list_objects(prefix)]
    assert [o.key for o in listed] == sorted(keys)
    assert all(o.size == 4 and o.last_modified is not None for o in listed)
    assert [o.key async for o in storage.list_objects(prefix + "x/")] == sorted(keys[:2])


async def test_multipart_upload_complete(storage: BlobStorage, prefix: str) -> None:
    key = prefix + "multi"
    first, second = os.urandom(5 * MIB), os.urandom(123)
    upload_id = await storage.create_multipart(key)
    part1 = await storage.upload_part(key, upload_id, 1, first)
    part2 = await storage.upload_part(key, upload_id, 2, second)
    assert await storage.stat(key) is None  # invisible until complete
    listed = await storage.list_parts(key, upload_id)
    assert [(p.number, p.etag, p.size) for p in listed] == [(1, part1.etag, len(first)), (2, part2.etag, 123)]
    await storage.complete_multipart(key, upload_id, [part1, part2])
    assert await storage.get(key) == first + second
    with pytest.raises(UploadMissing):
        await storage.list_parts(key, upload_id)


async def test_multipart_upload_listed_and_aborted(storage: BlobStorage, prefix: str) -> None:
    key = prefix + "aborted"
    upload_id = await storage.create_multipart(key)
    await storage.upload_part(key, upload_id, 1, b"x" * 100)
    uploads = [u async for u in storage.list_multipart_uploads(prefix)]
    assert [(u.key, u.upload_id) for u in uploads] == [(key, upload_id)]
    await storage.abort_multipart(key, upload_id)
    await storage.abort_multipart(key, upload_id)  # twice is fine
    assert await storage.stat(key) is None
    with pytest.raises(UploadMissing):
        await storage.list_parts(key, upload_id)
    with pytest.raises(UploadMissing):
        await storage.upload_part(key, upload_id, 2, b"late")


async def test_presigned_get_serves_bytes_over_http(storage: BlobStorage, prefix: str) -> None:
    await storage.put(prefix + "pic", b"\x89PNG not really")
    await storage.put(prefix + "page", b"<script>alert(1)</script>", content_type="text/html")
    url = await storage.presign_get(prefix + "pic", timedelta(minutes=5), content_type="image/png",
                                    content_disposition="inline")
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local test server
        assert response.read() == b"\x89PNG not really"
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["Content-Disposition"] == "inline"
    # The signed headers win over what the object was stored with.
    url = await storage.presign_get(prefix + "page", timedelta(minutes=5), content_type="application/octet-stream",
                                    content_disposition="attachment")
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local test server
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"] == "attachment"


async def test_conditional_put_writes_only_over_the_expected_version(storage: BlobStorage, prefix: str) -> None:
    key = prefix + "state.json"
    first = await storage.put_conditional(key, b"one", expected_etag=None)
    with pytest.raises(WriteConflict):
        await storage.put_conditional(key, b"again", expected_etag=None)  # exists already
    second = await storage.put_conditional(key, b"two", expected_etag=first)
    with pytest.raises(WriteConflict):
        await storage.put_conditional(key, b"stale", expected_etag=first)  # a newer version is there
    assert await storage.get_tagged(key, 100) == TaggedBytes(b"two", second)
    await storage.delete(key)
    with pytest.raises(WriteConflict):
        await storage.put_conditional(key, b"gone", expected_etag=second)
    with pytest.raises(ObjectMissing):
        await storage.get_tagged(key, 100)


async def test_completion_assembles_only_the_named_version_of_a_part(storage: BlobStorage, prefix: str) -> None:
    key = prefix + "assembled"
    upload_id = await storage.create_multipart(key)
    named = os.urandom(5 * MIB)
    first = await storage.upload_part(key, upload_id, 1, named)
    await storage.upload_part(key, upload_id, 1, os.urandom(5 * MIB))  # another writer replaces part 1
    # S3 refuses the completion (the named ETag is gone); some servers keep and assemble the named version.
    try:
        await storage.complete_multipart(key, upload_id, [first])
    except PartsChanged:
        assert await storage.stat(key) is None
    else:
        assert await storage.get(key) == named
    await storage.abort_multipart(key, upload_id)
    await storage.delete(key)


async def test_get_tagged_reads_at_most_one_byte_past_the_limit(storage: BlobStorage, prefix: str) -> None:
    key = prefix + "big-state"
    etag = await storage.put_conditional(key, b"x" * 100, expected_etag=None)
    tagged = await storage.get_tagged(key, 10)
    assert tagged == TaggedBytes(b"x" * 11, etag)
    info = await storage.stat(key)
    assert info is not None and info.etag == etag


async def test_missing_upload_is_reported_on_every_multipart_call(storage: BlobStorage, prefix: str) -> None:
    key = prefix + "gone"
    upload_id = await storage.create_multipart(key)
    part = await storage.upload_part(key, upload_id, 1, b"z" * 10)
    await storage.abort_multipart(key, upload_id)
    with pytest.raises(UploadMissing):
        await storage.complete_multipart(key, upload_id, [part])
    assert [u async for u in storage.list_multipart_uploads(prefix)] == []
    assert await storage.stat(key) is None


async def test_presigned_get_of_a_missing_object_is_not_found(storage: BlobStorage, prefix: str) -> None:
    url = await storage.presign_get(prefix + "absent", timedelta(minutes=5), content_type="image/png",
                                    content_disposition="inline")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(url, timeout=10)  # noqa: S310 - local test server
    assert raised.value.code == 404
