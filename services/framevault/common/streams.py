"""Request streams a service answers before reading them to the end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable
from typing import Any

from framevault.common.config import Settings


async def drain_briefly(requests: AsyncIterable[Any], settings: Settings) -> None:
    """Reads and drops the rest of a request stream answered early (refused,
    failed, or a WriteBlob whose blob exists), within the bounds of the
    blob_write_drain_* settings.

    A grpcio asyncio client that is still writing when the server ends the
    call reports INTERNAL ("Internal error from Core") instead of the server's
    status (grpc/grpc#36066). Letting an eagerly streaming client finish its
    writes first lets it see the real status. A client that waits gets it after
    a short idle time.
    """
    drained = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.blob_write_drain_max_seconds
    messages = aiter(requests)
    with contextlib.suppress(Exception, asyncio.TimeoutError, StopAsyncIteration):
        while drained < settings.blob_write_drain_max_bytes:
            timeout = min(settings.blob_write_drain_idle_seconds, deadline - loop.time())
            if timeout <= 0:
                return
            message = await asyncio.wait_for(anext(messages), timeout)
            drained += message.ByteSize() if hasattr(message, "ByteSize") else 0
