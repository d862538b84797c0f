"""The upload credit window and stream recovery, against an in-memory stream.

Only the client's flow-control logic is under test here: the fake stream
answers like the contract says (started, then one FrameResult per frame) and
records how many frames were ever sent but unanswered. The real service is
exercised by tests/sdk/test_sdk_end_to_end.py.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc import aio

from framevault.common.errors import InvalidArgument
from framevault.sdk import SingleFrame
from framevault.sdk.settings import ClientSettings
from framevault.sdk.upload import (
    CreditWindow,
    FramePreparer,
    FrameStreamUploader,
    PreparedFrame,
    _aiter_batches,
    _prefetch,
    encode_upload_item,
)
from framevault.v1 import frame_pb2
from framevault.v1 import metadata_service_pb2 as pb

Result = pb.FrameResult


class FakeUploadServer:
    """Plays the service side of UploadFrames for any number of streams."""

    def __init__(self, window: int, *, break_after: int | None = None, fail_ids: frozenset[str] = frozenset(),
                 seed: int = 1) -> None:
        self.window = window
        self.break_after = break_after
        self.fail_ids = fail_ids
        self.random = random.Random(seed)
        self.peak_unanswered = 0
        self.streams = 0
        self.answered_ids: list[str] = []
        self.messages: list[int] = []
        # Every request as it arrived: (stream number, bytes).
        self.raw_requests: list[tuple[int, bytes]] = []

    def open(self) -> FakeUploadCall:
        self.streams += 1
        breaking = self.break_after if self.streams == 1 else None
        return FakeUploadCall(self, breaking)


class FakeUploadCall:
    def __init__(self, server: FakeUploadServer, break_after: int | None) -> None:
        self.server = server
        self.break_after = break_after
        self.requests: asyncio.Queue[pb.UploadFramesRequest | None] = asyncio.Queue()
        self.responses: asyncio.Queue[object] = asyncio.Queue()
        self.unanswered: list[tuple[int, pb.UploadItem]] = []
        self.index = 0
        self.answered = 0
        self.finished = False
        self.task = asyncio.ensure_future(self._serve())

    async def write(self, request: bytes) -> None:
        if self.finished:
            raise asyncio.InvalidStateError("RPC already finished")
        # Requests come encoded, as the service receives them.
        self.server.raw_requests.append((self.server.streams, request))
        await self.requests.put(pb.UploadFramesRequest.FromString(request))

    async def read(self) -> object:
        item = await self.responses.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def done_writing(self) -> None:
        await self.requests.put(None)

    def cancel(self) -> bool:
        self.task.cancel()
        return True

    async def _answer(self, count: int) -> None:
        batch, self.unanswered = self.unanswered[:count], self.unanswered[count:]
        results = []
        for index, item in batch:
            failed = item.frame.id in self.server.fail_ids
            results.append(Result(
                index=index, client_key=item.client_key, frame_id=item.frame.id, attempts=1,
                outcome=Result.OUTCOME_FAILED if failed else Result.OUTCOME_CREATED,
                error=InvalidArgument.field(f"frames[{index}].id", "rejected").to_status() if failed else None,
            ))
            self.server.answered_ids.append(item.frame.id)
        self.answered += len(batch)
        await self.responses.put(pb.UploadFramesResponse(results=pb.UploadResults(results=results)))

    async def _break(self) -> None:
        self.finished = True
        await self.responses.put(aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, aio.Metadata(), aio.Metadata(),
                                                 details="connection reset"))

    async def _serve(self) -> None:
        options = await self.requests.get()
        assert options is not None and options.HasField("options")
        await self.responses.put(pb.UploadFramesResponse(
            started=pb.UploadStarted(max_unacknowledged_frames=self.server.window)))
        while True:
            try:
                request = await asyncio.wait_for(self.requests.get(), timeout=0.002)
            except TimeoutError:
                # The client waits for credit: answer everything outstanding.
                await self._answer(len(self.unanswered))
                if self.break_after is not None and self.answered >= self.break_after:
                    await self._break()
                    return
                continue
            if request is None:
                break
            assert not request.HasField("options")
            self.server.messages.append(len(request.items))
            for item in request.items:
                self.unanswered.append((self.index, item))
                self.index += 1
            self.server.peak_unanswered = max(self.server.peak_unanswered, len(self.unanswered))
            if len(self.unanswered) > self.server.window:
                await self.responses.put(aio.AioRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, aio.Metadata(),
                                                         aio.Metadata(), details="window exceeded"))
                return
            # Answer some now, leave the rest for later, like a busy server.
            await asyncio.sleep(0)
            await self._answer(self.server.random.randint(0, len(self.unanswered)))
            if self.break_after is not None and self.answered >= self.break_after:
                await self._break()
                return
        while self.unanswered:
            await self._answer(len(self.unanswered))
        await self.responses.put(pb.UploadFramesResponse(summary=pb.UploadSummary(created=self.index)))
        await self.responses.put(aio.EOF)


def prepared(count: int, prefix: str = "f") -> list[PreparedFrame]:
    frames = [SingleFrame(source=f"s3://bucket/{prefix}{i}.jpg", id=f"{prefix}{i}") for i in range(count)]
    return [PreparedFrame(f, f.to_proto()) for f in frames]


async def batches_of(frames: list[PreparedFrame], size: int) -> AsyncIterator[list[PreparedFrame]]:
    for start in range(0, len(frames), size):
        yield frames[start:start + size]


async def run_upload(server: FakeUploadServer, frames: list[PreparedFrame], settings: ClientSettings,
                     batch_size: int = 100) -> tuple[FrameStreamUploader, list[tuple[Result, PreparedFrame]]]:
    results: list[tuple[Result, PreparedFrame]] = []
    uploader = FrameStreamUploader(server.open, pb.UploadOptions(upload_retries=2), settings,
                                   lambda result, item: results.append((result, item)))
    await asyncio.wait_for(uploader.run(batches_of(frames, batch_size)), timeout=60)
    return uploader, results


async def test_never_more_unanswered_frames_than_the_server_window() -> None:
    server = FakeUploadServer(window=64)
    frames = prepared(3000)
    uploader, results = await run_upload(server, frames, ClientSettings(upload_window_frames=1024))
    assert server.peak_unanswered <= 64
    assert uploader.window is not None and uploader.window.peak <= 64
    assert sorted(server.answered_ids) == sorted(f.proto.id for f in frames)
    assert len(results) == 3000
    # Many frames per message, never more than the window.
    assert max(server.messages) <= 64 and sum(server.messages) == 3000
    assert len(server.messages) < 3000 / 8


async def test_a_smaller_client_window_wins() -> None:
    server = FakeUploadServer(window=2000)
    await run_upload(server, prepared(500), ClientSettings(upload_window_frames=10, upload_frames_per_message=256))
    assert server.peak_unanswered <= 10
    assert max(server.messages) <= 10


async def test_message_size_cap_splits_messages() -> None:
    server = FakeUploadServer(window=1000)
    frames = prepared(200)
    one = frames[0].size
    await run_upload(server, frames, ClientSettings(upload_message_bytes=one * 10 + 1))
    assert max(server.messages) <= 10


async def test_broken_stream_resends_unanswered_frames_once_each() -> None:
    server = FakeUploadServer(window=50, break_after=120)
    frames = prepared(1000)
    uploader, results = await run_upload(server, frames, ClientSettings(retry_initial_backoff_seconds=0.001))
    assert server.streams == 2 and uploader.reconnects == 1
    ids = [item.proto.id for _, item in results]
    assert sorted(ids) == sorted(f.proto.id for f in frames)
    assert len(ids) == len(set(ids)), "every frame gets exactly one result"


async def test_failed_results_point_at_the_frame_sent() -> None:
    server = FakeUploadServer(window=32, fail_ids=frozenset({"f3", "f77"}))
    _, results = await run_upload(server, prepared(100), ClientSettings())
    failed = {item.proto.id: result for result, item in results if result.outcome == Result.OUTCOME_FAILED}
    assert set(failed) == {"f3", "f77"}
    assert failed["f3"].frame_id == "f3"


async def test_credit_window_blocks_until_released() -> None:
    window = CreditWindow(3)
    await window.acquire(3)
    waiter = asyncio.ensure_future(window.acquire(2))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    window.release(1)
    await asyncio.sleep(0.01)
    assert not waiter.done()
    window.release(1)
    await asyncio.wait_for(waiter, 1)
    assert window.in_flight == 3 and window.peak == 3
    with pytest.raises(ValueError):
        await window.acquire(4)


async def test_a_generator_is_read_lazily() -> None:
    """Frames are pulled from the caller's generator only as the window frees up."""
    pulled = 0
    server = FakeUploadServer(window=20)
    settings = ClientSettings(upload_window_frames=20, upload_prepare_batch_frames=16)
    max_ahead = 0
    answered = 0

    def frames():
        nonlocal pulled
        for i in range(2000):
            pulled += 1
            yield SingleFrame(source=f"s3://b/{i}.jpg", id=str(i))

    def on_result(result: Result, item: PreparedFrame) -> None:
        nonlocal answered, max_ahead
        answered += 1
        max_ahead = max(max_ahead, pulled - answered)

    preparer = FramePreparer(None, [])

    async def prepared_batches() -> AsyncIterator[list[PreparedFrame]]:
        async for batch in _aiter_batches(frames(), settings.upload_prepare_batch_frames):
            yield await preparer.prepare(batch)

    uploader = FrameStreamUploader(server.open, pb.UploadOptions(), settings, on_result)
    await asyncio.wait_for(uploader.run(_prefetch(prepared_batches())), timeout=60)
    assert answered == 2000
    # window + the batch being sent + the prefetched batch + the batch being prepared
    assert max_ahead <= 20 + 3 * 16


