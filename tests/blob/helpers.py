"""Helpers of the blob tests."""

from __future__ import annotations

import asyncio
import os

from grpc import aio

from framevault.api.digests import BlobDigest, digest_of
from framevault.blob.storage import PartInfo, S3BlobStorage
from framevault.common.config import Settings
from framevault.v1 import blob_pb2

try:
    from tests.support import (
        channel_to,
        error_details,
        free_port,
        resource_info,
        start_blob_service,
        violated_fields,
    )
except ModuleNotFoundError:  # tests/ itself is on sys.path when it is not a package
    from support import (  # type: ignore[no-redef]
        channel_to,
        error_details,
        free_port,
        resource_info,
        start_blob_service,
        violated_fields,
    )

__all__ = ["channel_to", "error_details", "free_port", "resource_info", "start_blob_service", "violated_fields"]

MIB = 1024 * 1024
# Small parts keep multipart tests to tens of MiB.
SMALL_PART = 8 * MIB


def with_small_parts(settings: Settings, **overrides: object) -> Settings:
    """The settings with parts of SMALL_PART (capped there, so the maximum blob size cannot grow them)."""
    return Settings(**{**settings.__dict__, "s3_part_size_bytes": SMALL_PART, "s3_max_part_size_bytes": SMALL_PART,
                       **overrides})


def random_blob(size: int) -> tuple[bytes, BlobDigest]:
    data = os.urandom(size)
    return data, digest_of(data)


def proto_digest(digest: BlobDigest) -> blob_pb2.Digest:
    return blob_pb2.Digest(hash=digest.hash, size_bytes=digest.size)


async def rpc_error(awaitable: object) -> aio.AioRpcError:
    """The error a call fails with (fails the test if it succeeds)."""
    try:
        if hasattr(awaitable, "__aiter__"):
            async for _ in awaitable:  # type: ignore[attr-defined]
                pass
        else:
            await awaitable  # type: ignore[misc]
    except aio.AioRpcError as exc:
        return exc
    raise AssertionError("the call succeeded but an error was expected")



class HeldParts(S3BlobStorage):
    """The real bucket, with uploads of the chosen part numbers held until ``release`` is set.

    Lets a test cut a stream while its part is in flight, and decide when that part lands.
    """

    def __init__(self, settings: Settings, hold: set[int]):
        super().__init__(settings)
        self.hold = hold
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes | memoryview) -> PartInfo:
        if number in self.hold:
            self.held.set()
            await self.release.wait()
        return await super().upload_part(key, upload_id, number, data)
