"""Streaming frames into a draft version: ``UploadFrames`` with a credit window.

The pipeline, with memory bounded whatever the input length:

1. the caller's frames (any iterable, sync or async, e.g. a generator) are
   read a batch at a time;
2. local files among their sources, previews and masks are uploaded to the
   blob service (find-missing first) and replaced by ``blob:`` URIs, while
   the previous batch is being sent;
3. frames go out many per message, never more than the window allows: at
   most ``started.max_unacknowledged_frames`` (or the smaller client setting)
   frames sent and not yet answered by a ``FrameResult``;
4. when the stream breaks, the frames sent but unanswered are sent again on
   a new stream, first. Upserts keyed by frame id make that safe.

The outcome is the list of frames that were not registered, each with its
error: partial success, as the contract describes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import grpc
from grpc import aio

from framevault.sdk.blobs import BlobTransfer
from framevault.sdk.client import FramevaultClient, retry_policy
from framevault.sdk.errors import FieldViolation, FramevaultError
from framevault.sdk.frame_codec import encode_frame, field_key, frame_to_proto, varint
from framevault.sdk.frames import FrameGroup, FrameLike, SingleFrame
from framevault.sdk.progress import LazyBar, progress_bar
from framevault.sdk.settings import ClientSettings
from framevault.sdk.sources import is_local_uri, local_path
from framevault.v1 import dataset_pb2, frame_pb2, metadata_service_pb2

T = TypeVar("T")

# Codes after which a broken stream is reopened and the unanswered frames resent.
RECONNECT_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass
class FailedFrame:
    """A frame that was not registered, and why.

    Attributes:
        frame: the frame as the caller passed it.
        error: the reason (``error.field_violations`` name the fields at fault).
        frame_id: the id the service gave or derived ("" when unknown).
        attempts: attempts the service made (0 when it was never sent).
    """

    frame: FrameLike
    error: FramevaultError
    frame_id: str = ""
    attempts: int = 0


@dataclass
class UploadTotals:
    """What one ``add_frames`` call did."""

    created: int = 0
    updated: int = 0
    # Frames the service already held with this content; nothing was written.
    unchanged: int = 0
    failed: list[FailedFrame] = field(default_factory=list)
    reconnects: int = 0


_ITEMS_KEY = field_key(metadata_service_pb2.UploadFramesRequest, "items")
_ITEM_FRAME_KEY = field_key(metadata_service_pb2.UploadItem, "frame")


def upload_item(encoded_frame: bytes) -> bytes:
    """An encoded ``framevault.v1.Frame`` as one ``items`` entry of an encoded ``UploadFramesRequest`` (an
    ``UploadItem`` with only its frame). Repeated fields are encoded one entry after the other, so a
    request of several frames is the concatenation of their entries: each frame is encoded once, never
    copied into a request message, and sent again as the same bytes after a reconnect."""
    size = len(encoded_frame)
    if size < _TWO_BYTE_LENGTH_MAX:
        # Most frames: both lengths in one or two bytes, the item's prefix from one table.
        prefix = _ITEM_PREFIXES.get(size)
        if prefix is None:
            prefix = _ITEM_PREFIXES[size] = _item_prefix(size)
        return prefix + encoded_frame
    return _item_prefix(size) + encoded_frame


def _item_prefix(frame_size: int) -> bytes:
    """What precedes an encoded frame of ``frame_size`` bytes in its ``items`` entry."""
    frame_length = varint(frame_size)
    return _ITEMS_KEY + varint(len(_ITEM_FRAME_KEY) + len(frame_length) + frame_size) + _ITEM_FRAME_KEY + frame_length


# Item prefixes by frame size, filled as frames of each size come (sizes whose lengths fit in two bytes).
_TWO_BYTE_LENGTH_MAX = 0x4000 - 8
_ITEM_PREFIXES: dict[int, bytes] = {}


def encode_upload_item(frame: frame_pb2.Frame) -> bytes:
    """``frame`` as one ``items`` entry of an encoded ``UploadFramesRequest`` (see :func:`upload_item`)."""
    return upload_item(frame.SerializeToString())


class PreparedFrame:
    """A frame ready to send: the caller's object and its frame (local files replaced) as an entry of an
    ``UploadFramesRequest`` (see :func:`upload_item`), made from the frame's message or its encoding."""

    __slots__ = ("_proto", "encoded", "original")

    def __init__(self, original: FrameLike, frame: frame_pb2.Frame | bytes) -> None:
        self.original = original
        if isinstance(frame, bytes):
            self._proto: frame_pb2.Frame | None = None
            self.encoded = upload_item(frame)
        else:
            self._proto = frame
            self.encoded = encode_upload_item(frame)

    @property
    def proto(self) -> frame_pb2.Frame:
        """The frame as a message (decoded from the entry when it was prepared from its encoding)."""
        if self._proto is None:
            self._proto = metadata_service_pb2.UploadFramesRequest.FromString(self.encoded).items[0].frame
        return self._proto

    @property
    def size(self) -> int:
        """Bytes the frame adds to a request."""
        return len(self.encoded)