async def test_a_break_while_waiting_for_the_source_loses_nothing() -> None:
    """The stream breaks while the sender waits for the caller's next batch."""
    server = FakeUploadServer(window=1000, break_after=30)
    frames = prepared(200)
    results: list[tuple[Result, PreparedFrame]] = []

    async def slow_batches() -> AsyncIterator[list[PreparedFrame]]:
        for start in range(0, len(frames), 10):
            await asyncio.sleep(0.01)
            yield frames[start:start + 10]

    uploader = FrameStreamUploader(server.open, pb.UploadOptions(), ClientSettings(retry_initial_backoff_seconds=0.001),
                                   lambda result, item: results.append((result, item)))
    await asyncio.wait_for(uploader.run(_prefetch(slow_batches())), timeout=60)
    assert uploader.reconnects == 1
    assert sorted(item.proto.id for _, item in results) == sorted(f.proto.id for f in frames)


async def test_closing_the_prefetch_early_ends_it() -> None:
    """An upload that fails for good closes its source while the prefetch
    holds a full queue: closing must not wait for a consumer that is gone."""

    async def endless() -> AsyncIterator[int]:
        n = 0
        while True:
            yield n
            n += 1

    batches = _prefetch(endless())
    assert await anext(batches) == 0
    await asyncio.sleep(0)  # the pump fills the queue and waits on it
    closing = asyncio.ensure_future(batches.aclose())
    done, _ = await asyncio.wait({closing}, timeout=60)  # guards against a hang, not a speed check
    assert closing in done, "closing the prefetch never ended"


