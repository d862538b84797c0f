"""View calls as domain operations: iterate (batches with cursors), count, list.

Takes the request messages (validation lives in ``plan.py``) and returns
domain results; ``rpc.py`` only moves them into response messages.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from framevault.api.metadata_values import INT64_MAX, INT64_MIN
from framevault.common.config import Settings
from framevault.common.errors import FieldErrors, InvalidArgument, NotFound, ResourceExhausted
from framevault.common.tokens import VIEW_CURSOR, TokenCodec
from framevault.metadata.caller_metadata import MAX_META_DEPTH
from framevault.metadata.catalog.page_tokens import check_page_size
from framevault.metadata.frame_documents import encoded_frame
from framevault.metadata.frames.validation import MAX_FRAME_ID_BYTES
from framevault.metadata.views.engine import CorruptState, Document, Iteration
from framevault.metadata.views.plan import (
    UNSHARDED,
    Order,
    Shard,
    ViewPlan,
    build_plan,
    build_selection_plan,
    validate_shard,
)
from framevault.metadata.views.shaping import relabel
from framevault.metadata.views.store import ContextKey, MetadataKey, SortTimeLimitExceeded, ViewStore
from framevault.v1 import metadata_service_pb2, view_pb2

# A streamed message or page ends early once its frames reach this size: with
# frames below it too, a message stays under the 4 MiB receive limit clients
# have by default (the frame that reaches it is still sent with the message).
MAX_MESSAGE_BYTES = 2 * 1024 * 1024

_ITERATE = "iterate"
_LIST = "list"
_CONTEXTS = "contexts"
_CONTEXT_FRAMES = "context-frames"
# FrameContext.frame_count counts up to this (metadata_service.proto): counting a huge context
# in full would make one tile cost as much as the whole context.
CONTEXT_COUNT_LIMIT = 10_000
MAX_CONTEXT_ID_BYTES = 4096


@dataclass
class FrameBatch:
    """The frames of one streamed message or page, each already encoded
    (Frame protobuf bytes, shaped by the view): the transport puts them into
    its response as they are. The rest of the response is the caller's."""

    frames: list[bytes] = field(default_factory=list)
    selection_indexes: list[int] = field(default_factory=list)
    # Resumes right after the last frame of the batch ("" when there is none).
    cursor: str = ""
    # When asked for: frame_cursors[i] resumes right after frames[i].
    frame_cursors: list[str] = field(default_factory=list)
    # First message after a resume_offset: resumes right before frames[0].
    start_cursor: str = ""


