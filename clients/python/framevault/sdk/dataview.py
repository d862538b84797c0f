"""``DataView``: select, order and stream frames from one or more versions.

A view is a list of queries (one per dataset version, ORed and mixed by
weight), an iteration order (sequential: grouped by context, by timestamp
inside; or a seeded random order), label mapping rules, an optional label
enumeration and a mode (once, at most N frames, infinite). Views are not
stored: every call sends the view.

Iteration streams ``IterateFrames``. Every message carries a cursor; a
position inside a message is the cursor of the message before it plus the
number of frames taken from this one (``IterateFramesRequest.resume_offset``),
so the service signs one cursor per message, not one per frame. When the
stream breaks (UNAVAILABLE) the iterator reopens it after the last message
received, so the caller sees each frame exactly once. ``get_iterator(shard_index,
shard_count)`` gives a worker its disjoint share of the view.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import TypeAlias

import grpc
from google.protobuf import field_mask_pb2

from framevault.api.limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from framevault.sdk.client import retry_policy
from framevault.sdk.errors import FramevaultError
from framevault.sdk.frame_codec import frame_from_proto
from framevault.sdk.frames import Frame
from framevault.sdk.queries import combine_queries, roi_query_text
from framevault.sdk.refs import version_ref
from framevault.sdk.runtime import SyncIterator, current_client, sync_twin
from framevault.v1 import frame_pb2, metadata_service_pb2, view_pb2

RESUME_CODES = (grpc.StatusCode.UNAVAILABLE,)

# A frame as received: its proto and the position right after it (a cursor the service issued, and how
# many frames after that cursor's position the frame is).
ReceivedFrame: TypeAlias = tuple[frame_pb2.Frame, str, int]

# A position the SDK hands out is one string: the service's cursor alone, or the cursor, this
# separator (outside the cursors' base64url alphabet) and the offset in frames.
OFFSET_SEPARATOR = "~"
# An offset that fits the request's int32; anything else goes to the service as a cursor, which refuses it.
_OFFSET = re.compile(r"-?[0-9]{1,9}")


def position_text(cursor: str, offset: int) -> str:
    """The resume position ``offset`` frames after ``cursor``, as :attr:`ViewIterator.cursor` gives it."""
    return f"{cursor}{OFFSET_SEPARATOR}{offset}" if offset else cursor


def parse_position(text: str) -> tuple[str, int]:
    """The cursor and offset of a :func:`position_text`. The service judges both (INVALID_ARGUMENT on
    ``resume_cursor`` or ``resume_offset``), so a text the SDK did not make goes to it unchanged."""
    cursor, separator, offset = text.rpartition(OFFSET_SEPARATOR)
    if separator and _OFFSET.fullmatch(offset):
        return cursor, int(offset)
    return text, 0


class IterationOrder(enum.Enum):
    """Order of a view's frames."""

    sequential = "sequential"
    """Grouped by context id, by timestamp inside each context."""
    random = "random"
    """A permutation derived from the view's random seed (same seed, same order)."""
    metadata = "metadata"
    """By a frame-metadata key (:meth:`DataView.set_sort`); read by pages, not streamed."""

    def to_proto(self) -> view_pb2.IterationOrder:
        if self is IterationOrder.random:
            return view_pb2.ITERATION_ORDER_RANDOM
        if self is IterationOrder.metadata:
            return view_pb2.ITERATION_ORDER_METADATA
        return view_pb2.ITERATION_ORDER_SEQUENTIAL


# How a metadata key is written (the query language's spellings).
METADATA_KEY_PREFIXES = ("meta.", "metadata.", "meta_data.")


@dataclass
class MetadataSort:
    """Frames by the value of one metadata key: ``key`` as ``meta.<dotted.path>``.

    Frames without the key come last either way; values order by type, then value (null <
    numbers < strings < objects < lists < booleans; numbers by value whatever their type); ties by
    frame id (``MetadataOrder`` in view.proto)."""

    key: str
    descending: bool = False


@dataclass
class ViewPage:
    """One page of a view (:meth:`DataView.get_page`); ``next_page_token`` is empty on the last."""

    protos: list[frame_pb2.Frame]
    next_page_token: str

    @property
    def frames(self) -> list[Frame]:
        """The page's frames as SDK frames."""
        return [frame_from_proto(proto) for proto in self.protos]


