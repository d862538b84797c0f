"""A DataView iterator's cursor resumes exactly after the last frame it
returned, also in the middle of a streamed message."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from framevault.sdk import ClientSettings, DataView, InvalidArgumentError, aclose, configure
from framevault.sdk.dataview import OFFSET_SEPARATOR, parse_position
from framevault.sdk.runtime import current_client

from .test_sdk_end_to_end import view_corpus


@pytest.mark.parametrize("order", ["sequential", "random"])
async def test_cursor_resumes_after_every_returned_frame(sdk: ClientSettings, order: str) -> None:
    name = await view_corpus(sdk)
    # Four frames per message: most cut points fall inside a message.
    await asyncio.to_thread(configure, iterate_frames_per_message=4)
    await aclose()
    try:
        view = DataView(iteration_order=order, random_seed=3)
        view.add_query(dataset_name=name)
        everything = [f.id for f in await view.ato_list()]
        assert len(everything) == 9
        for taken in range(1, len(everything) + 1):
            iterator = view.aget_iterator()
            head = [(await anext(iterator)).id for _ in range(taken)]
            cursor = iterator.cursor
            await iterator.aclose()
            rest = [f.id async for f in view.aget_iterator(resume_cursor=cursor)]
            assert head + rest == everything, taken
    finally:
        await asyncio.to_thread(configure, iterate_frames_per_message=0)
        await aclose()


async def test_the_iterator_resumes_inside_a_message_without_per_frame_cursors(
        sdk: ClientSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A position inside a message is the cursor of the message before plus an offset: the service
    signs one cursor per message, not one per frame."""
    name = await view_corpus(sdk)
    await asyncio.to_thread(configure, iterate_frames_per_message=4)
    await aclose()
    try:
        client = current_client()
        real = client.metadata.IterateFrames
        requests: list[Any] = []
        per_frame_cursors: list[int] = []

        class Recorded:
            def __init__(self, call: Any) -> None:
                self.call = call

            async def __aiter__(self) -> Any:
                async for message in self.call:
                    per_frame_cursors.append(len(message.frame_cursors))
                    yield message

            def cancel(self) -> bool:
                return bool(self.call.cancel())

        def recording(request: Any, **kwargs: Any) -> Any:
            requests.append(request)
            return Recorded(real(request, **kwargs))

        monkeypatch.setattr(client.metadata, "IterateFrames", recording)
        view = DataView()
        view.add_query(dataset_name=name)
        iterator = view.aget_iterator()
        head = [(await anext(iterator)).id for _ in range(6)]
        cursor = iterator.cursor
        await iterator.aclose()
        rest = [f.id async for f in view.aget_iterator(resume_cursor=cursor)]

        assert len(head + rest) == 9
        assert [(r.frame_cursors, r.resume_offset) for r in requests] == [(False, 0), (False, 2)]
        assert parse_position(cursor) == (requests[1].resume_cursor, 2) and requests[1].resume_cursor
        assert per_frame_cursors and not any(per_frame_cursors)
    finally:
        await asyncio.to_thread(configure, iterate_frames_per_message=0)
        await aclose()


@pytest.mark.parametrize("order", ["sequential", "random"])
async def test_resuming_after_every_single_frame_keeps_offsets_within_a_message(sdk: ClientSettings,
                                                                                order: str) -> None:
    """Each resumed stream starts from the cursor the service gives after the skipped frames, so
    positions never pile up offsets however often a caller resumes inside one message."""
    name = await view_corpus(sdk)
    await asyncio.to_thread(configure, iterate_frames_per_message=4)
    await aclose()
    try:
        view = DataView(iteration_order=order, random_seed=5)
        view.add_query(dataset_name=name)
        everything = [f.id for f in await view.ato_list()]
        seen: list[str] = []
        cursor = ""
        while True:
            iterator = view.aget_iterator(resume_cursor=cursor)
            frame = await anext(iterator, None)
            await iterator.aclose()
            if frame is None:
                break
            seen.append(frame.id)
            cursor = iterator.cursor
            assert 0 <= parse_position(cursor)[1] < 4
        assert seen == everything
    finally:
        await asyncio.to_thread(configure, iterate_frames_per_message=0)
        await aclose()


@pytest.mark.parametrize("offset", ["-1", "1001"])
async def test_a_cursor_with_an_offset_out_of_range_is_refused_naming_resume_offset(
        sdk: ClientSettings, offset: str) -> None:
    name = await view_corpus(sdk)
    view = DataView()
    view.add_query(dataset_name=name)
    iterator = view.aget_iterator()
    await anext(iterator)
    cursor, _ = parse_position(iterator.cursor)
    await iterator.aclose()
    with pytest.raises(InvalidArgumentError) as refused:
        await anext(view.aget_iterator(resume_cursor=f"{cursor}{OFFSET_SEPARATOR}{offset}"))
    assert [v.field for v in refused.value.field_violations] == ["resume_offset"]
    # What does not read as an offset is the service's to judge as a cursor.
    with pytest.raises(InvalidArgumentError) as malformed:
        await anext(view.aget_iterator(resume_cursor=f"{cursor}{OFFSET_SEPARATOR}x"))
    assert [v.field for v in malformed.value.field_violations] == ["resume_cursor"]
