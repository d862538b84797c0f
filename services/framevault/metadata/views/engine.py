"""The iteration engine: per-selection streams, their combination, and the
position that a cursor carries.

- Sequential order: every selection streams by keyset over the
  ``sequential_order`` index; the view is their merge by
  ``(context_id, timestamp, frame_id, selection index)``.
- Random order: every selection streams its shuffle buckets in a seeded
  order; the view picks the next selection by weight with a seeded draw.

Memory is bounded by one fetched batch (sequential) or one bucket's ids plus
one batch (random) per selection. The engine's whole state is a small dict
(``snapshot``), from which ``Iteration`` continues exactly after the last
frame it returned. README.md describes the semantics.

A restored state is checked against what this server could have issued for
the view (cursors are signed, but the key may be shared with other replicas
and releases, or left at its default): that bounds the work of every call.
In random order a call walks at most two cycles of a selection's buckets
without finding a frame (the rest of one, then a whole next one in infinite
mode), and the bucket count is tied to the selection's frame count.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from bson import ObjectId

from framevault.api.metadata_values import INT64_MAX
from framevault.common.config import Settings
from framevault.metadata.frames.validation import MAX_CONTEXT_ID_BYTES, MAX_FRAME_ID_BYTES
from framevault.metadata.views.plan import Order, SelectionPlan, Shard, ViewPlan
from framevault.metadata.views.shuffle import MAX_BUCKET_BITS, CycleOrder, bucket_bits_for, uniform
from framevault.metadata.views.store import SequentialKey, ViewStore, sequential_key

Document = dict[str, Any]

# A cursor may carry this many more bucket bits than a selection's current
# frame count gives: a draft may have lost up to half its frames since the
# cursor was issued. A random cycle then walks at most twice the buckets the
# frames call for.
STALE_BUCKET_BITS = 1


class CorruptState(ValueError):
    """A cursor state this engine cannot continue from."""


def fetch_size(selections: int, settings: Settings) -> int:
    """Documents each selection fetches per query: the view's budget split across
    its selections, within the settings' bounds (at least one)."""
    share = settings.view_fetch_budget_frames // max(1, selections)
    return max(1, settings.view_min_fetch_frames, min(settings.view_max_fetch_frames, share))


# --- sequential ---------------------------------------------------------------


class SequentialStream:
    """One selection in sequential order; ``after`` is the last key taken."""

    def __init__(self, store: ViewStore, scope: Any, fields: list[str] | None, batch: int,
                 after: SequentialKey | None):
        self._store, self._scope, self._fields, self._batch = store, scope, fields, batch
        self.after = after
        self._fetched_after = after
        self._buffer: deque[Document] = deque()
        self._complete = False

    async def peek(self) -> Document | None:
        while not self._buffer and not self._complete:
            # A resumed scan starts at the last key fetched, inclusively: one more
            # document keeps every query making progress, whatever the batch size.
            limit = self._batch + (self._fetched_after is not None)
            documents = await self._store.sequential_batch(self._scope, self._fetched_after, limit, self._fields)
            self._complete = len(documents) < limit
            if documents and self._fetched_after is not None and sequential_key(documents[0]) == self._fetched_after:
                # The scan starts at the last key inclusively: that frame was sent.
                documents = documents[1:]
            if documents:
                self._fetched_after = sequential_key(documents[-1])
                self._buffer.extend(documents)
        return self._buffer[0] if self._buffer else None

    def take(self) -> Document:
        document = self._buffer.popleft()
        self.after = sequential_key(document)
        return document

    def restart(self) -> None:
        self.after = self._fetched_after = None
        self._buffer.clear()
        self._complete = False


# --- random -------------------------------------------------------------------


