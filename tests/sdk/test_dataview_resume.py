"""A DataView iterator's cursor resumes exactly after the last frame it
returned, also in the middle of a streamed message."""

from __future__ import annotations

import asyncio

import pytest

from framevault.sdk import ClientSettings, DataView, aclose, configure

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