class UploadCall(Protocol):
    """The part of a grpc.aio stream-stream call the uploader uses; requests go as encoded
    ``UploadFramesRequest`` messages."""

    async def write(self, request: bytes) -> None: ...

    async def read(self) -> Any: ...

    async def done_writing(self) -> None: ...

    def cancel(self) -> bool: ...


class CreditWindow:
    """At most ``limit`` frames sent and not yet answered; the sender waits for credit."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the window must allow at least one frame")
        self.limit = limit
        self.in_flight = 0
        self.peak = 0
        self._freed = asyncio.Event()

    def available(self) -> int:
        return self.limit - self.in_flight

    async def acquire(self, count: int) -> None:
        """Waits until ``count`` more frames fit, then takes them."""
        if count > self.limit:
            raise ValueError(f"cannot take {count} credits from a window of {self.limit}")
        while self.in_flight + count > self.limit:
            self._freed.clear()
            await self._freed.wait()
        self.in_flight += count
        self.peak = max(self.peak, self.in_flight)

    def release(self, count: int = 1) -> None:
        """Gives back credit for answered frames."""
        self.in_flight = max(0, self.in_flight - count)
        self._freed.set()


class StreamBroken(Exception):
    """The stream ended without answering every frame sent on it."""


class FrameStreamUploader:
    """Drives UploadFrames streams until every prepared frame has a result.

    ``open_call`` opens a new stream (a fake one in unit tests);
    ``on_result`` receives each frame's result with the frame it answers;
    ``call_error`` converts a failed stream (``FramevaultClient.call_error``).
    """

    def __init__(
        self,
        open_call: Callable[[], UploadCall],
        options: metadata_service_pb2.UploadOptions,
        settings: ClientSettings,
        on_result: Callable[[metadata_service_pb2.FrameResult, PreparedFrame], None],
        call_error: Callable[[grpc.RpcError], Awaitable[FramevaultError]] | None = None,
    ) -> None:
        self.open_call = open_call
        self.call_error = call_error
        self.options = options
        self.settings = settings
        self.on_result = on_result
        self.reconnects = 0
        self.window: CreditWindow | None = None
        self._outbox: deque[PreparedFrame] = deque()
        self._source_done = False
        # The pull of the caller's next batch outlives a broken stream: cancelling
        # it would close the caller's generator and silently drop the rest.
        self._next_batch: asyncio.Future[list[PreparedFrame] | None] | None = None

    async def run(self, batches: AsyncIterator[list[PreparedFrame]]) -> None:
        """Sends every frame of ``batches``; returns once each has a result.

        Raises:
            FramevaultError: the stream failed for good (e.g. NOT_FOUND version,
                FAILED_PRECONDITION published version, or too many reconnects).
        """
        try:
            await self._run_streams(batches)
        finally:
            if self._next_batch is not None and not self._next_batch.done():
                self._next_batch.cancel()
                with contextlib.suppress(BaseException):
                    await self._next_batch

    async def _run_streams(self, batches: AsyncIterator[list[PreparedFrame]]) -> None:
        # The first stream and then up to stream_reconnect_attempts reconnections in a row.
        policy = retry_policy(self.settings, self.settings.stream_reconnect_attempts + 1, RECONNECT_CODES)
        failures_in_a_row = 0
        while True:
            in_flight: dict[int, PreparedFrame] = {}
            answered = [0]
            try:
                await self._one_stream(batches, in_flight, answered)
                return
            except (grpc.RpcError, StreamBroken) as exc:
                error = None
                if isinstance(exc, grpc.RpcError):
                    error = await self.call_error(exc) if self.call_error else FramevaultError.from_rpc_error(exc)
                if error is not None and not policy.is_retryable(error.code):
                    raise error from None
                failures_in_a_row = 1 if answered[0] else failures_in_a_row + 1
                if failures_in_a_row >= policy.max_attempts:
                    if error is not None:
                        raise error from None
                    raise FramevaultError.client_side(
                        grpc.StatusCode.UNAVAILABLE, f"upload stream kept breaking: {exc}") from None
                # Unanswered frames go first on the next stream, in their original order.
                self._outbox.extendleft(in_flight[i] for i in sorted(in_flight, reverse=True))
                self.reconnects += 1
                await asyncio.sleep(policy.delay(failures_in_a_row, error.retry_delay if error else None))

    async def _one_stream(
        self, batches: AsyncIterator[list[PreparedFrame]], in_flight: dict[int, PreparedFrame], answered: list[int],
    ) -> None:
        call = self.open_call()
        try:
            await call.write(metadata_service_pb2.UploadFramesRequest(options=self.options).SerializeToString())
            first = await call.read()
            if first is aio.EOF or first.WhichOneof("message") != "started":
                raise StreamBroken("the server did not start the upload")
            advertised = first.started.max_unacknowledged_frames
            limit = min(advertised, self.settings.upload_window_frames) if advertised > 0 else \
                self.settings.upload_window_frames
            self.window = window = CreditWindow(max(1, limit))
            sender = asyncio.ensure_future(self._send(call, batches, window, in_flight))
            receiver = asyncio.ensure_future(self._receive(call, window, in_flight, answered))
            try:
                done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if sender in done and isinstance(sender.exception(), asyncio.InvalidStateError):
                    # Writing failed because the call is over; reading tells why.
                    await receiver
                    raise StreamBroken("the server closed the stream")
                if receiver in done:
                    receiver.result()
                    if not sender.done():
                        raise StreamBroken("the server closed the stream before every frame was sent")
                await sender
                await receiver
            finally:
                for task in (sender, receiver):
                    if not task.done():
                        task.cancel()
                        with contextlib.suppress(BaseException):
                            await task
            if in_flight:
                raise StreamBroken(f"the stream ended with {len(in_flight)} frames unanswered")
        finally:
            call.cancel()

    async def _send(
        self,
        call: UploadCall,
        batches: AsyncIterator[list[PreparedFrame]],
        window: CreditWindow,
        in_flight: dict[int, PreparedFrame],
    ) -> None:
        per_message = max(1, min(self.settings.upload_frames_per_message, window.limit))
        next_index = 0
        while True:
            if not self._outbox and not self._source_done:
                if self._next_batch is None:
                    self._next_batch = asyncio.ensure_future(anext(batches, None))
                batch = await asyncio.shield(self._next_batch)
                self._next_batch = None
                if batch is None:
                    self._source_done = True
                else:
                    self._outbox.extend(batch)
                continue
            if not self._outbox:
                break
            wanted = min(per_message, len(self._outbox))
            await window.acquire(wanted)
            items: list[PreparedFrame] = []
            size = 0
            while self._outbox and len(items) < wanted:
                candidate = self._outbox[0]
                if items and size + candidate.size > self.settings.upload_message_bytes:
                    break
                items.append(self._outbox.popleft())
                size += candidate.size
            window.release(wanted - len(items))
            # Results name their frame by its index in the stream, so frames are sent without a client_key.
            for item in items:
                in_flight[next_index] = item
                next_index += 1
            await call.write(b"".join([item.encoded for item in items]))
        await call.done_writing()

    async def _receive(
        self, call: UploadCall, window: CreditWindow, in_flight: dict[int, PreparedFrame], answered: list[int],
    ) -> None:
        while True:
            message = await call.read()
            if message is aio.EOF:
                return
            if message.WhichOneof("message") != "results":
                continue
            on_result = self.on_result
            answered_before = answered[0]
            for result in message.results.results:
                item = in_flight.pop(result.index, None)
                if item is None:
                    continue
                answered[0] += 1
                on_result(result, item)
            # The sender runs only once this returns to the loop: credit for the whole message at once
            # wakes it as early as credit per result would.
            window.release(answered[0] - answered_before)


# --- preparing frames -----------------------------------------------------


async def _aiter_batches(frames: Iterable[T] | AsyncIterable[T], size: int) -> AsyncIterator[list[T]]:
    """The caller's frames in lists of ``size``; sync iterables are read off the event loop."""
    if isinstance(frames, AsyncIterable):
        batch: list[T] = []
        async for item in frames:
            batch.append(item)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch
        return
    if type(frames) is list or type(frames) is tuple:
        # Already in memory, and slicing runs none of the caller's code: no trip to a thread per batch.
        for start in range(0, len(frames), size):
            yield list(frames[start:start + size])
        return
    iterator = iter(frames)
    while True:
        # A generator may read files or decode images while producing frames.
        chunk = await asyncio.to_thread(lambda: list(itertools.islice(iterator, size)))
        if not chunk:
            return
        yield chunk


