"""Reads of single frames (GetFrame) that wait together go to MongoDB as one query.

A one-frame read costs the driver far more CPU than MongoDB's answer (the
command, the hand-off to the driver's thread and back: several hundred
microseconds per query on this service), so under concurrent GetFrame calls
the query itself was the service's largest cost per call. Here at most
``MAX_QUERIES_IN_FLIGHT`` queries per version run at a time; reads of frames
of that version arriving meanwhile wait for the next one, which asks for all
of them (up to ``MAX_FRAMES_PER_QUERY``). A read that arrives while fewer
queries are running is sent at once, so a lone caller waits for nothing.

Every read is answered by a query sent after it arrived, with the same
filter and read concern as one of its own: it sees the latest committed
write, as before. A failed query fails every read it carried, with the same
domain error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from framevault.metadata.lineage import VersionHandle

# Queries per version at a time: two keep MongoDB busy while the next batch gathers.
MAX_QUERIES_IN_FLIGHT = 2
# Frames one query asks for (a reply that outgrows MongoDB's 16 MiB batch leaves frames out, and
# those are read again on their own: found frames are never missing from an answer).
MAX_FRAMES_PER_QUERY = 64

# Reads the visible revision of each frame id of a version: frame id -> revision (absent: none).
ReadFrames = Callable[[VersionHandle, list[str]], Awaitable[Mapping[str, Any]]]


class _VersionReads:
    __slots__ = ("version", "waiting", "in_flight")

    def __init__(self, version: VersionHandle):
        self.version = version
        # (frame id, the future its reader awaits), in arrival order.
        self.waiting: list[tuple[str, asyncio.Future[Any]]] = []
        self.in_flight = 0


class BatchedFrameReads:
    def __init__(self, read_frames: ReadFrames):
        self._read_frames = read_frames
        self._versions: dict[str, _VersionReads] = {}
        # The running queries (kept referenced until they end).
        self._queries: set[asyncio.Task[None]] = set()

    async def read(self, version: VersionHandle, frame_id: str) -> Any:
        """The revision of ``frame_id`` visible in ``version``; None when it has none."""
        reads = self._versions.get(version.id)
        if reads is None:
            reads = self._versions[version.id] = _VersionReads(version)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        reads.waiting.append((frame_id, answer))
        if reads.in_flight < MAX_QUERIES_IN_FLIGHT:
            self._send(reads)
        return await answer

    def _send(self, reads: _VersionReads) -> None:
        batch = reads.waiting[:MAX_FRAMES_PER_QUERY]
        del reads.waiting[:MAX_FRAMES_PER_QUERY]
        reads.in_flight += 1
        query = asyncio.get_running_loop().create_task(self._query(reads, batch))
        self._queries.add(query)
        query.add_done_callback(self._queries.discard)

    async def _query(self, reads: _VersionReads, batch: list[tuple[str, asyncio.Future[Any]]]) -> None:
        try:
            # A reader that gave up (its call was cancelled) is not asked for.
            frame_ids = list(dict.fromkeys(frame_id for frame_id, answer in batch if not answer.done()))
            found = await self._read_frames(reads.version, frame_ids) if frame_ids else {}
        except Exception as exc:  # noqa: BLE001 - handed to every reader of the batch
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
        except BaseException:
            # Cancelled (the service stops): so are its readers.
            for _, answer in batch:
                answer.cancel()
            raise
        else:
            for frame_id, answer in batch:
                if not answer.done():
                    answer.set_result(found.get(frame_id))
        finally:
            reads.in_flight -= 1
            if reads.waiting:
                self._send(reads)
            elif not reads.in_flight and self._versions.get(reads.version.id) is reads:
                del self._versions[reads.version.id]
