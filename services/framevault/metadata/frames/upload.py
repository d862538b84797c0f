"""The upload stream: frames in, one result per frame out (partial success).

Shape of the work:
- Requests arrive as their bytes (``ReceivedUploadRequest``, the method's
  request deserializer): the frame codec takes each apart and checks its
  frames, so frames never become Python protobuf objects. A request's items
  stay together (``_RequestItems``: their ids, etags and client keys as one
  list each), and a frame that is valid and needs nothing of the blob service
  is written from there: its document comes out of the codec with those of
  its batch, its result goes back in the codec's encoding of the batch's
  response.
- ``_Intake`` reads the request stream ahead of processing, but never more
  than ``upload_window_frames`` frames without a result (the credit window the
  client also keeps) nor more than a byte budget, so memory stays bounded
  whatever the stream length. It queues requests, not frames.
- ``_BatchWriter`` takes what has arrived (up to ``upload_batch_frames``),
  validates each frame, stores inline bytes and checks ``blob:`` references
  in the blob service, then writes the batch in ONE MongoDB transaction with
  the STORAGE.md write rules. A transient failure retries the frames it hit
  with exponential backoff and jitter, counting attempts per frame, up to the
  caller's ``upload_retries``. A write conflict of several frames (another
  writer has one of them) is retried at once in halves, uncharged, so only
  the contended frames wait and spend retries; a non-transient failure of a
  batch falls back to one transaction per frame so only the frame at fault
  fails. Frames that reference no blob never wait on the blob service.
- Results go out per batch in arrival order, then a summary.

A duplicate frame id within the stream is an upsert: applied in stream order,
the later frame wins and both are reported.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections import deque
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import structlog

from framevault.common.config import Settings
from framevault.common.errors import (
    FailedPrecondition,
    FieldErrors,
    FieldViolation,
    FramevaultError,
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    TooLargeToStore,
    WriteConflict,
)
from framevault.common.request_decoding import UndecodableRequest, split_repeated, tolerant
from framevault.metadata.blobs import BlobGateway
from framevault.metadata.catalog.documents import version_to_proto
from framevault.metadata.frame_documents import EncodedRevision, now_ms
from framevault.metadata.frames.blob_refs import missing_blobs_error, store_inline_blobs
from framevault.metadata.frames.revisions import Written, write_revisions
from framevault.metadata.frames.store import FrameStore
from framevault.metadata.frames.validation import (
    MAX_CLIENT_KEY_BYTES,
    CheckedFrame,
    FrameLimits,
    PreparedFrame,
    UploadItems,
    frame_violations,
    split_upload_items,
    text_problem,
    upload_results_response,
)
from framevault.metadata.frames.write_leases import write_lease
from framevault.metadata.lineage import VersionHandle, live_frame_counts, require_draft, resolve_version_document
from framevault.metadata.transactions import backoff_seconds, transient_error
from framevault.v1 import metadata_service_pb2

log = structlog.get_logger("framevault.upload")

Outcome = metadata_service_pb2.FrameResult.Outcome
CREATED = metadata_service_pb2.FrameResult.OUTCOME_CREATED
UPDATED = metadata_service_pb2.FrameResult.OUTCOME_UPDATED
UNCHANGED = metadata_service_pb2.FrameResult.OUTCOME_UNCHANGED
FAILED = metadata_service_pb2.FrameResult.OUTCOME_FAILED
UNSPECIFIED = metadata_service_pb2.FrameResult.OUTCOME_UNSPECIFIED

MAX_UPLOAD_RETRIES = 10
# The summary lists at most this many ids (the counts stay exact; every
# failed frame also had its own result).
MAX_SUMMARY_FAILED_IDS = 100_000


@dataclass(slots=True)
class _ItemCheck:
    """An item of a request that is not ready to be written as it is (see
    ``_RequestItems``), before its index in the stream is known."""

    client_key: str
    # Why the client key is refused, or None.
    key_problem: str | None
    # The codec's check of the frame, field paths relative to the frame; None
    # when the frame does not decode (``frame_problem`` says why) or the item
    # does not (``undecodable``).
    checked: CheckedFrame | None
    frame_problem: str | None = None
    undecodable: UndecodableRequest | None = None


_DecodeRequest = tolerant(metadata_service_pb2.UploadFramesRequest.FromString)
_DecodeItem = tolerant(metadata_service_pb2.UploadItem.FromString)


class _RequestItems:
    """The items of one request, checked: what the stream reads of each
    frame as one list per field (``frame_ids``, ``etags``, ``client_keys``,
    ``ready``: valid, an acceptable client key, nothing to do in the blob
    service), the rest per item (``check``) for the few that are not ready.

    The frame codec's ``UploadItems`` answers, except for items it did not
    decode: the protobuf runtime decoded those (all of a request whose own
    framing the codec refused) and they are answered from that decoding."""

    __slots__ = ("_decoded", "_items", "client_keys", "etags", "frame_ids", "ready")

    def __init__(self, items: UploadItems | None, decoded: dict[int, _ItemCheck]):
        self._items = items
        self._decoded = decoded
        if items is not None:
            self.frame_ids, self.etags = items.frame_ids, items.etags
            self.client_keys, self.ready = items.client_keys, items.ready
        else:
            count = len(decoded)
            self.frame_ids, self.etags, self.client_keys = [""] * count, [""] * count, [""] * count
            self.ready = [False] * count
        # The codec answered "" and not ready for the items it did not decode.
        for position, check in decoded.items():
            checked = check.checked
            self.frame_ids[position] = "" if checked is None else checked.frame_id
            self.client_keys[position] = check.client_key
            if checked is not None and checked.is_valid:
                self.etags[position] = checked.etag
                self.ready[position] = (check.key_problem is None and not checked.referenced_blobs
                                        and not checked.inline_blobs)

    @classmethod
    def of_codec(cls, items: UploadItems, limits: FrameLimits) -> _RequestItems:
        decoded: dict[int, _ItemCheck] = {}
        for position, ready in enumerate(items.ready):
            if not ready and (undecoded := items.item(position)[3]) is not None:
                decoded[position] = _item_check(_DecodeItem(undecoded), limits)
        return cls(items, decoded)

    def __len__(self) -> int:
        return len(self.ready)

    def check(self, position: int) -> _ItemCheck:
        """The item at ``position`` as received."""
        decoded = self._decoded.get(position)
        if decoded is not None:
            return decoded
        assert self._items is not None
        client_key, key_problem, checked, _ = self._items.item(position)
        return _ItemCheck(client_key, key_problem, checked)

    def documents(self, positions: list[int], dataset_id: str, version_id: str, saved_ms: int) -> list[bytes]:
        """The revision documents of the valid frames at ``positions``."""
        if not self._decoded and self._items is not None:
            return self._items.documents(positions, dataset_id, version_id, saved_ms)
        documents = []
        for position in positions:
            checked = self.check(position).checked
            assert checked is not None
            documents.append(checked.document(dataset_id, version_id, saved_ms))
        return documents


_NO_ITEMS = _RequestItems(None, {})


class ReceivedUploadRequest:
    """An UploadFramesRequest as received: the request without its items
    (``header``, a message), its items checked by the frame codec
    (``items``), and its encoded size.

    The request is taken apart when first asked (``check``): the stream's
    intake does that on the checker thread, where the codec works without the
    GIL while the event loop writes earlier frames. The answers are those of
    the request decoded by the protobuf runtime: whatever the codec does not
    decode itself (broken framing, a header or an item it refuses) is decoded
    by the runtime and checked as a message.
    """

    __slots__ = ("_checked", "_data", "_header", "_items", "_limits", "size")

    def __init__(self, data: bytes, limits: FrameLimits):
        self._data = data
        self._limits = limits
        self._checked = False
        self.size = len(data)
        self._header = metadata_service_pb2.UploadFramesRequest()
        self._items = _NO_ITEMS

    @property
    def header(self) -> metadata_service_pb2.UploadFramesRequest:
        self.check()
        return self._header

    @property
    def items(self) -> _RequestItems:
        self.check()
        return self._items

    @property
    def decoded_header(self) -> metadata_service_pb2.UploadFramesRequest | None:
        """The request without its items when the whole request decodes, else
        None: what the permission rule reads (of the first request only).
        Asked of the runtime, which also refuses requests nested deeper than it
        decodes while each of their items decodes on its own."""
        if isinstance(_DecodeRequest(self._data), UndecodableRequest):
            return None
        return self.header

    def check(self) -> None:
        """Takes the request apart and checks its items, once."""
        if self._checked:
            return
        self._checked = True
        limits = self._limits
        split = split_upload_items(limits.codec, self._data, MAX_CLIENT_KEY_BYTES)
        header = None if split is None else _DecodeRequest(split[0])
        if split is None or not isinstance(header, metadata_service_pb2.UploadFramesRequest):
            self._header, items, _ = split_repeated(_DecodeRequest(self._data), "items")
            self._items = _RequestItems(None, {i: _item_check(item, limits) for i, item in enumerate(items)})
            # The runtime decoded it whole (a group the codec does not read): the items are taken.
            self._header.ClearField("items")
            return
        self._header = header
        self._items = _RequestItems.of_codec(split[1], limits)

    @staticmethod
    def deserializer(settings: Settings) -> Any:
        """The request deserializer of UploadFrames."""
        limits = FrameLimits.from_settings(settings)
        return lambda data: ReceivedUploadRequest(data, limits)


@functools.cache
def _checker() -> ThreadPoolExecutor:
    """Takes requests apart (``ReceivedUploadRequest.check``) for every upload
    stream of the process: the codec's work then runs beside the event loop."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload-check")