async def _prefetch(source: AsyncIterator[T], depth: int = 1) -> AsyncGenerator[T, None]:
    """Runs ``source`` ahead of its consumer by at most ``depth`` items."""
    queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue(maxsize=depth)

    async def pump() -> None:
        try:
            async for item in source:
                await queue.put((False, item))
            await queue.put((True, None))
        except asyncio.CancelledError:
            # The consumer is gone (it cancels us when it closes): nobody
            # would take an item from the full queue, so just end.
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            await queue.put((True, exc))

    task = asyncio.ensure_future(pump())
    try:
        while True:
            finished, value = await queue.get()
            if finished:
                if isinstance(value, BaseException):
                    raise value
                return
            yield value
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def _local_uri_fields(frame: frame_pb2.Frame) -> list[tuple[str, Any]]:
    """(field path, message with a ``uri``) of every URI in a frame that names a local file."""
    found: list[tuple[str, Any]] = []
    for i, source in enumerate(frame.sources):
        if is_local_uri(source.uri):
            found.append((f"sources[{i}].uri", source))
        if source.HasField("preview") and is_local_uri(source.preview.uri):
            found.append((f"sources[{i}].preview.uri", source.preview))
        for j, mask in enumerate(source.masks):
            if is_local_uri(mask.uri):
                found.append((f"sources[{i}].masks[{j}].uri", mask))
    return found