async def test_without_auto_upload_local_paths_become_file_uris(tmp_path) -> None:
    frame = SingleFrame(source=str(tmp_path / "a.jpg"), mask_source="masks/m.png", id="x")
    (ready,) = await FramePreparer(None, []).prepare([frame])
    assert ready.proto.sources[0].uri == (tmp_path / "a.jpg").as_uri()
    assert ready.proto.sources[0].masks[0].uri.startswith("file:///") and ready.proto.sources[0].masks[0].uri.endswith(
        "/masks/m.png")


def test_encoded_items_concatenate_into_the_request_of_those_frames() -> None:
    # Sizes on both sides of the one-, two- and three-byte length prefixes.
    small = SingleFrame(source="s3://bucket/a.jpg", id="a")
    annotated = SingleFrame(source="s3://bucket/b.jpg", id="b", width=4, height=3, metadata={"city": "Oslo", "n": 3})
    annotated.add_annotation(poly2d_xy=[0, 0, 1, 0, 1, 1], labels=["car"], confidence=0.5)
    large = SingleFrame(source="s3://bucket/c.jpg", id="c", blob=b"x" * 20_000)
    empty = frame_pb2.Frame()
    protos = [f.to_proto() for f in (small, annotated, large)] + [empty]
    encoded = b"".join(encode_upload_item(proto) for proto in protos)
    expected = pb.UploadFramesRequest(items=[pb.UploadItem(frame=proto) for proto in protos])
    assert pb.UploadFramesRequest.FromString(encoded) == expected
    assert len(encoded) == expected.ByteSize()
    assert [PreparedFrame(f, p).size for f, p in zip((small, annotated, large), protos, strict=False)] == [
        len(encode_upload_item(p)) for p in protos[:3]]


