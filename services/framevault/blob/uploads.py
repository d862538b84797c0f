"""Resumable, verified blob writes (the domain side of WriteBlob / QueryWriteStatus).

How a write works (README.md has the full design):

* Every upload of the service uses one part size (``upload_limits``), fixed
  by the settings and never by the size a caller declares, so memory per
  stream is bounded: the part being filled plus at most one part in flight.
* A blob no larger than one part is buffered and, once its sha256 and size
  check out, stored with one PUT. Nothing is written before that.
* A larger blob goes to an S3 multipart upload whose target is its CAS key.
  Parts are invisible until the upload is completed, and it is completed only
  after the sha256 of everything received matched the digest; on a mismatch
  it is aborted. So the CAS key never shows partial or wrong content.
* After each committed part an upload-state object records the multipart
  upload id and, per part, its number, ETag, size and a checkpoint of the
  running sha256 after it (``hashing.Sha256``). A new stream, in this process
  or after a restart, continues from any part boundary of that state without
  reading anything back: at the end, or earlier when the client continues at
  an offset QueryWriteStatus answered before a cut stream committed more.
* The state object is only ever written conditionally (If-Match on the ETag
  this stream last saw), so a stream another one took over cannot undo what
  the newer one recorded.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import structlog

from framevault.blob.hashing import Sha256
from framevault.blob.keys import UploadName, cas_key, parse_upload_name
from framevault.blob.storage import (
    BlobStorage,
    ObjectMissing,
    PartInfo,
    PartsChanged,
    TaggedBytes,
    UploadMissing,
    WriteConflict,
)
from framevault.common.config import Settings
from framevault.common.errors import Aborted, InvalidArgument, OutOfRange

log = structlog.get_logger("framevault.blob.uploads")

# S3 rejects non-final parts below 5 MiB or above 5 GiB, and uploads of more than 10,000 parts.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000
_MIB = 1024 * 1024
_STATE_VERSION = 2
# A state entry per part (number, ETag, size, base64 checkpoint) takes about 250 bytes: 10,000 fit.
MAX_STATE_BYTES = 4 * _MIB


@dataclass(frozen=True)
class UploadLimits:
    # The size of every part but the last: the resume granularity of WriteBlob.
    part_size: int
    # The largest blob MAX_PARTS parts hold, or blob_max_size_bytes when that is smaller.
    max_blob_size: int


def upload_limits(settings: Settings) -> UploadLimits:
    """One part size for every upload: s3_part_size_bytes, grown (up to s3_max_part_size_bytes) so that
    blob_max_size_bytes fits in S3's 10,000 parts; the largest blob is lowered to what those parts hold."""
    smallest = min(max(settings.s3_part_size_bytes, MIN_PART_SIZE), MAX_PART_SIZE)
    largest = min(max(settings.s3_max_part_size_bytes, smallest), MAX_PART_SIZE)
    needed = -(-settings.blob_max_size_bytes // MAX_PARTS)
    part_size = min(max(smallest, -(-needed // _MIB) * _MIB), largest)
    return UploadLimits(part_size=part_size, max_blob_size=min(settings.blob_max_size_bytes, part_size * MAX_PARTS))


@dataclass(frozen=True)
class WriteChunk:
    """One WriteBlob message, transport-free."""

    resource_name: str
    write_offset: int
    data: bytes | memoryview
    finish_write: bool


@dataclass(frozen=True)
class WriteResult:
    committed_size: int
    already_existed: bool = False


@dataclass(frozen=True)
class WriteStatus:
    committed_size: int
    complete: bool


@dataclass(frozen=True)
class CommittedPart:
    info: PartInfo
    # The running sha256 after this part, so a write can continue (or rewind to) the end of it;
    # None where checkpoints are not supported.
    checkpoint: bytes | None


@dataclass
class UploadState:
    """What survives a broken stream or a restart: persisted after each part."""

    name: UploadName
    multipart_id: str
    part_size: int
    parts: list[CommittedPart] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    # ETag of the stored state object this copy was read from or last written as (None: not stored yet).
    etag: str | None = field(default=None, compare=False)

    @property
    def committed_size(self) -> int:
        return sum(p.info.size for p in self.parts)

    def parts_ending_at(self, offset: int) -> int | None:
        """How many parts end exactly at ``offset`` when the hash can continue from there, else None."""
        if offset == 0:
            return 0
        end = 0
        for count, part in enumerate(self.parts, start=1):
            end += part.info.size
            if end == offset:
                return count if part.checkpoint is not None else None
            if end > offset:
                return None
        return None

    def to_json(self) -> bytes:
        return json.dumps({
            "version": _STATE_VERSION,
            "resource_name": self.name.resource_name,
            "multipart_id": self.multipart_id,
            "part_size": self.part_size,
            "parts": [{"number": p.info.number, "etag": p.info.etag, "size": p.info.size,
                       "sha256": base64.b64encode(p.checkpoint).decode() if p.checkpoint is not None else None}
                      for p in self.parts],
            "started_at": self.started_at,
        }, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, name: UploadName, raw: bytes, etag: str | None = None) -> UploadState | None:
        """The state, or None when it is unreadable, too large or belongs to another name."""
        if len(raw) > MAX_STATE_BYTES:
            return None
        try:
            doc = json.loads(raw)
            if doc.get("version") != _STATE_VERSION or doc.get("resource_name") != name.resource_name:
                return None
            parts = [CommittedPart(PartInfo(number=int(p["number"]), etag=str(p["etag"]), size=int(p["size"])),
                                   _checkpoint(p["sha256"]))
                     for p in doc["parts"]]
            return cls(name=name, multipart_id=str(doc["multipart_id"]), part_size=int(doc["part_size"]),
                       parts=parts, started_at=float(doc.get("started_at", 0.0)), etag=etag)
        except (ValueError, KeyError, TypeError):
            return None


def _checkpoint(encoded: str | None) -> bytes | None:
    if encoded is None:
        return None
    checkpoint = base64.b64decode(encoded, validate=True)
    Sha256.restore(checkpoint)  # ValueError when it cannot be continued here
    return checkpoint


def _superseded(name: UploadName) -> Aborted:
    return Aborted(f"another stream changed upload {name.resource_name}; ask QueryWriteStatus and continue there")


async def _save_state(storage: BlobStorage, state: UploadState) -> None:
    """Writes the state only over the version this stream last saw, so a newer stream's record stays."""
    try:
        state.etag = await storage.put_conditional(state.name.state_key, state.to_json(), expected_etag=state.etag,
                                                   content_type="application/json")
    except WriteConflict:
        raise _superseded(state.name) from None


class BlobWriter:
    """Runs WriteBlob streams and answers QueryWriteStatus."""

    def __init__(self, storage: BlobStorage, settings: Settings):
        self._storage = storage
        self._settings = settings
        self.limits = upload_limits(settings)
        if self.limits.max_blob_size < settings.blob_max_size_bytes:
            log.warning("blob_max_size_lowered", configured=settings.blob_max_size_bytes,
                        effective=self.limits.max_blob_size, part_size=self.limits.part_size,
                        hint="raise s3_max_part_size_bytes to allow larger blobs")
        # One stream at a time per upload name in this process; a second one waits its turn.
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        # Per upload name, a cut stream still recording its part in flight: the next stream waits for it,
        # and a stopping service too.
        self._saving: dict[str, asyncio.Task[None]] = {}

    def parse_name(self, name: str, field_path: str = "resource_name") -> UploadName:
        return parse_upload_name(name, self.limits.max_blob_size, field_path)

    async def query(self, resource_name: str) -> WriteStatus:
        name = self.parse_name(resource_name)
        if name.digest.is_empty or await self._storage.stat(cas_key(name.digest)) is not None:
            return WriteStatus(committed_size=name.digest.size, complete=True)
        state = await self._load_state(name)
        resumable = state is not None and state.part_size == self.limits.part_size
        return WriteStatus(committed_size=state.committed_size if state and resumable else 0, complete=False)

    async def write(self, chunks: AsyncIterator[WriteChunk]) -> WriteResult:
        first = await anext(chunks, None)
        if first is None:
            raise InvalidArgument.field("resource_name", "the stream carried no message")
        name = self.parse_name(first.resource_name)
        if name.digest.is_empty or await self._storage.stat(cas_key(name.digest)) is not None:
            return WriteResult(committed_size=name.digest.size, already_existed=True)
        async with self._exclusive(name.resource_name) as waited:
            waited = await self._wait_for_cut_stream(name.resource_name) or waited
            if waited and await self._storage.stat(cas_key(name.digest)) is not None:
                # Completed by the stream we waited for.
                return WriteResult(committed_size=name.digest.size, already_existed=True)
            # Only parts are ever saved, and a blob of at most one part never has one
            # (a state of another part size could not be resumed anyway): nothing to look up.
            has_parts = name.digest.size > self.limits.part_size
            state = await self._resumable_state(name, first.write_offset) if has_parts else None
            if state is not None and first.write_offset != state.committed_size:
                await self._rewind(state, first.write_offset)
            session = _WriteSession(self._storage, self._settings, self.limits.part_size, name, state,
                                    lambda save: self._track_cut_stream(name.resource_name, save))
            return await session.run(first, chunks)

    async def drain(self, timeout: float) -> None:
        """Waits (up to ``timeout``) for interrupted streams to record what they committed."""
        if self._saving:
            await asyncio.wait(set(self._saving.values()), timeout=timeout)

    @contextlib.asynccontextmanager
    async def _exclusive(self, key: str) -> AsyncIterator[bool]:
        """Holds the upload's lock; yields whether another stream held it first."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        waited = lock.locked()
        try:
            async with lock:
                yield waited
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def _track_cut_stream(self, key: str, save: asyncio.Task[None]) -> None:
        self._saving[key] = save

        def forget(done: asyncio.Task[None]) -> None:
            if self._saving.get(key) is done:
                del self._saving[key]

        save.add_done_callback(forget)

    async def _wait_for_cut_stream(self, key: str) -> bool:
        """Waits until a cut stream of this upload recorded its last part; says whether there was one.

        Its handler may have let go of the lock while the recording still runs (cancelled twice).
        """
        save = self._saving.get(key)
        if save is None:
            return False
        await asyncio.wait({save})  # never cancels the save, even when this stream is cancelled
        return True

    async def _stored_state(self, name: UploadName) -> TaggedBytes | None:
        try:
            return await self._storage.get_tagged(name.state_key, MAX_STATE_BYTES)
        except ObjectMissing:
            return None

    async def _load_state(self, name: UploadName) -> UploadState | None:
        stored = await self._stored_state(name)
        return UploadState.from_json(name, stored.data, stored.etag) if stored is not None else None

    async def _resumable_state(self, name: UploadName, offset: int) -> UploadState | None:
        """The persisted state if S3 still holds exactly its parts; otherwise starts over cleanly.

        A client continuing past 0 of an upload that has to start over did nothing wrong (the parts
        expired, or a stream elsewhere replaced them): ABORTED tells it to ask QueryWriteStatus again.
        """
        stored = await self._stored_state(name)
        if stored is None:
            return None
        state = UploadState.from_json(name, stored.data, stored.etag)
        usable = (state is not None and state.part_size == self.limits.part_size
                  and (not state.parts or state.parts[-1].checkpoint is not None))
        if usable:
            assert state is not None
            try:
                in_s3 = {p.number: p for p in await self._storage.list_parts(cas_key(name.digest), state.multipart_id)}
                usable = all(in_s3.get(p.info.number) == p.info for p in state.parts)
            except UploadMissing:
                usable = False
        if usable:
            return state
        log.info("upload_restarted", resource_name=name.resource_name,
                 committed=state.committed_size if state is not None else None)
        if state is not None:
            await self._storage.abort_multipart(cas_key(name.digest), state.multipart_id)
        await self._storage.delete(name.state_key)
        if offset != 0:
            raise Aborted(f"upload {name.resource_name} lost its parts and starts over; "
                          "ask QueryWriteStatus and continue there")
        return None

    async def _rewind(self, state: UploadState, offset: int) -> None:
        """Moves the upload back to ``offset`` when it is a part boundary QueryWriteStatus could have answered.

        A cut stream may commit its part in flight after QueryWriteStatus answered, so a client
        continuing at that answer is behind the state; the parts after the offset are dropped from the
        state (S3 replaces them as they are written again, and completion names only the new ones).
        Any other offset is left for the stream to refuse with the committed size.
        """
        kept = state.parts_ending_at(offset)
        if kept is None:
            return
        dropped = state.committed_size - offset
        state.parts = state.parts[:kept]
        await _save_state(self._storage, state)
        log.info("upload_rewound", resource_name=state.name.resource_name, offset=offset, dropped_bytes=dropped)


class _WriteSession:
    """One WriteBlob stream over an upload that may already have committed parts."""

    def __init__(self, storage: BlobStorage, settings: Settings, part_size: int, name: UploadName,
                 state: UploadState | None, on_cut: Callable[[asyncio.Task[None]], None]):
        self._storage = storage
        self._max_chunk = settings.blob_max_chunk_size_bytes
        self._part_size = part_size
        self._name = name
        self._key = cas_key(name.digest)
        self._state = state
        self._on_cut = on_cut
        last = state.parts[-1].checkpoint if state and state.parts else None
        self._hash = Sha256.restore(last) if last is not None else Sha256()
        self._committed = state.committed_size if state else 0
        self._received = self._committed
        self._buffer: collections.deque[bytes | memoryview] = collections.deque()
        self._buffered = 0
        # Holds the part in flight; filled again only once that part settled (see _take).
        self._part_buffer: bytearray | None = None
        self._in_flight: asyncio.Task[None] | None = None

    async def run(self, first: WriteChunk, rest: AsyncIterator[WriteChunk]) -> WriteResult:
        try:
            chunk: WriteChunk | None = first
            while chunk is not None:
                self._accept(chunk)
                if chunk.finish_write:
                    return await self._finish()
                if self._buffered >= self._part_size and self._name.digest.size > self._part_size:
                    await self._start_part(self._part_size)
                chunk = await anext(rest, None)
            # The client closed without finish_write: the part in flight still counts.
            await self._settle_in_flight()
            return WriteResult(committed_size=self._committed)
        except (UploadMissing, PartsChanged):
            await self._record_in_flight()
            return await self._upload_lost()
        except BaseException:
            # The stream broke or failed: the part in flight is still recorded, so the client resends less.
            await self._record_in_flight()
            raise

    async def _record_in_flight(self) -> None:
        """Lets the part in flight land and be recorded, even if this handler is cancelled meanwhile.

        The next stream of the upload waits for it (``on_cut``), so it never loads a state this
        stream is about to replace.
        """
        if self._in_flight is None:
            return
        save = asyncio.create_task(self._settle_quietly())
        self._on_cut(save)
        await asyncio.shield(save)

    def _accept(self, chunk: WriteChunk) -> None:
        if chunk.resource_name and chunk.resource_name != self._name.resource_name:
            raise InvalidArgument.field("resource_name", "must be empty or the same in every message of a stream")
        expected = self._received
        if chunk.write_offset != expected:
            relation = "skips" if chunk.write_offset > expected else "overlaps"
            raise InvalidArgument.field(
                "write_offset",
                f"{chunk.write_offset} {relation} the committed size {expected}; ask QueryWriteStatus and continue there")
        if len(chunk.data) > self._max_chunk:
            raise InvalidArgument.field("data", f"{len(chunk.data)} bytes exceed the maximum chunk size {self._max_chunk}")
        if expected + len(chunk.data) > self._name.digest.size:
            raise OutOfRange("data", f"bytes past the declared size {self._name.digest.size}")
        if chunk.data:
            self._buffer.append(chunk.data)
            self._buffered += len(chunk.data)
            self._received += len(chunk.data)

    def _take(self, size: int) -> bytes | memoryview:
        """Removes the first ``size`` buffered bytes: a chunk of exactly that size as it is, else the
        bytes copied into the stream's part buffer. Called only while no part is in flight, so the
        buffer is free: it is reused part after part, and a part costs one copy into memory that is
        already mapped (a fresh part-sized allocation per part spent more CPU on page faults than on
        copying)."""
        if len(self._buffer) == 1 and len(self._buffer[0]) == size:
            self._buffered = 0
            return self._buffer.popleft()
        pieces: list[bytes | memoryview] = []
        wanted = size
        while wanted > 0 and self._buffer:
            head = self._buffer.popleft()
            if len(head) > wanted:
                view = memoryview(head)
                pieces.append(view[:wanted])
                self._buffer.appendleft(view[wanted:])
                wanted = 0
            else:
                pieces.append(head)
                wanted -= len(head)
        taken = size - wanted
        self._buffered -= taken
        if self._part_buffer is None or len(self._part_buffer) < taken:
            # Joined, not allocated and then filled: bytearray(n) would write zeros over it first.
            self._part_buffer = bytearray().join(pieces)
            return memoryview(self._part_buffer)
        part = memoryview(self._part_buffer)[:taken]
        position = 0
        for piece in pieces:
            part[position:position + len(piece)] = piece
            position += len(piece)
        return part

    async def _start_part(self, size: int) -> None:
        """Commits the next part in the background; waits for the previous one first."""
        await self._settle_in_flight()
        self._in_flight = asyncio.create_task(self._commit_part(self._take(size)))

    async def _settle_in_flight(self) -> None:
        # Forgotten only once done: a cancelled wait leaves it for _record_in_flight.
        if self._in_flight is not None:
            await asyncio.shield(self._in_flight)
            self._in_flight = None

    async def _settle_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await self._settle_in_flight()

    async def _commit_part(self, data: bytes | memoryview) -> None:
        created = self._state is None
        if self._state is None:
            multipart_id = await self._storage.create_multipart(self._key)
            self._state = UploadState(name=self._name, multipart_id=multipart_id, part_size=self._part_size)
        state = self._state
        number = len(state.parts) + 1
        # Hashing and uploading the same part run side by side, both off the event loop.
        _, part = await asyncio.gather(
            asyncio.to_thread(self._hash.update, data),
            self._storage.upload_part(self._key, state.multipart_id, number, data),
        )
        state.parts.append(CommittedPart(part, self._hash.checkpoint()))
        try:
            await _save_state(self._storage, state)
        except Aborted:
            if created:
                # Another stream recorded its own multipart upload first; nobody knows of this one.
                await self._storage.abort_multipart(self._key, state.multipart_id)
            raise
        self._committed += len(data)

    async def _finish(self) -> WriteResult:
        size = self._name.digest.size
        if self._received != size:
            raise InvalidArgument.field(
                "finish_write", f"the stream ended at {self._received} bytes but the blob has {size}")
        await self._settle_in_flight()
        tail = self._take(self._buffered)
        if self._state is None:
            # One PUT makes the blob visible: it waits for the check.
            await asyncio.to_thread(self._hash.update, tail)
            await self._verify()
            await self._storage.put(self._key, tail)
        else:
            # Parts numbered past these (left by a stream before a rewind) are not named, so S3 drops them.
            parts = [p.info for p in self._state.parts]
            hashing = asyncio.to_thread(self._hash.update, tail)
            if tail:
                # The last part goes up while it is hashed: no part is visible before the completion,
                # and the completion waits for the check.
                _, last = await asyncio.gather(
                    hashing, self._storage.upload_part(self._key, self._state.multipart_id, len(parts) + 1, tail))
                parts.append(last)
            else:
                await hashing
            await self._verify()
            await self._storage.complete_multipart(self._key, self._state.multipart_id, parts)
            await self._storage.delete(self._name.state_key)
        self._committed = size
        return WriteResult(committed_size=size)

    async def _verify(self) -> None:
        """Refuses the upload (and drops what it stored) unless everything received has the digest's sha256."""
        actual = self._hash.hexdigest()
        if actual != self._name.digest.hash:
            await self._discard()
            raise InvalidArgument.field(
                "resource_name", f"the content's sha256 is {actual}, not the {self._name.digest.hash} named")

    async def _upload_lost(self) -> WriteResult:
        """The multipart upload was completed, aborted or had parts replaced by a stream elsewhere."""
        if await self._storage.stat(self._key) is not None:
            return WriteResult(committed_size=self._name.digest.size, already_existed=True)
        await self._discard()
        raise Aborted(f"upload {self._name.resource_name} lost its parts to another stream and starts over; "
                      "ask QueryWriteStatus and continue there")

    async def _discard(self) -> None:
        if self._state is not None:
            await self._storage.abort_multipart(self._key, self._state.multipart_id)
            await self._storage.delete(self._name.state_key)
            self._state = None