async def _checked(request: ReceivedUploadRequest) -> ReceivedUploadRequest:
    await asyncio.get_running_loop().run_in_executor(_checker(), request.check)
    return request


def _item_check(item: metadata_service_pb2.UploadItem | UndecodableRequest, limits: FrameLimits) -> _ItemCheck:
    """The check of an item decoded by the protobuf runtime."""
    if isinstance(item, UndecodableRequest):
        return _ItemCheck("", None, None, undecodable=item)
    key_problem = text_problem(item.client_key, MAX_CLIENT_KEY_BYTES, required=False)
    try:
        checked = limits.codec.check(item.frame.SerializeToString(), "")
    except ValueError as exc:
        return _ItemCheck(item.client_key, key_problem, None, frame_problem=str(exc))
    return _ItemCheck(item.client_key, key_problem, checked)


@dataclass(slots=True)
class _Segment:
    """Items of one request that arrived together: positions ``start`` to
    ``stop`` of ``items``, the first of them frame ``first_index`` of the
    stream."""

    items: _RequestItems
    start: int
    stop: int
    first_index: int
    # Share of its request message's size per item, for the read-ahead byte budget.
    item_size: int

    def __len__(self) -> int:
        return self.stop - self.start


_END = object()


class _Intake:
    """Reads requests ahead of processing within the credit window.

    The client may have at most ``window`` frames sent without a result; so
    may we. A client exceeding it is told so (RESOURCE_EXHAUSTED) instead of
    making the server buffer. Besides frames, buffered bytes are bounded: when
    over the budget the reader stops reading and HTTP/2 flow control holds the
    client back.
    """

    def __init__(self, requests: AsyncIterator[ReceivedUploadRequest], window: int,
                 byte_budget: int):
        self._requests = requests
        self._window = window
        self._byte_budget = byte_budget
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        # What is left of a request a batch took only part of.
        self._rest: _Segment | None = None
        self._next_index = 0
        self._unanswered = 0
        self._buffered_bytes = 0
        self._room = asyncio.Event()
        self._ended = False
        self._stashed_error: BaseException | None = None

    async def read(self, first: ReceivedUploadRequest) -> None:
        try:
            self._accept(first)
            async for request in self._requests:
                self._accept(await _checked(request), later=True)
                while self._buffered_bytes >= self._byte_budget:
                    self._room.clear()
                    await self._room.wait()
            self._queue.put_nowait(_END)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the processing side, which fails the stream
            self._queue.put_nowait(exc)

    def _accept(self, request: ReceivedUploadRequest, later: bool = False) -> None:
        # A message that does not decode fails only its items that do not.
        items, size = request.items, request.size
        if later and request.header.HasField("options"):
            raise InvalidArgument.field("options", "only the first request of the stream carries options")
        count = len(items)
        if not count:
            return
        if self._unanswered + count > self._window:
            raise ResourceExhausted(
                f"more than max_unacknowledged_frames={self._window} frames sent without a result; "
                "wait for results before sending more",
                reason="UPLOAD_WINDOW_EXCEEDED",
            )
        share = max(1, size // count)
        self._queue.put_nowait(_Segment(items, 0, count, self._next_index, share))
        self._next_index += count
        self._unanswered += count
        self._buffered_bytes += share * count

    def answered(self, batch: Sequence[_Segment]) -> None:
        for segment in batch:
            self._unanswered -= len(segment)
            self._buffered_bytes -= segment.item_size * len(segment)
        self._room.set()

    async def next_batch(self, limit: int) -> list[_Segment] | None:
        """Up to ``limit`` frames that have arrived (waits for at least one),
        as the segments of requests they came in; None once the client
        half-closed and everything was taken."""
        if self._stashed_error is not None:
            raise self._stashed_error
        if self._ended:
            return None
        batch: list[_Segment] = []
        room = limit
        if self._rest is not None:
            entry: Any = self._rest
            self._rest = None
        else:
            entry = await self._queue.get()
        while True:
            if entry is _END:
                self._ended = True
                break
            if isinstance(entry, BaseException):
                if not batch:
                    raise entry
                self._stashed_error = entry
                break
            if len(entry) > room:
                cut = entry.start + room
                self._rest = _Segment(entry.items, cut, entry.stop, entry.first_index + room, entry.item_size)
                entry = _Segment(entry.items, entry.start, cut, entry.first_index, entry.item_size)
            batch.append(entry)
            room -= len(entry)
            if not room or self._rest is not None or self._queue.empty():
                break
            entry = self._queue.get_nowait()
        return batch or None


@dataclass(eq=False, slots=True)
class _Pending:
    """One frame of a batch on its way to an outcome."""

    index: int
    frame_id: str
    # The etag of a valid frame.
    etag: str
    client_key: str
    # Where the frame is: its request's items and its position there.
    items: _RequestItems
    position: int
    # Of a valid frame that needs the blob service, until it is written.
    prepared: PreparedFrame | None = None
    blobs_ready: bool = True
    attempts: int = 0
    last_error: FramevaultError | None = None
    outcome: Outcome = UNSPECIFIED
    error: FramevaultError | None = None

    @property
    def resolved(self) -> bool:
        return self.outcome != UNSPECIFIED

    def fail(self, error: FramevaultError) -> None:
        self.outcome = FAILED
        self.error = error
        self.attempts = max(self.attempts, 1)

    @property
    def blob_work(self) -> PreparedFrame:
        """What the frame needs of the blob service (frames not ``blobs_ready`` have it)."""
        assert self.prepared is not None
        return self.prepared


def _results_response(pendings: Sequence[_Pending]) -> bytes:
    """The UploadFramesResponse carrying the results of ``pendings``, encoded."""
    return upload_results_response(
        [p.index for p in pendings], [p.client_key for p in pendings], [p.frame_id for p in pendings],
        [p.outcome for p in pendings], [p.attempts for p in pendings],
        [None if p.error is None else p.error.to_status().SerializeToString() for p in pendings])


@dataclass
class _Totals:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    failed_ids: list[str] = field(default_factory=list)

    def add(self, pendings: Sequence[_Pending]) -> None:
        outcomes = [p.outcome for p in pendings]
        self.created += outcomes.count(CREATED)
        self.updated += outcomes.count(UPDATED)
        self.unchanged += outcomes.count(UNCHANGED)
        if failed := outcomes.count(FAILED):
            self.failed += failed
            for pending in pendings:
                if pending.outcome == FAILED and len(self.failed_ids) < MAX_SUMMARY_FAILED_IDS:
                    self.failed_ids.append(pending.frame_id or pending.client_key or f"#{pending.index}")

    def summary(self) -> metadata_service_pb2.UploadSummary:
        return metadata_service_pb2.UploadSummary(
            created=self.created, updated=self.updated, unchanged=self.unchanged, failed=self.failed, failed_frame_ids=self.failed_ids,
            failed_frame_ids_truncated=self.failed > len(self.failed_ids),
        )


class _BatchWriter:
    """Turns batches of arrived frames into outcomes; see the module docstring."""

    def __init__(self, store: FrameStore, blobs: BlobGateway, settings: Settings, version: VersionHandle,
                 retries: int):
        self._store = store
        self._blobs = blobs
        self._settings = settings
        self._version = version
        self._retries = retries
        # Set once the version stopped accepting writes (published or deleted
        # mid-stream): every later frame fails with it without a round trip.
        self._closed: FramevaultError | None = None
        self.totals = _Totals()
        # The batches' transactions run one at a time: they share a session.
        self._sessions = store.transaction_sessions()

    async def close(self) -> None:
        await self._sessions.close()

    async def process(self, batch: Sequence[_Segment]) -> bytes:
        """The response carrying the batch's results, in arrival order (encoded)."""
        pendings: list[_Pending] = []
        for segment in batch:
            pendings.extend(self.pendings(segment))
        candidates = [p for p in pendings if not p.resolved]
        if candidates:
            await self._register(candidates)
        self.totals.add(pendings)
        return _results_response(pendings)

    @classmethod
    def pendings(cls, segment: _Segment) -> list[_Pending]:
        """The frames of ``segment`` on their way; those the codec refused have failed."""
        items, offset = segment.items, segment.first_index - segment.start
        frame_ids, etags, client_keys, ready = items.frame_ids, items.etags, items.client_keys, items.ready
        return [_Pending(offset + position, frame_ids[position], etags[position], client_keys[position], items, position)
                if ready[position] else cls._check(items, position, offset + position)
                for position in range(segment.start, segment.stop)]

    @staticmethod
    def _check(items: _RequestItems, position: int, index: int) -> _Pending:
        """A frame that is not ready to be written as it is: on its way to the
        blob service, or failed when the codec refused it."""
        check = items.check(position)
        if check.undecodable is not None:
            pending = _Pending(index, "", "", "", items, position)
            pending.fail(check.undecodable.error(f"items[{index}]"))
            return pending
        checked = check.checked
        if checked is not None and checked.is_valid and check.key_problem is None:
            prepared = PreparedFrame(checked)
            return _Pending(index, prepared.frame_id, prepared.etag, check.client_key, items, position, prepared,
                            blobs_ready=not (prepared.inline_blobs or prepared.referenced_blobs))
        prefix = f"frames[{index}]"
        if checked is None:
            pending = _Pending(index, "", "", check.client_key, items, position)
            violations = [FieldViolation(prefix, f"does not decode as framevault.v1.Frame: {check.frame_problem}")]
        else:
            pending = _Pending(index, checked.frame_id, "", check.client_key, items, position)
            violations = frame_violations(checked, prefix)
        if check.key_problem:
            violations.append(FieldViolation(f"items[{index}].client_key", check.key_problem))
        pending.fail(InvalidArgument(violations))
        return pending

    async def _register(self, pendings: list[_Pending]) -> None:
        # Frames that share their id with another of the batch, by id (most batches have none).
        by_id: dict[str, list[_Pending]] = {}
        if len({p.frame_id for p in pendings}) < len(pendings):
            for pending in pendings:
                by_id.setdefault(pending.frame_id, []).append(pending)
        units: deque[list[_Pending]] = deque([pendings])
        waiting: list[list[_Pending]] = []
        round_no = 0
        while units or waiting:
            if not units:
                round_no += 1
                await asyncio.sleep(backoff_seconds(round_no, self._settings))
                units.extend(sorted(waiting, key=lambda u: u[0].index))
                waiting = []
            unit = units.popleft()
            retry_units, again_now = await self._attempt(unit, by_id)
            for retry in retry_units:
                for pending in retry:
                    if pending.attempts > self._retries:
                        assert pending.last_error is not None
                        pending.fail(pending.last_error)
                if left := [p for p in retry if not p.resolved]:
                    waiting.append(left)
            units.extendleft(reversed(again_now))

    async def _attempt(self, unit: list[_Pending], by_id: dict[str, list[_Pending]]
                       ) -> tuple[list[list[_Pending]], list[list[_Pending]]]:
        """One attempt for ``unit``; returns (units to retry after a
        transient failure and a backoff, smaller units to try at once)."""
        if self._closed is not None:
            for pending in unit:
                pending.fail(self._closed)
            return [], []
        for pending in unit:
            pending.attempts += 1
        ready, transient = await self._prepare_blobs(unit)
        retry_units = [transient] if transient else []
        if by_id:
            ready = [p for p in ready if not self._superseded(p, by_id)]
        if not ready:
            return retry_units, []
        try:
            written = await self._write(ready)
        except (FailedPrecondition, NotFound) as exc:
            self._closed = exc
            for pending in ready:
                pending.fail(exc)
            return retry_units, []
        except Exception as exc:  # noqa: BLE001 - classified below; the stream must move on
            retryable = transient_error(exc)
            if retryable is not None:
                log.info("upload_write_retry", frames=len(ready), first_index=ready[0].index,
                         attempts=max(p.attempts for p in ready), error=retryable.message)
                for pending in ready:
                    pending.last_error = retryable
                if isinstance(exc, WriteConflict) and len(ready) > 1:
                    # A write conflict: another writer holds one of these
                    # frames. Halves are tried at once and uncharged, so the
                    # frames nobody else writes go through and only the
                    # contended ones end up alone, retried with backoff.
                    for pending in ready:
                        pending.attempts -= 1
                    middle = len(ready) // 2
                    return retry_units, [ready[:middle], ready[middle:]]
                return [*retry_units, ready], []
            if len(ready) > 1:
                # Not transient: each frame on its own, so only the one at fault fails.
                for pending in ready:
                    pending.attempts -= 1  # the fault was not necessarily theirs
                return retry_units, [[p] for p in ready]
            ready[0].fail(self._write_error(exc, ready[0]))
            return retry_units, []
        for pending, what in zip(ready, written, strict=True):
            # Compared by identity: an enum member's hash is computed in Python.
            pending.outcome = CREATED if what is Written.CREATED else UPDATED if what is Written.UPDATED else UNCHANGED
        return retry_units, []

    @staticmethod
    def _superseded(pending: _Pending, by_id: dict[str, list[_Pending]]) -> bool:
        """A frame retried after a later frame of the same id was written is
        not written over it: in stream order it came first. It gets the
        outcome it would have had, and the later one's outcome is taken
        against it."""
        same_id = by_id.get(pending.frame_id)
        if same_id is None:
            return False  # the usual case: no other frame of the batch has its id
        later = [q for q in same_id
                 if q.index > pending.index and q.outcome in (CREATED, UPDATED, UNCHANGED)]
        if not later:
            return False
        first_written = later[0]
        same = pending.etag == first_written.etag
        # The later frame was UNCHANGED: the stored content equals it, so equal to it is unchanged too.
        # After UPDATED the stored content before is unknown here: an update is the safe word.
        pending.outcome = CREATED if first_written.outcome == CREATED else (
            UNCHANGED if first_written.outcome == UNCHANGED and same else UPDATED)
        first_written.outcome = UNCHANGED if same else UPDATED
        return True

    async def _prepare_blobs(self, unit: list[_Pending]) -> tuple[list[_Pending], list[_Pending]]:
        """Stores inline bytes and checks references; returns (ready, failed transiently).
        Frames with missing blobs or refused bytes are resolved as failed."""
        todo = [p for p in unit if not p.blobs_ready]
        transient: list[_Pending] = []
        if not todo:
            return unit, transient
        limiter = asyncio.Semaphore(self._settings.upload_inline_store_concurrency)

        async def store_inline(pending: _Pending) -> None:
            async with limiter:
                await store_inline_blobs(self._blobs, pending.blob_work)

        storing = [p for p in todo if p.blob_work.inline_blobs]
        outcomes = await asyncio.gather(*(store_inline(p) for p in storing), return_exceptions=True)
        failed: set[int] = set()
        for pending, outcome in zip(storing, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failed.add(id(pending))
                self._blob_failure(pending, outcome, transient)

        checking = [p for p in todo if id(p) not in failed]
        # Only frames that reference blobs wait for the blob service; the
        # others are ready whatever it answers.
        referencing = [p for p in checking if p.blob_work.referenced_blobs]
        if referencing:
            failed.update(await self._check_references(referencing, transient))
        for pending in checking:
            if id(pending) not in failed:
                pending.blobs_ready = True
        return [p for p in unit if p.blobs_ready], transient

    async def _check_references(self, referencing: list[_Pending], transient: list[_Pending]) -> set[int]:
        """Asks the blob service which referenced blobs are missing, for many
        frames in one call; the ids of the frames that failed. A call that
        fails for a non-transient reason is repeated per frame, so only the
        frame at fault fails."""
        failed: set[int] = set()
        wanted = list(dict.fromkeys(d for p in referencing for d in p.blob_work.referenced_blobs))
        try:
            missing = await self._blobs.find_missing(wanted)
        except Exception as exc:  # noqa: BLE001 - classified per frame
            if len(referencing) > 1 and transient_error(exc) is None:
                for pending in referencing:
                    failed.update(await self._check_references([pending], transient))
                return failed
            for pending in referencing:
                failed.add(id(pending))
                self._blob_failure(pending, exc, transient)
            return failed
        for pending in referencing:
            absent = [d for d in pending.blob_work.referenced_blobs if d in missing]
            if absent:
                failed.add(id(pending))
                pending.fail(missing_blobs_error(absent))
        return failed

    def _blob_failure(self, pending: _Pending, exc: BaseException, transient: list[_Pending]) -> None:
        if isinstance(exc, asyncio.CancelledError):
            raise exc
        retryable = transient_error(exc)
        if retryable is not None:
            pending.last_error = retryable
            transient.append(pending)
        elif isinstance(exc, FramevaultError):
            pending.fail(exc)
        else:
            log.error("upload_blob_call_failed", frame_index=pending.index, exc_info=exc)
            pending.fail(Internal("could not reach the blob service; see server logs"))

    async def _write(self, ready: list[_Pending]) -> list[Written]:
        saved_ms, dataset_id, version_id = now_ms(), self._version.dataset_id, self._version.id
        documents: list[EncodedRevision] = []
        # The frames of one request at a time: the codec writes their documents in one call.
        for items, same_request in itertools.groupby(ready, key=attrgetter("items")):
            run = list(same_request)
            encoded = items.documents([p.position for p in run], dataset_id, version_id, saved_ms)
            documents.extend(EncodedRevision(data, frame_id=p.frame_id, etag=p.etag, dataset_id=dataset_id,
                                             version_id=version_id) for p, data in zip(run, encoded, strict=True))
        async with write_lease(self._store, self._version) as lease, self._sessions.transaction() as session:
            return await write_revisions(self._store, session, lease, documents)

    def _write_error(self, exc: Exception, pending: _Pending) -> FramevaultError:
        if isinstance(exc, TooLargeToStore):
            checked = pending.items.check(pending.position).checked
            assert checked is not None
            return PreparedFrame(checked).too_large_to_store(f"frames[{pending.index}]", exc)
        if isinstance(exc, FramevaultError):
            return exc
        log.error("upload_frame_write_failed", frame_index=pending.index, frame_id=pending.frame_id,
                  exc_info=exc)
        return Internal("the frame could not be written; see server logs")


def _checked_options(request: metadata_service_pb2.UploadFramesRequest, settings: Settings) -> int:
    """The number of retries the options ask for; raises InvalidArgument."""
    errors = FieldErrors()
    if not request.HasField("options"):
        errors.add("options", "the first request of the stream must carry options")
        errors.raise_if_any()
    options = request.options
    if not options.HasField("version"):
        errors.add("options.version", "required: the draft to write into")
    limit = min(MAX_UPLOAD_RETRIES, settings.upload_max_retries)
    if not 0 <= options.upload_retries <= limit:
        errors.add("options.upload_retries", f"must be in 0..{limit}")
    errors.raise_if_any()
    return options.upload_retries


async def upload_frames(
    store: FrameStore, blobs: BlobGateway, settings: Settings,
    requests: AsyncIterator[ReceivedUploadRequest],
) -> AsyncIterator[metadata_service_pb2.UploadFramesResponse | bytes]:
    """The UploadFrames stream; see the module docstring and the proto.
    Results are sent as the codec encoded them (bytes)."""
    first = await anext(aiter(requests), None)
    if first is None:
        raise InvalidArgument.field("options", "the stream ended before its first request")
    first_message = first.header
    retries = _checked_options(first_message, settings)
    version_doc = await resolve_version_document(store, first_message.options.version, "options.version")
    version = VersionHandle.from_document(version_doc)
    require_draft(version)
    window = max(1, settings.upload_window_frames)
    await live_frame_counts(store, [version_doc])
    yield metadata_service_pb2.UploadFramesResponse(started=metadata_service_pb2.UploadStarted(
        version=version_to_proto(version_doc), max_unacknowledged_frames=window))

    intake = _Intake(requests, window, byte_budget=settings.grpc_max_message_bytes)
    writer = _BatchWriter(store, blobs, settings, version, retries)
    reader = asyncio.create_task(intake.read(first))
    try:
        batch_size = max(1, settings.upload_batch_frames)
        while (batch := await intake.next_batch(batch_size)) is not None:
            response = await writer.process(batch)
            intake.answered(batch)
            yield response
        yield metadata_service_pb2.UploadFramesResponse(summary=writer.totals.summary())
    finally:
        reader.cancel()
        try:
            await reader
        except asyncio.CancelledError:
            pass
        finally:
            await writer.close()