async def test_frames_resent_after_a_break_are_the_bytes_first_sent() -> None:
    server = FakeUploadServer(window=16, break_after=10)
    frames = prepared(60)
    await run_upload(server, frames, ClientSettings(upload_frames_per_message=4, retry_initial_backoff_seconds=0.001))
    first = b"".join(raw for stream, raw in server.raw_requests if stream == 1)
    later = b"".join(raw for stream, raw in server.raw_requests if stream > 1)
    resent = [f for f in frames if f.encoded in first and f.encoded in later]
    assert resent, "the break left no frame unanswered"
    assert sorted(server.answered_ids) == sorted(f.proto.id for f in frames)


def test_encoded_items_around_the_length_prefix_boundaries() -> None:
    # Frame and item lengths crossing 127/128 and 16383/16384 (one, two and three length bytes).
    for blob_length in [*range(110, 135), *range(16_360, 16_400)]:
        frame = frame_pb2.Frame(id="a", blob=b"x" * blob_length)
        parsed = pb.UploadFramesRequest.FromString(encode_upload_item(frame))
        assert parsed == pb.UploadFramesRequest(items=[pb.UploadItem(frame=frame)]), blob_length


async def test_a_single_local_file_among_remote_uris_is_found(tmp_path) -> None:
    # Each URI field of a single frame on its own: the source, the preview, one of several masks.
    remote = "s3://bucket/a.jpg"
    local = tmp_path / "local.png"
    frames = [
        SingleFrame(source=str(local), preview_uri=remote, mask_source=remote, id="source"),
        SingleFrame(source=remote, preview_uri=str(local), mask_source=remote, id="preview"),
        SingleFrame(source=remote, preview_uri=remote, mask_source={"a": remote, "b": str(local)}, id="mask"),
    ]
    ready = await FramePreparer(None, []).prepare(frames)
    source, preview, mask = (r.proto.sources[0] for r in ready)
    assert source.uri == local.as_uri() and source.preview.uri == remote
    assert preview.uri == remote and preview.preview.uri == local.as_uri()
    assert [m.uri for m in mask.masks] == [remote, local.as_uri()]
    assert all(pb.UploadFramesRequest.FromString(r.encoded).items[0].frame == r.proto for r in ready)


@pytest.mark.parametrize("container", [list, tuple])
async def test_lists_and_tuples_are_batched_in_order_without_a_thread(container, monkeypatch) -> None:
    async def no_thread(*args, **kwargs):
        raise AssertionError("an in-memory sequence needs no thread")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    items = container(range(10))
    assert [batch async for batch in _aiter_batches(items, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [batch async for batch in _aiter_batches(container(), 4)] == []


async def test_encoded_and_converted_frames_keep_their_order(tmp_path) -> None:
    # Frames encoded directly, converted to protos (a local file, a numpy value) and invalid ones, mixed.
    import numpy as np

    frames = [SingleFrame(source="s3://b/0.jpg", id="0"), SingleFrame(source=str(tmp_path / "1.jpg"), id="1"),
              SingleFrame(source="s3://b/2.jpg", id="2", width="wide"), SingleFrame(source="s3://b/3.jpg", id="3"),
              SingleFrame(source="s3://b/4.jpg", id="4", width=np.int64(4)), SingleFrame(source="s3://b/5.jpg", id="5")]
    failed: list = []
    ready = await FramePreparer(None, failed).prepare(frames)
    assert [r.original for r in ready] == [frames[i] for i in (0, 1, 3, 4, 5)]
    assert [r.proto.id for r in ready] == ["0", "1", "3", "4", "5"]
    assert [f.frame for f in failed] == [frames[2]]