@dataclass
class RandomPosition:
    cycle: int = 0
    bucket_bits: int = 0
    # Index of the bucket (in this cycle's bucket order) of the last frame taken.
    ordinal: int = 0
    # Frame id of the last frame taken in that bucket (None: none yet).
    after: str | None = None
    emitted_in_cycle: bool = False
    # The selection has nothing more to give (each-once mode) or is empty.
    dropped: bool = False

    def to_json(self) -> list[Any]:
        return [self.cycle, self.bucket_bits, self.ordinal, self.after, int(self.emitted_in_cycle), int(self.dropped)]

    @classmethod
    def from_json(cls, value: Any) -> RandomPosition:
        if not isinstance(value, list) or len(value) != 6:
            raise CorruptState("random position")
        cycle, bits, ordinal, after, emitted, dropped = value
        if not (_is_count(cycle) and _is_count(bits) and bits <= MAX_BUCKET_BITS and _is_count(ordinal)
                and (after is None or _is_frame_id(after)) and emitted in (0, 1) and dropped in (0, 1)):
            raise CorruptState("random position")
        return cls(cycle, bits, ordinal, after, bool(emitted), bool(dropped))

    def check(self, selection: SelectionPlan, *, infinite: bool, emitted: int) -> None:
        """Raises CorruptState unless an iteration of ``selection`` could have
        reached this position after ``emitted`` frames."""
        if self.bucket_bits > min(MAX_BUCKET_BITS, bucket_bits_for(selection.frame_count) + STALE_BUCKET_BITS):
            raise CorruptState("more shuffle buckets than the selection's frames call for; restart the iteration")
        if self.ordinal >= 1 << self.bucket_bits:
            raise CorruptState("bucket ordinal out of range")
        # Every cycle but the current one sent a frame (an empty one ends the
        # selection), and only infinite iterations have more than one.
        if self.cycle > (emitted if infinite else 0):
            raise CorruptState("cycle out of range")
        # A frame taken sets the bucket and the frame together; a new cycle
        # clears both.
        if (self.after is not None) != self.emitted_in_cycle or (self.after is None and self.ordinal):
            raise CorruptState("inconsistent random position")


class RandomStream:
    """One selection in random order: buckets of the shuffle-key space in a
    seeded permutation, frames inside a bucket by a seeded hash of their id."""

    def __init__(self, store: ViewStore, scope: Any, fields: list[str] | None, batch: int, seed: int,
                 selection: int, position: RandomPosition):
        self._store, self._scope, self._fields, self._batch = store, scope, fields, batch
        self._seed, self._selection = seed, selection
        self.position = position
        self._reset()

    def _reset(self) -> None:
        self._order = CycleOrder(self._seed, self._selection, self.position.cycle, self.position.bucket_bits)
        self._loaded: int | None = None  # ordinal of the bucket in _members
        self._members: deque[tuple[str, ObjectId]] = deque()
        self._ready: deque[tuple[int, Document]] = deque()

    async def peek(self) -> Document | None:
        while not self._ready:
            if self._members:
                await self._fetch_members()
                continue
            ordinal = self.position.ordinal if self._loaded is None else self._loaded + 1
            if ordinal >= self._order.bucket_count:
                return None
            await self._load_bucket(ordinal)
        return self._ready[0][1]

    async def _load_bucket(self, ordinal: int) -> None:
        low, high = self._order.key_range(self._order.bucket(ordinal))
        members = await self._store.bucket_members(self._scope, low, high)
        ranked = sorted(members, key=lambda member: self._order.rank(member[0]))
        if ordinal == self.position.ordinal and self.position.after is not None:
            last = self._order.rank(self.position.after)
            ranked = [member for member in ranked if self._order.rank(member[0]) > last]
        self._loaded = ordinal
        self._members = deque(ranked)

    async def _fetch_members(self) -> None:
        chunk = [self._members.popleft() for _ in range(min(self._batch, len(self._members)))]
        documents = await self._store.documents(self._scope, [oid for _, oid in chunk], self._fields)
        by_id = {doc["_id"]: doc for doc in documents}
        assert self._loaded is not None
        # Ids listed but gone (a draft changed meanwhile) are skipped.
        self._ready.extend((self._loaded, by_id[oid]) for _, oid in chunk if oid in by_id)

    def take(self) -> Document:
        ordinal, document = self._ready.popleft()
        self.position.ordinal = ordinal
        self.position.after = document["frame_id"]
        self.position.emitted_in_cycle = True
        return document

    def next_cycle(self) -> None:
        self.position = RandomPosition(cycle=self.position.cycle + 1, bucket_bits=self.position.bucket_bits)
        self._reset()


# --- the view -----------------------------------------------------------------


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT64_MAX


def _is_text(value: Any, max_bytes: int) -> bool:
    return isinstance(value, str) and len(value.encode()) <= max_bytes


def _is_frame_id(value: Any) -> bool:
    return _is_text(value, MAX_FRAME_ID_BYTES) and bool(value)