class ViewService:
    def __init__(self, store: ViewStore, settings: Settings):
        self._store = store
        self._settings = settings
        self._codec = TokenCodec(settings.view_cursor_secret.get_secret_value(), VIEW_CURSOR)

    async def iterate(self, request: metadata_service_pb2.IterateFramesRequest
                      ) -> AsyncIterator[FrameBatch]:
        errors = FieldErrors()
        if request.frames_per_message < 0:
            errors.add("frames_per_message", "must not be negative")
        # An offset is a position inside one message: bounded by the largest, which also bounds the
        # frames a call reads without sending them.
        if not 0 <= request.resume_offset <= self._settings.iterate_max_frames_per_message:
            errors.add("resume_offset", f"must be between 0 and {self._settings.iterate_max_frames_per_message}")
        if request.view.order == view_pb2.ITERATION_ORDER_METADATA:
            # Each page of a metadata order is a sort of the whole selection: a stream would sort
            # it once per message.
            errors.add("view.order", "ITERATION_ORDER_METADATA is listed page by page with ListViewFrames; "
                                     "IterateFrames streams sequential or random order")
        shard = validate_shard(request.shard_index, request.shard_count, errors)
        per_message = min(
            request.frames_per_message or self._settings.iterate_frames_per_message,
            self._settings.iterate_max_frames_per_message,
        )
        plan = await build_plan(self._store, request.view, errors=errors)
        iteration = self._open(plan, shard, request.resume_cursor, "resume_cursor", _ITERATE)
        binding = _binding(plan, shard)

        def cursor() -> str:
            return self._codec.encode(_ITERATE, binding, iteration.snapshot())

        start_cursor = ""
        if request.resume_offset:
            for _ in range(request.resume_offset):
                if await iteration.next() is None:
                    return
            start_cursor = cursor()
        while True:
            batch = FrameBatch(start_cursor=start_cursor)
            start_cursor = ""
            finished = await self._fill(plan, iteration, per_message, batch,
                                        cursor if request.frame_cursors else None)
            if batch.frames:
                batch.cursor = cursor()
                if request.frame_cursors:
                    batch.frame_cursors.append(batch.cursor)
                yield batch
            if finished:
                return

    async def count(self, request: metadata_service_pb2.CountViewFramesRequest) -> int:
        plan = await build_plan(self._store, request.view)
        total = 0
        for selection in plan.selections:
            total += await self._store.count(selection.scope(UNSHARDED))
        return total

    async def list_page(self, request: metadata_service_pb2.ListViewFramesRequest
                        ) -> tuple[FrameBatch, str]:
        """One page and the token of the next one ("" on the last page).

        Pages follow the view's order and max_frames; ``infinite`` is ignored
        (a list ends).
        """
        errors = FieldErrors()
        page_size = check_page_size(request.page_size, "page_size", errors)
        plan = await build_plan(self._store, request.view, errors=errors)
        if plan.order is Order.METADATA:
            return await self._metadata_order_page(plan, request.page_token, page_size)
        iteration = self._open(plan, UNSHARDED, request.page_token, "page_token", _LIST, infinite=False)
        # Like streamed messages, a page ends early at the size limit.
        page = FrameBatch()
        finished = await self._fill(plan, iteration, page_size, page)
        if finished:
            return page, ""
        token = self._codec.encode(_LIST, _binding(plan, UNSHARDED), iteration.snapshot())
        return page, token if await iteration.next() is not None else ""

    async def _metadata_order_page(self, plan: ViewPlan, page_token: str, page_size: int
                                   ) -> tuple[FrameBatch, str]:
        """A page of a view in metadata order: one top-k sort of its selection past the last
        frame sent (keyset: the page token holds that frame's position, not an offset)."""
        order = plan.metadata_order
        assert order is not None
        binding = _binding(plan, UNSHARDED)
        emitted, after = 0, None
        if page_token:
            state = self._codec.decode(page_token, kind=_LIST, binding=binding, field="page_token")
            emitted, after = _metadata_order_state(state, plan.max_frames)
        wanted = min(page_size, plan.max_frames - emitted) if plan.max_frames else page_size
        page = FrameBatch()
        if wanted <= 0:
            return page, ""
        limit_ms = self._settings.view_sort_max_time_ms
        try:
            # One more than the page tells whether another page follows.
            found = await self._store.metadata_order_batch(plan.selections[0].scope(UNSHARDED), order, after,
                                                           wanted + 1, plan.projection.document_fields(), limit_ms)
        except SortTimeLimitExceeded:
            raise ResourceExhausted(
                f"sorting the view by {order.field} took longer than the server allows "
                f"(setting view_sort_max_time_ms = {limit_ms} ms, env FRAMEVAULT_VIEW_SORT_MAX_TIME_MS): narrow "
                "the selection with a query, or list it in sequential order", reason="SORT_TIME_LIMIT") from None
        size = 0
        last: MetadataKey | None = None
        for document, position in found[:wanted]:
            if size >= MAX_MESSAGE_BYTES:
                break
            page.frames.append(frame := shaped_frame(plan, document, 0))
            page.selection_indexes.append(0)
            size += len(frame)
            last = position
        emitted += len(page.frames)
        if last is None or len(found) == len(page.frames) or (plan.max_frames and emitted >= plan.max_frames):
            return page, ""
        return page, self._codec.encode(_LIST, binding, {"n": emitted, "after": list(last)})

    # A selection's frames grouped by context. Both calls page by keyset on the sequential index
    # (dataset, context id, timestamp, frame id): a page of contexts is one seek per context past
    # the previous context id, a page of one context's frames one range scan from the last frame
    # sent; neither skips nor sorts in memory, so a page deep inside a version of a million frames
    # costs what the first one does.

    async def list_contexts(self, request: metadata_service_pb2.ListContextsRequest
                            ) -> metadata_service_pb2.ListContextsResponse:
        errors = FieldErrors()
        page_size = check_page_size(request.page_size, "page_size", errors)
        plan = await build_selection_plan(self._store, request.selection, request.projection, errors)
        after: str | None = None
        if request.page_token:
            state = self._codec.decode(request.page_token, kind=_CONTEXTS, binding=plan.fingerprint,
                                       field="page_token")
            after = state.get("after")
            if not isinstance(after, str):
                raise InvalidArgument.field("page_token", "malformed page token")
        scope = plan.selections[0].scope(UNSHARDED)
        fields = plan.projection.document_fields()
        response = metadata_service_pb2.ListContextsResponse()
        # Each context is counted while the next one is sought: the seeks depend on each other, the
        # counts do not.
        counts: list[asyncio.Task[int]] = []
        size = 0
        ended = False
        try:
            while len(response.contexts) < page_size and size < MAX_MESSAGE_BYTES:
                document = await self._store.next_context_first(scope, after, fields)
                if document is None:
                    ended = True
                    break
                after = str(document["context_id"])
                counts.append(asyncio.ensure_future(self._store.context_count(scope, after, CONTEXT_COUNT_LIMIT)))
                context = response.contexts.add(context_id=after)
                # The projection appends to a repeated field: shaped in a scratch list, then moved.
                context.first_frame.MergeFromString(shaped_frame(plan, document, 0))
                size += context.ByteSize()
            for context, count in zip(response.contexts, await asyncio.gather(*counts), strict=True):
                context.frame_count = count
        finally:
            for task in counts:
                task.cancel()
        if not ended and await self._store.next_context_first(scope, after, ["context_id"]) is not None:
            response.next_page_token = self._codec.encode(_CONTEXTS, plan.fingerprint, {"after": after})
        return response

    async def list_context_frames(self, request: metadata_service_pb2.ListContextFramesRequest
                                  ) -> metadata_service_pb2.ListContextFramesResponse:
        errors = FieldErrors()
        page_size = check_page_size(request.page_size, "page_size", errors)
        if len(request.context_id.encode()) > MAX_CONTEXT_ID_BYTES:
            errors.add("context_id", f"at most {MAX_CONTEXT_ID_BYTES} bytes")
        plan = await build_selection_plan(self._store, request.selection, request.projection, errors)
        binding = f"{plan.fingerprint}:{int(request.descending)}:{request.context_id}"
        scope = plan.selections[0].scope(UNSHARDED)
        after: ContextKey | None = None
        if request.page_token:
            state = self._codec.decode(request.page_token, kind=_CONTEXT_FRAMES, binding=binding, field="page_token")
            after = _context_key(state.get("after"))
        elif request.start_after_frame_id:
            after = await self._store.context_key(scope, request.context_id, request.start_after_frame_id)
            if after is None:
                raise NotFound("frame", request.start_after_frame_id, field="start_after_frame_id")
        # One more than the page tells whether another page follows.
        documents = await self._store.context_batch(scope, request.context_id, after, page_size + 1,
                                                    plan.projection.document_fields(), request.descending)
        response = metadata_service_pb2.ListContextFramesResponse()
        size = 0
        for document in documents[:page_size]:
            if size >= MAX_MESSAGE_BYTES:
                break
            frame = shaped_frame(plan, document, 0)
            response.frames.add().MergeFromString(frame)
            size += len(frame)
        if len(response.frames) < len(documents):
            last = response.frames[-1]
            response.next_page_token = self._codec.encode(_CONTEXT_FRAMES, binding,
                                                          {"after": [last.timestamp, last.id]})
        return response

    def _open(self, plan: ViewPlan, shard: Shard, token: str, field: str, kind: str,
              infinite: bool | None = None) -> Iteration:
        state = self._codec.decode(token, kind=kind, binding=_binding(plan, shard), field=field) if token else None
        try:
            return Iteration(plan, self._store, shard, state, settings=self._settings, infinite=infinite)
        except CorruptState as exc:
            raise InvalidArgument.field(field, f"malformed cursor ({exc})") from None

    async def _fill(self, plan: ViewPlan, iteration: Iteration, limit: int, batch: FrameBatch,
                    frame_cursor: Callable[[], str] | None = None) -> bool:
        """Adds up to ``limit`` frames to ``batch`` (fewer past
        MAX_MESSAGE_BYTES); ``True`` when the iteration has ended.

        With ``frame_cursor``, the cursor after every frame but the last goes
        to ``batch.frame_cursors``; the caller adds the batch's own cursor
        last (taken after the end was found, it resumes to nothing at once).
        """
        frames = batch.frames
        count = size = 0
        while count < limit and size < MAX_MESSAGE_BYTES:
            after_previous = frame_cursor() if frame_cursor is not None and count else None
            found = await iteration.next()
            if found is None:
                return True
            if after_previous is not None:
                batch.frame_cursors.append(after_previous)
            document, selection = found
            frame = shaped_frame(plan, document, selection)
            frames.append(frame)
            batch.selection_indexes.append(selection)
            count += 1
            size += len(frame)
        return False