def _may_name_local_files(frame: FrameLike) -> bool:
    """False when ``frame`` is a single frame or a frame group whose URIs are all remote: it is sent as
    :func:`encode_frame` writes it. The others go through their proto, where local files are found and
    replaced (they are hashed and maybe uploaded, which costs far more than the proto)."""
    if type(frame) is SingleFrame:
        return _member_may_name_local_files(frame)
    if type(frame) is FrameGroup:
        return any([_member_may_name_local_files(member) for member in frame.values()])
    return True


def _member_may_name_local_files(frame: SingleFrame) -> bool:
    # A URI that is not a str (bytes, say) is left to the proto, which converts it or says what is wrong.
    source = frame.source
    if type(source) is not str or is_local_uri(source):
        return True
    preview_uri = frame.preview_uri
    if preview_uri and (type(preview_uri) is not str or is_local_uri(preview_uri)):
        return True
    for uri in frame.masks.values():
        if type(uri) is not str or is_local_uri(uri):
            return True
    return False


class FramePreparer:
    """Turns the caller's frames into request entries, uploading local files on the way."""

    def __init__(self, blobs: BlobTransfer | None, failed: list[FailedFrame]) -> None:
        self.blobs = blobs
        self.failed = failed

    async def prepare(self, batch: list[FrameLike]) -> list[PreparedFrame]:
        # Encoded frames are ready at once; those converted to protos wait here, in their places,
        # until their local files have blob URIs.
        prepared: list[PreparedFrame | tuple[FrameLike, frame_pb2.Frame]] = []
        converted = False
        # The frames naming local files, with those fields.
        with_files: list[tuple[FrameLike, frame_pb2.Frame, list[tuple[str, Any]]]] = []
        for original in batch:
            encoded = None if _may_name_local_files(original) else encode_frame(original)
            if encoded is not None:
                prepared.append(PreparedFrame(original, encoded))
                continue
            try:
                proto = frame_to_proto(original)
            except (TypeError, ValueError) as exc:
                self.failed.append(FailedFrame(original, FramevaultError.client_side(
                    grpc.StatusCode.INVALID_ARGUMENT, f"not a valid frame: {exc}")))
                continue
            prepared.append((original, proto))
            converted = True
            local = _local_uri_fields(proto)
            if local:
                with_files.append((original, proto, local))
        if not converted:
            return prepared  # type: ignore[return-value]  # every entry is a PreparedFrame
        refused: set[int] = set()
        if with_files and self.blobs is None:
            for _, _, local in with_files:
                for _, message in local:
                    message.uri = Path(local_path(message.uri)).absolute().as_uri()
        elif with_files and self.blobs is not None:
            outcome = await self.blobs.upload_files(
                sorted({local_path(message.uri) for _, _, local in with_files for _, message in local}))
            for original, proto, local in with_files:
                for field_path, message in local:
                    path = local_path(message.uri)
                    if path in outcome.errors:
                        self.failed.append(FailedFrame(original, _with_field(outcome.errors[path], field_path)))
                        refused.add(id(proto))
                        break
                    message.uri = outcome.digests[path].uri
        return [entry if isinstance(entry, PreparedFrame) else PreparedFrame(*entry)
                for entry in prepared if isinstance(entry, PreparedFrame) or id(entry[1]) not in refused]