@dataclass
class ViewQuery:
    """One selection of a view: a dataset version and the query its frames must match."""

    dataset_name: str | None
    version_name: str | None
    dataset_id: str | None = None
    version_id: str | None = None
    query: str = ""
    weight: float = 1.0


@dataclass
class MappingRule:
    """``from_labels`` become ``to_label`` in frames of the matching selections."""

    dataset_name: str | None
    version_name: str | None
    from_labels: list[str] = field(default_factory=list)
    to_label: str = ""

    def applies_to(self, query: ViewQuery) -> bool:
        if self.dataset_name and self.dataset_name not in (query.dataset_name, query.dataset_id):
            return False
        return not self.version_name or self.version_name in (query.version_name, query.version_id)


class DataView:
    """A view over frames of dataset versions.

    Args:
        iteration_order: ``IterationOrder.sequential`` (default) or ``IterationOrder.random``
            (``"sequential"`` / ``"random"`` accepted).
        iteration_infinite: cycle forever (a new permutation per cycle in random order).
        maximum_number_of_frames: stop after this many frames (None = no limit).
        random_seed: seed of the random order and of the weighted mixing.
        projection: Frame fields to return (e.g. ``["sources.uri", "rois"]``);
            None returns every field.
        sort_by, sort_descending: order by this metadata key instead (see :meth:`set_sort`).
    """

    def __init__(
        self,
        iteration_order: IterationOrder | str = IterationOrder.sequential,
        iteration_infinite: bool = False,
        maximum_number_of_frames: int | None = None,
        random_seed: int = 1337,
        *,
        projection: Sequence[str] | None = None,
        sort_by: str | None = None,
        sort_descending: bool = False,
    ) -> None:
        self.metadata_sort: MetadataSort | None = None
        self.queries: list[ViewQuery] = []
        self.mapping_rules: list[MappingRule] = []
        self.labels: dict[str, int] = {}
        self.projection = list(projection or [])
        self.iteration_order = IterationOrder.sequential
        self.iteration_infinite = False
        self.maximum_number_of_frames: int | None = None
        self.random_seed = 1337
        self.set_iteration_parameters(iteration_order, iteration_infinite, maximum_number_of_frames, random_seed)
        if sort_by is not None:
            self.set_sort(sort_by, sort_descending)

    def set_iteration_parameters(
        self,
        order: IterationOrder | str | None = None,
        infinite: bool | None = None,
        maximum_number_of_frames: int | None = None,
        random_seed: int | None = None,
    ) -> None:
        """Changes order, mode, frame limit or seed (None keeps the current value)."""
        if order is not None:
            self.iteration_order = order if isinstance(order, IterationOrder) else IterationOrder(order)
        if infinite is not None:
            self.iteration_infinite = infinite
        if maximum_number_of_frames is not None:
            if maximum_number_of_frames < 0:
                raise ValueError("maximum_number_of_frames must be >= 0")
            self.maximum_number_of_frames = maximum_number_of_frames or None
        if random_seed is not None:
            if random_seed < 0:
                raise ValueError("random_seed must be >= 0")
            self.random_seed = random_seed

    def set_sort(self, key: str, descending: bool = False) -> None:
        """Orders the view by a frame-metadata key, e.g. ``view.set_sort("meta.speed", descending=True)``.

        Frames without the key come last either way; values order by type, then value (null <
        numbers < strings < objects < lists < booleans; numbers by value whatever their type);
        equal values by frame id. Such a view is read by pages (:meth:`get_page`, :meth:`to_list`)
        from one query; the service sorts the query's frames for each page, within its
        ``view_sort_max_time_ms`` (RESOURCE_EXHAUSTED beyond it: narrow the query).

        Raises:
            ValueError: ``key`` is not written ``meta.<key path>``.
        """
        if not key.startswith(METADATA_KEY_PREFIXES) or key.endswith("."):
            raise ValueError(f"write the sort key as meta.<key path>, e.g. meta.speed (got {key!r})")
        self.metadata_sort = MetadataSort(key, descending)
        self.iteration_order = IterationOrder.metadata

    def add_query(
        self,
        dataset_name: str | None = None,
        version_name: str | None = None,
        roi_query: str | Sequence[str] | None = None,
        frame_query: str | None = None,
        source_query: str | None = None,
        weight: float = 1.0,
        *,
        dataset_id: str | None = None,
        version_id: str | None = None,
        query: str | None = None,
    ) -> ViewQuery:
        """Adds the frames of a dataset version that match all given queries.

        Args:
            dataset_name, version_name: the version (default version: the draft ``Current``);
                or ``dataset_id`` / ``version_id``.
            roi_query: a label, a list of labels (any of them), or a Lucene-style
                query over ``label`` and ``confidence``; bare terms are labels.
            frame_query: Lucene-style query over ``meta.<path>``, e.g. ``meta.city:"bremen"``.
            source_query: Lucene-style query over ``source.width``, ``source.height``,
                ``source.content_type``, ``source.uri`` (the ``source.`` prefix may be left out).
            weight: relative weight when several queries are mixed.
            query: a query over any of the fields above, ANDed with the others.

        The queries are sent as written, each in parentheses and ANDed when
        there are several (``view.to_proto()`` shows the result; a query
        error's position refers to it). The service also reads the reference
        product's field names (``label.keyword``, ``metadata.<key>``,
        ``sources.width``, ...).

        Raises:
            ValueError: no version named, or a weight <= 0.
        """
        if weight <= 0:
            raise ValueError("weight must be > 0")
        if not (version_id or dataset_id or dataset_name):
            raise ValueError("name the version: dataset_name (+ version_name), dataset_id or version_id")
        selection = ViewQuery(
            dataset_name=dataset_name,
            version_name=version_name,
            dataset_id=dataset_id,
            version_id=version_id,
            query=combine_queries(roi_query_text(roi_query), frame_query, source_query, query),
            weight=float(weight),
        )
        self.queries.append(selection)
        return selection

    def add_mapping_rule(
        self,
        dataset_name: str | None = None,
        version_name: str | None = None,
        from_labels: Sequence[str] = (),
        to_label: str = "",
    ) -> MappingRule:
        """Renames labels in streamed frames of a dataset (version): any of ``from_labels`` becomes ``to_label``.

        ``version_name=None`` applies the rule to every query of the dataset.

        Raises:
            ValueError: no from_labels or no to_label.
        """
        if not from_labels or not to_label:
            raise ValueError("a mapping rule needs from_labels and to_label")
        rule = MappingRule(dataset_name, version_name, list(from_labels), to_label)
        self.mapping_rules.append(rule)
        return rule

    def set_labels(self, labels: Mapping[str, int]) -> None:
        """Sets the label enumeration: each label's integer lands in ``Annotation.label_ids`` (unknown: -1)."""
        self.labels = {str(k): int(v) for k, v in labels.items()}

    def get_labels(self) -> dict[str, int]:
        """The label enumeration."""
        return dict(self.labels)

    def to_proto(self) -> view_pb2.View:
        """The ``framevault.v1.View`` sent with every call.

        Raises:
            ValueError: the view has no query.
        """
        if not self.queries:
            raise ValueError("the view has no query: call add_query first")
        view = view_pb2.View(
            order=self.iteration_order.to_proto(),
            random_seed=self.random_seed,
            infinite=self.iteration_infinite,
            max_frames=self.maximum_number_of_frames or 0,
            label_enumeration=self.labels,
        )
        if self.iteration_order is IterationOrder.metadata:
            if self.metadata_sort is None:
                raise ValueError("a metadata order needs its key: call set_sort")
            view.metadata_order.key = self.metadata_sort.key
            view.metadata_order.descending = self.metadata_sort.descending
        if self.projection:
            view.projection.CopyFrom(field_mask_pb2.FieldMask(paths=self.projection))
        for query in self.queries:
            selection = view.selections.add(
                version=version_ref(query.dataset_name, query.version_name,
                                    dataset_id=query.dataset_id, version_id=query.version_id),
                query=query.query,
                weight=query.weight,
            )
            for rule in self.mapping_rules:
                if rule.applies_to(query):
                    selection.label_mapping.add(from_labels=rule.from_labels, to_label=rule.to_label)
        return view

    # -- calls --

    async def aget_count(self) -> int:
        """Number of frames in the view (ignores order, mode and frame limit).

        Raises:
            FramevaultError: e.g. NOT_FOUND version, INVALID_ARGUMENT query.
        """
        client = current_client()
        response = await client.unary(
            client.metadata.CountViewFrames,
            metadata_service_pb2.CountViewFramesRequest(view=self.to_proto()),
            idempotent=True,
        )
        return int(response.count)

    get_count = sync_twin(aget_count)

    def aget_iterator(
        self, shard_index: int = 0, shard_count: int = 1, *, resume_cursor: str | None = None, as_proto: bool = False,
    ) -> ViewIterator:
        """An async iterator over the view's frames (``async for frame in view.aget_iterator()``).

        Args:
            shard_index, shard_count: this worker's share; the shares of
                ``shard_count`` workers are disjoint and together the whole view.
            resume_cursor: continue after the frame where an earlier iterator's
                ``cursor`` was taken.
            as_proto: yield ``framevault.v1.Frame`` messages (with every
                output-only field) instead of SDK frames.
        """
        if not 0 <= shard_index < max(1, shard_count):
            raise ValueError("need 0 <= shard_index < shard_count")
        if self.iteration_order is IterationOrder.metadata:
            raise ValueError("a view sorted by a metadata key is read by pages: get_page or to_list")
        return ViewIterator(self.to_proto(), shard_index, shard_count, resume_cursor or "", as_proto=as_proto)

    def get_iterator(
        self, shard_index: int = 0, shard_count: int = 1, *, resume_cursor: str | None = None, as_proto: bool = False,
    ) -> SyncViewIterator:
        """A synchronous iterator over the view's frames; see :meth:`aget_iterator`."""
        return SyncViewIterator(self.aget_iterator(shard_index, shard_count, resume_cursor=resume_cursor,
                                                   as_proto=as_proto))

    async def ato_list(self) -> list[Frame]:
        """All frames of the view, in order.

        Raises:
            ValueError: the view is infinite and has no frame limit.
        """
        if self.iteration_order is IterationOrder.metadata:
            frames: list[Frame] = []
            token = ""
            while True:
                page = await self.aget_page(MAX_PAGE_SIZE, token)
                frames += page.frames
                token = page.next_page_token
                if not token:
                    return frames
        if self.iteration_infinite and not self.maximum_number_of_frames:
            raise ValueError("an infinite view without maximum_number_of_frames has no end")
        return [frame async for frame in self.aget_iterator()]

    to_list = sync_twin(ato_list)

    async def aget_page(self, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "") -> ViewPage:
        """One page of the view in its order (``ListViewFrames``; ``infinite`` does not apply).

        Args:
            page_size: frames per page (1..1000; the service may end a page early at 2 MiB).
            page_token: ``next_page_token`` of the page before ("" = the first page).

        Raises:
            FramevaultError: e.g. INVALID_ARGUMENT naming ``view.metadata_order.key`` or
                ``page_token``, RESOURCE_EXHAUSTED when a metadata sort takes too long.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        client = current_client()
        response = await client.unary(
            client.metadata.ListViewFrames,
            metadata_service_pb2.ListViewFramesRequest(view=self.to_proto(), page_size=page_size,
                                                       page_token=page_token),
            idempotent=True,
        )
        return ViewPage(response.frames[:], response.next_page_token)

    get_page = sync_twin(aget_page)


class ViewIterator(AsyncIterator[Frame]):
    """Frames of a view, resuming transparently after a broken stream.

    ``cursor`` resumes right after the last frame this iterator returned.
    """

    def __init__(
        self, view: view_pb2.View, shard_index: int, shard_count: int, resume_cursor: str, *, as_proto: bool = False,
    ) -> None:
        self.view = view
        self.as_proto = as_proto
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.frames_returned = 0
        self.reconnects = 0
        # The position after the last frame returned, and after the last frame received (where a
        # reopened stream continues).
        self._position = parse_position(resume_cursor)
        self._received = self._position
        self._buffer: deque[ReceivedFrame] = deque()
        self._stream: AsyncIterator[metadata_service_pb2.IterateFramesResponse] | None = None
        self._call: object | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._finished = False
        # The next message, read while the caller works on the frames handed out (see take_received).
        self._reading: asyncio.Future[None] | None = None

    @property
    def cursor(self) -> str:
        """Resumes right after the last frame returned (``resume_cursor`` of a new iterator, on any replica)."""
        return position_text(*self._position)

    def __aiter__(self) -> ViewIterator:
        return self

    async def __anext__(self) -> Frame:
        while not self._buffer:
            if self._finished:
                raise StopAsyncIteration
            await self._receive()
        return self.deliver(self._buffer.popleft())

    async def take_received(self) -> list[ReceivedFrame] | None:
        """Every frame received and not yet handed out (reading a message when there is none);
        None at the end. Each is returned to the caller through :meth:`deliver`, in order."""
        while not self._buffer:
            if self._finished:
                return None
            await self._receive()
        taken = list(self._buffer)
        self._buffer.clear()
        if not self._finished:
            # The caller converts these frames in its own thread meanwhile: without a read posted, the
            # service would wait for the next one once the transport's window is full.
            reading = self._reading = asyncio.ensure_future(self._fill())
            # A failure is raised by the next take; one nobody takes any more is not logged as lost.
            reading.add_done_callback(lambda done: done.cancelled() or done.exception())
        return taken

    async def _receive(self) -> None:
        """The message read ahead, or the next one read now, into the buffer."""
        reading, self._reading = self._reading, None
        await (reading if reading is not None else self._fill())

    def deliver(self, received: ReceivedFrame) -> Frame:
        """Returns a frame of :meth:`take_received` to the caller: from now on ``cursor`` resumes after it."""
        proto, cursor, offset = received
        self._position = cursor, offset
        self.frames_returned += 1
        return proto if self.as_proto else frame_from_proto(proto)  # type: ignore[return-value]

    async def _fill(self) -> None:
        client = current_client()
        failures = 0
        while True:
            if self._stream is None:
                resume_cursor, resume_offset = self._received
                request = metadata_service_pb2.IterateFramesRequest(
                    view=self.view,
                    shard_index=self.shard_index,
                    shard_count=self.shard_count,
                    resume_cursor=resume_cursor,
                    resume_offset=resume_offset,
                    frames_per_message=client.settings.iterate_frames_per_message,
                )
                call = client.metadata.IterateFrames(request)
                self._call = call
                self._loop = asyncio.get_running_loop()
                self._stream = call.__aiter__()
            try:
                message = await anext(self._stream)
            except StopAsyncIteration:
                self._finished = True
                self._stream = None
                return
            except grpc.RpcError as rpc_error:
                self._stream = None
                error = await client.call_error(rpc_error, client.metadata.IterateFrames)
                failures += 1
                # The first stream and then up to stream_reconnect_attempts resumptions.
                policy = retry_policy(client.settings, client.settings.stream_reconnect_attempts + 1, RESUME_CODES)
                if not policy.retries(error.code, failures):
                    raise error from None
                self.reconnects += 1
                await asyncio.sleep(policy.delay(failures, error.retry_delay))
                continue
            frames = message.frames[:]
            if not frames:
                continue
            # Positions in this message count from the cursor of the one before, or from where the
            # service put the stream after skipping the frames of resume_offset.
            start, skipped = self._received
            if skipped:
                if not message.start_cursor:
                    raise FramevaultError.client_side(
                        grpc.StatusCode.UNIMPLEMENTED,
                        "the metadata service does not resume inside a message (IterateFramesRequest.resume_offset)",
                    )
                start = message.start_cursor
            self._received = message.cursor, 0
            last = len(frames) - 1
            self._buffer.extend(zip(frames[:last], repeat(start), range(1, last + 1)))
            self._buffer.append((frames[last], message.cursor, 0))
            return

    async def aclose(self) -> None:
        """Stops the stream (also done when the iterator is garbage collected)."""
        call, self._call, self._stream = self._call, None, None
        self._finished = True
        if self._reading is not None:
            self._reading.cancel()
        cancel = getattr(call, "cancel", None)
        if cancel is not None:
            cancel()

    def __del__(self) -> None:
        # An iterator dropped mid-view (a `break` out of a for loop) must not
        # leave its server stream open; the call belongs to its loop's thread.
        call, loop = self._call, self._loop
        cancel = getattr(call, "cancel", None)
        if cancel is not None and loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(cancel)
            except RuntimeError:
                pass


class SyncViewIterator(SyncIterator[Frame]):
    """The synchronous face of :class:`ViewIterator`, driven on the SDK's private loop.

    One trip to the loop takes every frame received so far (a whole message or
    more), and ``next()`` returns them one by one: the cursor still moves frame
    by frame, as the caller takes them.
    """

    def __init__(self, iterator: ViewIterator) -> None:
        super().__init__(iterator)
        self._view_iterator = iterator

    async def _take(self) -> list[ReceivedFrame] | None:
        return await self._view_iterator.take_received()

    def _deliver(self, item: ReceivedFrame) -> Frame:
        return self._view_iterator.deliver(item)

    @property
    def cursor(self) -> str:
        """See :attr:`ViewIterator.cursor`."""
        return self._view_iterator.cursor

    @property
    def frames_returned(self) -> int:
        """Frames returned so far."""
        return self._view_iterator.frames_returned
