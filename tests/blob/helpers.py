"""Helpers of the blob tests."""

from __future__ import annotations

import os
import socket

from grpc import aio

from framevault.blob.app import build_service
from framevault.common.config import Settings
from framevault.common.digests import BlobDigest, digest_of
from framevault.common.server import RunningService
from framevault.v1 import blob_pb2

try:
    from tests.support import error_details, resource_info, violated_fields
except ModuleNotFoundError:  # tests/ itself is on sys.path when it is not a package
    from support import error_details, resource_info, violated_fields  # type: ignore[no-redef]

__all__ = ["error_details", "resource_info", "violated_fields"]

MIB = 1024 * 1024
# Small parts keep multipart tests to tens of MiB; 8 MiB leaves room for a 5 MiB+ tail to be flushed.
SMALL_PART = 8 * MIB


async def started_blob_service(settings: Settings, **build_options: object) -> RunningService:
    running = RunningService(build_service(settings, **build_options), settings)  # type: ignore[arg-type]
    await running.start()
    return running


def open_channel(port: int) -> aio.Channel:
    return aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 * MIB),
                                                              ("grpc.max_send_message_length", 64 * MIB)])


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


def unused_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