class Iteration:
    """The frames of a view for one shard, resumable from ``snapshot()``."""

    def __init__(self, plan: ViewPlan, store: ViewStore, shard: Shard, state: dict[str, Any] | None, *,
                 settings: Settings, infinite: bool | None = None):
        self._plan = plan
        self._infinite = plan.infinite if infinite is None else infinite
        fields = plan.projection.document_fields()
        batch = fetch_size(len(plan.selections), settings)
        scopes = [selection.scope(shard) for selection in plan.selections]
        self.emitted = 0
        # Sequential: whether the current cycle of the view has sent a frame
        # (an infinite iteration of an empty view must end).
        self._cycle_emitted = False
        # Random: how many mixing draws were made.
        self._draws = 0
        self._sequential: list[SequentialStream] = []
        self._random: list[RandomStream] = []
        try:
            positions = self._restore(state) if state is not None else None
        except (CorruptState, TypeError, ValueError, KeyError) as exc:
            raise CorruptState(str(exc)) from None
        if plan.order is Order.SEQUENTIAL:
            afters = positions or [None] * len(scopes)
            self._sequential = [SequentialStream(store, scope, fields, batch, after)
                                for scope, after in zip(scopes, afters, strict=True)]
        else:
            starts = positions or [RandomPosition(bucket_bits=bucket_bits_for(s.frame_count)) for s in plan.selections]
            self._random = [RandomStream(store, scope, fields, batch, plan.seed, i, position)
                            for i, (scope, position) in enumerate(zip(scopes, starts, strict=True))]

    async def next(self) -> tuple[Document, int] | None:
        """The next document and the index of its selection; None at the end."""
        if self._plan.max_frames and self.emitted >= self._plan.max_frames:
            return None
        if self._plan.order is Order.SEQUENTIAL:
            found = await self._next_sequential()
        else:
            found = await self._next_random()
        if found is not None:
            self.emitted += 1
        return found

    async def _next_sequential(self) -> tuple[Document, int] | None:
        while True:
            best: tuple[SequentialKey, int] | None = None
            for i, stream in enumerate(self._sequential):
                head = await stream.peek()
                if head is not None and (best is None or sequential_key(head) < best[0]):
                    best = (sequential_key(head), i)
            if best is not None:
                self._cycle_emitted = True
                return self._sequential[best[1]].take(), best[1]
            if not self._infinite or not self._cycle_emitted:
                return None
            self._cycle_emitted = False
            for stream in self._sequential:
                stream.restart()

    async def _next_random(self) -> tuple[Document, int] | None:
        weights = [selection.weight for selection in self._plan.selections]
        while True:
            active = [i for i, stream in enumerate(self._random) if not stream.position.dropped]
            if not active:
                return None
            target = uniform(self._plan.seed, self._draws) * sum(weights[i] for i in active)
            self._draws += 1
            chosen = active[-1]
            for i in active:
                target -= weights[i]
                if target < 0:
                    chosen = i
                    break
            stream = self._random[chosen]
            head = await stream.peek()
            if head is None and self._infinite and stream.position.emitted_in_cycle:
                stream.next_cycle()
                head = await stream.peek()
            if head is None:
                stream.position.dropped = True
                continue
            return stream.take(), chosen

    # -- cursor state --

    def snapshot(self) -> dict[str, Any]:
        state: dict[str, Any] = {"n": self.emitted}
        if self._plan.order is Order.SEQUENTIAL:
            state.update(ce=int(self._cycle_emitted),
                         p=[list(stream.after) if stream.after else None for stream in self._sequential])
        else:
            state.update(d=self._draws, r=[stream.position.to_json() for stream in self._random])
        return state

    def _restore(self, state: dict[str, Any]) -> list[Any]:
        """The per-selection positions of ``state``, each checked against what
        an iteration of this plan could have reached."""
        plan = self._plan
        selections = len(plan.selections)
        emitted = state["n"]
        if not _is_count(emitted) or (plan.max_frames and emitted > plan.max_frames):
            raise CorruptState("frame count")
        self.emitted = emitted
        if plan.order is Order.SEQUENTIAL:
            cycle_emitted, afters = state["ce"], state["p"]
            if not (cycle_emitted in (0, 1) and isinstance(afters, list) and len(afters) == selections):
                raise CorruptState("sequential state")
            keys = [_sequential_after(after) for after in afters]
            # A cycle has sent a frame exactly when some selection has a last key.
            if bool(cycle_emitted) != any(key is not None for key in keys):
                raise CorruptState("sequential state")
            self._cycle_emitted = bool(cycle_emitted)
            return keys
        draws, encoded = state["d"], state["r"]
        if not (_is_count(draws) and isinstance(encoded, list) and len(encoded) == selections):
            raise CorruptState("random state")
        positions = [RandomPosition.from_json(position) for position in encoded]
        for selection, position in zip(plan.selections, positions, strict=True):
            position.check(selection, infinite=self._infinite, emitted=emitted)
        # Every draw sent a frame or ended a selection.
        if draws != emitted + sum(position.dropped for position in positions):
            raise CorruptState("random state")
        self._draws = draws
        return positions


def _sequential_after(value: Any) -> SequentialKey | None:
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 3 and _is_text(value[0], MAX_CONTEXT_ID_BYTES)
            and _is_count(value[1]) and _is_frame_id(value[2])):
        raise CorruptState("sequential position")
    return value[0], value[1], value[2]
