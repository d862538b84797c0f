"""Broken streams against the real services: the SDK resumes and resends.

The connection break is simulated on the client side (the stub's call is
wrapped to fail with UNAVAILABLE after some messages), so the service sees
a real cancelled stream and a real reopened one.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from grpc import aio

from framevault.sdk import ClientSettings, DatasetVersion, DataView, SingleFrame, current_client


def unavailable() -> aio.AioRpcError:
    return aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, aio.Metadata(), aio.Metadata(), details="connection reset")


class BreakingStream:
    """A server stream that fails after ``keep`` messages, like a dropped connection."""

    def __init__(self, call: Any, keep: int) -> None:
        self.call, self.keep = call, keep

    def __aiter__(self) -> BreakingStream:
        self._messages = self.call.__aiter__()
        return self

    async def __anext__(self) -> Any:
        if self.keep == 0:
            self.call.cancel()
            raise unavailable()
        self.keep -= 1
        return await anext(self._messages)

    def cancel(self) -> bool:
        return self.call.cancel()


class BreakingUpload:
    """An UploadFrames call that fails after ``keep`` result messages."""

    def __init__(self, call: Any, keep: int) -> None:
        self.call, self.keep = call, keep

    async def write(self, request: Any) -> None:
        await self.call.write(request)

    async def done_writing(self) -> None:
        await self.call.done_writing()

    async def read(self) -> Any:
        message = await self.call.read()
        if message is not aio.EOF and message.WhichOneof("message") == "results":
            if self.keep == 0:
                self.call.cancel()
                raise unavailable()
            self.keep -= 1
        return message

    def cancel(self) -> bool:
        return self.call.cancel()


async def test_iteration_resumes_transparently_after_unavailable(sdk: ClientSettings,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"resume-{uuid.uuid4().hex[:8]}"
    await DatasetVersion.acreate_new_dataset(name)
    draft = await DatasetVersion.aget_version(name)
    frames = [SingleFrame(source=f"s3://b/{i}.jpg", context_id=f"c{i % 3}", timestamp=i, id=f"r{i:03d}")
              for i in range(50)]
    assert await draft.aadd_frames(frames, progress=False) == []
    view = DataView()
    view.add_query(dataset_name=name)
    expected = [f.id for f in await view.ato_list()]

    client = current_client()
    real = client.metadata.IterateFrames
    cursors: list[str] = []

    def flaky(request: Any, **kwargs: Any) -> Any:
        cursors.append(request.resume_cursor)
        call = real(request, **kwargs)
        return BreakingStream(call, keep=2) if len(cursors) == 1 else call

    monkeypatch.setattr(client.metadata, "IterateFrames", flaky)
    # Several messages, so the break falls in the middle of the view.
    monkeypatch.setattr(client, "settings", client.settings.replace(iterate_frames_per_message=8))
    iterator = view.aget_iterator()
    seen = [f.id async for f in iterator]

    assert seen == expected
    assert len(cursors) == 2 and cursors[0] == "" and cursors[1] != ""
    assert iterator.reconnects == 1


async def test_upload_resends_unanswered_frames_on_a_new_stream(sdk: ClientSettings,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"resend-{uuid.uuid4().hex[:8]}"
    await DatasetVersion.acreate_new_dataset(name)
    draft = await DatasetVersion.aget_version(name)
    client = current_client()
    real = client.upload_frames_encoded
    opened: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        opened.append(1)
        call = real(*args, **kwargs)
        return BreakingUpload(call, keep=1) if len(opened) == 1 else call

    monkeypatch.setattr(client, "upload_frames_encoded", flaky)
    frames = (SingleFrame(source=f"s3://b/{i}.jpg", id=f"u{i:04d}") for i in range(2000))
    totals = await draft.aadd_frames_with_totals(frames, progress=False)

    assert len(opened) == 2 and totals.reconnects == 1
    assert totals.failed == []
    # Frames whose results were lost may have been written already: then they come back unchanged.
    assert totals.created + totals.unchanged == 2000 and totals.updated == 0
    assert await draft.aget_count() == 2000