def _with_field(error: FramevaultError, field_path: str) -> FramevaultError:
    """The same error, naming the frame field whose file it is about."""
    return type(error)(
        error.code,
        f"{field_path}: {error.message}",
        reason=error.reason,
        domain=error.domain,
        error_metadata=error.error_metadata,
        field_violations=[FieldViolation(field_path, error.message), *error.field_violations],
        resource_info=error.resource_info,
        precondition_violations=error.precondition_violations,
        retry_delay=error.retry_delay,
    )


async def upload_frames(
    client: FramevaultClient,
    version: dataset_pb2.VersionRef,
    frames: Iterable[FrameLike] | AsyncIterable[FrameLike],
    *,
    upload_retries: int,
    auto_upload: bool = True,
    progress: bool | None = None,
) -> UploadTotals:
    """Streams ``frames`` into the draft ``version``; see the module docstring.

    Raises:
        FramevaultError: the stream as a whole failed (e.g. the version is
            published or does not exist). Per-frame failures are returned.
    """
    settings = client.settings
    totals = UploadTotals()
    bar = progress_bar(progress, desc="uploading frames", unit="frame",
                       total=len(frames) if isinstance(frames, Sized) else None)
    bytes_bar = LazyBar(progress, desc="uploading blobs", unit="B", total=0, unit_scale=True, unit_divisor=1024)
    blobs = BlobTransfer(client, bar=bytes_bar) if auto_upload else None
    preparer = FramePreparer(blobs, totals.failed)

    async def prepared_batches() -> AsyncIterator[list[PreparedFrame]]:
        async for batch in _aiter_batches(frames, max(1, settings.upload_prepare_batch_frames)):
            failed_before = len(totals.failed)
            ready = await preparer.prepare(batch)
            bar.update(len(totals.failed) - failed_before)
            if ready:
                yield ready

    # The failure count the bar shows; redrawn only when it changes.
    shown_failures = -1

    created, updated, unchanged = (metadata_service_pb2.FrameResult.OUTCOME_CREATED,
                                   metadata_service_pb2.FrameResult.OUTCOME_UPDATED,
                                   metadata_service_pb2.FrameResult.OUTCOME_UNCHANGED)

    def on_result(result: metadata_service_pb2.FrameResult, item: PreparedFrame) -> None:
        nonlocal shown_failures
        bar.update(1)
        outcome = result.outcome
        if outcome == created:
            totals.created += 1
        elif outcome == updated:
            totals.updated += 1
        elif outcome == unchanged:
            totals.unchanged += 1
        else:
            error = FramevaultError.from_status(result.error) if result.HasField("error") else \
                FramevaultError.client_side(grpc.StatusCode.UNKNOWN, "the service reported no outcome")
            totals.failed.append(FailedFrame(item.original, error, result.frame_id, result.attempts))
        if shown_failures != len(totals.failed):
            shown_failures = len(totals.failed)
            bar.set_postfix(failed=shown_failures, refresh=False)

    options = metadata_service_pb2.UploadOptions(version=version, upload_retries=upload_retries)
    uploader = FrameStreamUploader(lambda: client.upload_frames_encoded(), options, settings, on_result,
                                   lambda exc: client.call_error(exc, client.metadata.UploadFrames))
    source = _prefetch(prepared_batches())
    try:
        with bar, bytes_bar:
            await uploader.run(source)
    finally:
        await source.aclose()
    totals.reconnects = uploader.reconnects
    return totals
