"""Client streams the blob service answers before reading them to the end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from framevault.common.config import Settings
from framevault.v1 import blob_pb2


async def drain_briefly(requests: AsyncIterator[blob_pb2.WriteBlobRequest], settings: Settings) -> None:
    """Reads and drops the rest of a client stream answered early (rejected, refused, or the blob
    exists), within the bounds of the blob_write_drain_* settings.

    A grpcio asyncio client that is still writing when the server ends the
    call reports INTERNAL ("Internal error from Core") instead of the server's
    status (grpc/grpc#36066). Letting an eagerly streaming client finish its
    writes first lets it see the real error. A client that waits gets it after
    a short idle time.
    """
    drained = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.blob_write_drain_max_seconds
    with contextlib.suppress(Exception, asyncio.TimeoutError, StopAsyncIteration):
        while drained < settings.blob_write_drain_max_bytes:
            timeout = min(settings.blob_write_drain_idle_seconds, deadline - loop.time())
            if timeout <= 0:
                return
            message = await asyncio.wait_for(anext(requests), timeout)
            drained += len(getattr(message, "data", b""))
