"""Fetching frames' source and mask bytes ahead of use, within a byte budget.

Bytes come through :func:`framevault.sdk.sources.local_copy`: a ``blob:``
source is downloaded once into the content-addressed cache on disk and read
from there; a local file is read where it is. A frame's size is known before
its bytes are fetched (a ``blob:`` URI carries it, a local file is stat'ed), so
the budget is reserved before a fetch starts: the bytes of frames being
fetched, fetched and waiting, and the one the consumer holds never exceed
``budget_bytes``, except that a single frame larger than the budget is
fetched alone.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from framevault.sdk.blobs import parse_digest
from framevault.sdk.frames import Frame, FrameGroup, SingleFrame
from framevault.sdk.sources import is_local_uri, local_copy, local_path


@dataclass
class ByteBudget:
    """Bytes reserved by fetches in progress, fetched frames and the frame being consumed."""

    limit: int
    in_use: int = 0
    peak: int = 0

    def fits(self, size: int) -> bool:
        return self.in_use + size <= self.limit

    def reserve(self, size: int) -> None:
        self.in_use += size
        self.peak = max(self.peak, self.in_use)

    def release(self, size: int) -> None:
        self.in_use -= size


@dataclass
class FetchedFrame:
    """A frame with the bytes of each source and of each source's default (or only) mask, by source id."""

    frame: Frame
    cursor: str
    sources: dict[str, bytes] = field(default_factory=dict)
    masks: dict[str, bytes] = field(default_factory=dict)
    size: int = 0


def frame_members(frame: Frame) -> dict[str, SingleFrame]:
    """The sources of a frame by source id (a single frame has one)."""
    if isinstance(frame, FrameGroup):
        return dict(frame.items())
    return {frame.source_id: frame}


def content_size(uri: str) -> int:
    """The size of a source's content before fetching it (0 when it cannot be known)."""
    if uri.startswith("blob:"):
        return parse_digest(uri).size
    if is_local_uri(uri):
        try:
            return os.stat(local_path(uri)).st_size
        except OSError:
            return 0
    return 0


def frame_size(frame: Frame, with_masks: bool) -> int:
    total = 0
    for member in frame_members(frame).values():
        total += content_size(member.source) if member.source else 0
        if with_masks and member.mask_source:
            total += content_size(member.mask_source)
    return total


async def read_content(uri: str, cache_dir: str | os.PathLike[str] | None) -> bytes:
    """The bytes of a source or mask, through the content-addressed cache."""
    path: Path = await local_copy(uri, cache_dir)
    return await asyncio.to_thread(path.read_bytes)


async def fetch_frame(frame: Frame, cursor: str, size: int, with_masks: bool,
                      cache_dir: str | os.PathLike[str] | None) -> FetchedFrame:
    fetched = FetchedFrame(frame, cursor, size=size)
    jobs: list[tuple[str, str, str]] = []
    for source_id, member in frame_members(frame).items():
        if member.source:
            jobs.append((source_id, "source", member.source))
        if with_masks and member.mask_source:
            jobs.append((source_id, "mask", member.mask_source))
    contents = await asyncio.gather(*(read_content(uri, cache_dir) for _, _, uri in jobs))
    for (source_id, kind, _), data in zip(jobs, contents, strict=True):
        (fetched.masks if kind == "mask" else fetched.sources)[source_id] = data
    return fetched


async def prefetch(
    frames: AsyncIterator[tuple[Frame, str]],
    budget: ByteBudget,
    *,
    max_frames_ahead: int,
    with_masks: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> AsyncIterator[list[FetchedFrame]]:
    """``(frame, cursor)`` pairs in, the same frames with their bytes out, in order, in groups.

    Up to ``max_frames_ahead`` frames are fetched concurrently while the
    consumer works on the group it was given: the next fetched frame and any
    after it that are fetched too. The consumer's group counts against the
    budget until it asks for the next one.

    Raises:
        FramevaultError, ValueError, OSError: a source or mask could not be
            read (the iteration stops there rather than skip the frame).
    """
    pending: deque[tuple[asyncio.Task[FetchedFrame], int]] = deque()
    waiting: tuple[Frame, str, int] | None = None
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < max(1, max_frames_ahead):
                if waiting is None:
                    try:
                        frame, cursor = await anext(frames)
                    except StopAsyncIteration:
                        exhausted = True
                        break
                    waiting = (frame, cursor, frame_size(frame, with_masks))
                frame, cursor, size = waiting
                if pending and not budget.fits(size):
                    break
                budget.reserve(size)
                pending.append((asyncio.ensure_future(fetch_frame(frame, cursor, size, with_masks, cache_dir)), size))
                waiting = None
            if not pending:
                return
            task, size = pending.popleft()
            held = size
            try:
                ready = [await task]
                # Frames fetched meanwhile go along: one hand-over per group, not per frame,
                # costs the consumer's thread fewer wake-ups of this loop.
                while pending and pending[0][0].done():
                    task, size = pending.popleft()
                    held += size
                    ready.append(task.result())
            except BaseException:
                budget.release(held)
                raise
            try:
                yield ready
            finally:
                budget.release(held)
    finally:
        for task, size in pending:
            task.cancel()
            budget.release(size)
        await asyncio.gather(*(task for task, _ in pending), return_exceptions=True)