def shaped_frame(plan: ViewPlan, document: Document, selection: int) -> bytes:
    """The frame of ``document`` as the view shapes it (Frame protobuf bytes).
    A view that neither projects nor relabels sends the codec's bytes as they
    are; otherwise they are decoded into a Frame to be shaped."""
    selected = plan.selections[selection]
    encoded = encoded_frame(document, version_id=selected.version.id)
    if plan.projection.tree is None and not selected.label_mapping and not plan.label_enumeration:
        return encoded
    frame = plan.projection.shape(encoded)
    relabel(frame, selected.label_mapping, plan.label_enumeration)
    return frame.SerializeToString()


def _context_key(value: Any) -> ContextKey:
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], int)
            or isinstance(value[0], bool) or not isinstance(value[1], str)):
        raise InvalidArgument.field("page_token", "malformed page token")
    return value[0], value[1]


def _metadata_order_state(state: dict[str, Any], max_frames: int) -> tuple[int, MetadataKey]:
    """The frames sent and the last position of a metadata-order page token, checked to be what
    a page could have carried (the signing key may be shared or left at its default)."""
    emitted, after = state.get("n"), state.get("after")
    if (not isinstance(emitted, int) or isinstance(emitted, bool) or not 0 < emitted <= INT64_MAX
            or (max_frames and emitted >= max_frames)
            or not isinstance(after, list) or len(after) != 3):
        raise InvalidArgument.field("page_token", "malformed page token")
    missing, value, frame_id = after
    if (missing not in (0, 1) or isinstance(missing, bool) or (missing and value is not None)
            or not isinstance(frame_id, str) or not frame_id or len(frame_id.encode()) > MAX_FRAME_ID_BYTES
            or not _is_stored_value(value, 0)):
        raise InvalidArgument.field("page_token", "malformed page token")
    return emitted, (missing, value, frame_id)


def _is_stored_value(value: Any, depth: int) -> bool:
    """Whether ``value`` (decoded JSON) is a metadata value as frames store it."""
    if value is None or isinstance(value, (bool, str)):
        return True
    if isinstance(value, int):
        return INT64_MIN <= value <= INT64_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    if depth >= MAX_META_DEPTH:
        return False
    if isinstance(value, list):
        return all(_is_stored_value(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(_is_stored_value(item, depth + 1) for item in value.values())
    return False


def _binding(plan: ViewPlan, shard: Shard) -> str:
    return f"{plan.fingerprint}:{shard.index}/{shard.count}"
