"""The byte streams of WriteBlob / ReadBlob: messages encoded by hand, reads ahead of the caller."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncGenerator
from typing import cast

import pytest

from framevault.blob import wire
from framevault.blob.storage import S3BlobStorage
from framevault.v1 import blob_pb2

from .helpers import MIB

READ_AHEAD_THREAD = "s3-read-ahead"


@pytest.mark.parametrize("offset", [0, 1, 127, 128, 300, 2**31, 2**63 - 1])
@pytest.mark.parametrize("size", [0, 1, 127, 128, 16384, MIB])
def test_read_response_decodes_as_the_message(offset: int, size: int) -> None:
    data = os.urandom(size)
    encoded = wire.read_response(offset, data)
    decoded = blob_pb2.ReadBlobResponse.FromString(encoded)
    assert (decoded.offset, decoded.data) == (offset, data)
    # As long as protobuf's own encoding (the same fields, in another order).
    assert len(encoded) == blob_pb2.ReadBlobResponse(offset=offset, data=data).ByteSize()


def _read_ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == READ_AHEAD_THREAD]


async def test_read_range_stopped_early_ends_its_reading_and_lets_go_of_the_connection(
        s3: S3BlobStorage) -> None:
    key = f"tests/streams/{uuid.uuid4().hex}"
    data = os.urandom(12 * MIB + 5)
    await s3.put(key, data)
    before = set(_read_ahead_threads())
    try:
        # More readers than the HTTP pool keeps connections and than the thread pool has threads.
        for _ in range(40):
            stream = cast(AsyncGenerator[bytes, None], s3.read_range(key, 0, len(data), MIB))
            assert await anext(stream) == data[:MIB]
            await stream.aclose()
        for thread in set(_read_ahead_threads()) - before:
            await asyncio.to_thread(thread.join, 60)
            assert not thread.is_alive()
        chunks = [c async for c in s3.read_range(key, 3, len(data) - 3, MIB)]
        assert [len(c) for c in chunks] == [MIB] * 12 + [2]
        assert b"".join(chunks) == data[3:]
    finally:
        await s3.delete(key)


async def test_read_range_hands_over_a_broken_body_as_an_error(s3: S3BlobStorage) -> None:
    key = f"tests/streams/{uuid.uuid4().hex}"
    await s3.put(key, os.urandom(2 * MIB))
    try:
        # Asking past the end: the store sends what it has, and the reader says the body ended early.
        with pytest.raises(ConnectionError, match="ended"):
            async for _ in s3.read_range(key, MIB, 4 * MIB, MIB):
                pass
    finally:
        await s3.delete(key)
