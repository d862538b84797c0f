"""Resumable, verified blob writes (the domain side of WriteBlob / QueryWriteStatus).

How a write works (README.md has the full design):

* A blob no larger than one part is buffered and, once its sha256 and size
  check out, stored with one PUT. Nothing is written before that.
* A larger blob goes to an S3 multipart upload whose target is its CAS key.
  Parts are invisible until the upload is completed, and it is completed only
  after the sha256 of everything received matched the digest; on a mismatch
  it is aborted. So the CAS key never shows partial or wrong content.
* After each committed part an upload-state object records the multipart
  upload id, the parts (number, etag, size) and a checkpoint of the running
  sha256 (``hashing.Sha256``). A new stream, in this process or after a
  restart, continues from that state without reading anything back.
* Memory per stream: the part being filled plus at most one part in flight.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog

from framevault.blob.hashing import Sha256
from framevault.blob.keys import UploadName, cas_key, parse_upload_name
from framevault.blob.storage import BlobStorage, ObjectMissing, PartInfo, UploadMissing
from framevault.common.config import Settings
from framevault.common.errors import InvalidArgument, OutOfRange

log = structlog.get_logger("framevault.blob.uploads")

# S3 rejects non-final parts below 5 MiB and uploads of more than 10,000 parts.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
_STATE_VERSION = 1


@dataclass(frozen=True)
class WriteChunk:
    """One WriteBlob message, transport-free."""

    resource_name: str
    write_offset: int
    data: bytes
    finish_write: bool


@dataclass(frozen=True)
class WriteResult:
    committed_size: int
    already_existed: bool = False


@dataclass(frozen=True)
class WriteStatus:
    committed_size: int
    complete: bool


@dataclass
class UploadState:
    """What survives a broken stream or a restart: persisted after each part."""

    name: UploadName
    multipart_id: str
    part_size: int
    parts: list[PartInfo] = field(default_factory=list)
    sha256_checkpoint: bytes | None = None
    started_at: float = field(default_factory=time.time)

    @property
    def committed_size(self) -> int:
        return sum(p.size for p in self.parts)

    def to_json(self) -> bytes:
        return json.dumps({
            "version": _STATE_VERSION,
            "resource_name": self.name.resource_name,
            "multipart_id": self.multipart_id,
            "part_size": self.part_size,
            "parts": [{"number": p.number, "etag": p.etag, "size": p.size} for p in self.parts],
            "sha256_checkpoint": base64.b64encode(self.sha256_checkpoint).decode()
            if self.sha256_checkpoint is not None else None,
            "started_at": self.started_at,
        }, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, name: UploadName, raw: bytes) -> UploadState | None:
        """The state, or None when it is unreadable or belongs to another name."""
        try:
            doc = json.loads(raw)
            if doc.get("version") != _STATE_VERSION or doc.get("resource_name") != name.resource_name:
                return None
            checkpoint = doc.get("sha256_checkpoint")
            return cls(
                name=name,
                multipart_id=str(doc["multipart_id"]),
                part_size=int(doc["part_size"]),
                parts=[PartInfo(number=int(p["number"]), etag=str(p["etag"]), size=int(p["size"]))
                       for p in doc["parts"]],
                sha256_checkpoint=base64.b64decode(checkpoint) if checkpoint is not None else None,
                started_at=float(doc.get("started_at", 0.0)),
            )
        except (ValueError, KeyError, TypeError):
            return None


def part_size_for(blob_size: int, configured: int) -> int:
    """The configured part size, grown for blobs that would need more than 10,000 parts."""
    size = max(configured, MIN_PART_SIZE)
    needed = -(-blob_size // MAX_PARTS)
    if needed > size:
        mib = 1024 * 1024
        size = -(-needed // mib) * mib
    return size


class BlobWriter:
    """Runs WriteBlob streams and answers QueryWriteStatus."""

    def __init__(self, storage: BlobStorage, settings: Settings):
        self._storage = storage
        self._settings = settings
        # One stream at a time per upload name in this process; a second one waits its turn.
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        # Saves of interrupted streams still running, so a stopping service can wait for them.
        self._saving: set[asyncio.Task[None]] = set()

    def parse_name(self, name: str, field_path: str = "resource_name") -> UploadName:
        return parse_upload_name(name, self._settings.blob_max_size_bytes, field_path)

    async def query(self, resource_name: str) -> WriteStatus:
        name = self.parse_name(resource_name)
        if name.digest.is_empty or await self._storage.stat(cas_key(name.digest)) is not None:
            return WriteStatus(committed_size=name.digest.size, complete=True)
        state = await self._load_state(name)
        return WriteStatus(committed_size=state.committed_size if state else 0, complete=False)

    async def write(self, chunks: AsyncIterator[WriteChunk]) -> WriteResult:
        first = await anext(chunks, None)
        if first is None:
            raise InvalidArgument.field("resource_name", "the stream carried no message")
        name = self.parse_name(first.resource_name)
        if name.digest.is_empty or await self._storage.stat(cas_key(name.digest)) is not None:
            return WriteResult(committed_size=name.digest.size, already_existed=True)
        async with self._exclusive(name.resource_name) as waited:
            if waited and await self._storage.stat(cas_key(name.digest)) is not None:
                # Completed by the stream we waited for.
                return WriteResult(committed_size=name.digest.size, already_existed=True)
            # Only parts are ever saved, and a blob of at most MIN_PART_SIZE
            # bytes never had one, whatever the part size was: nothing to look up.
            state = await self._resumable_state(name) if name.digest.size > MIN_PART_SIZE else None
            session = _WriteSession(self._storage, self._settings, name, state, self._saving)
            return await session.run(first, chunks)

    async def drain(self, timeout: float) -> None:
        """Waits (up to ``timeout``) for interrupted streams to record what they committed."""
        if self._saving:
            await asyncio.wait(set(self._saving), timeout=timeout)

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

    async def _load_state(self, name: UploadName) -> UploadState | None:
        try:
            raw = await self._storage.get(name.state_key)
        except ObjectMissing:
            return None
        return UploadState.from_json(name, raw)

    async def _resumable_state(self, name: UploadName) -> UploadState | None:
        """The persisted state if S3 still holds exactly its parts; otherwise starts over cleanly."""
        state = await self._load_state(name)
        if state is None:
            return None
        usable = state.sha256_checkpoint is not None or not state.parts
        if usable and state.sha256_checkpoint is not None:
            try:
                Sha256.restore(state.sha256_checkpoint)
            except ValueError:
                usable = False
        if usable:
            try:
                stored = {p.number: p for p in await self._storage.list_parts(cas_key(name.digest), state.multipart_id)}
                usable = all(stored.get(p.number) == p for p in state.parts)
            except UploadMissing:
                usable = False
        if usable:
            return state
        log.info("upload_restarted", resource_name=name.resource_name, committed=state.committed_size)
        await self._storage.abort_multipart(cas_key(name.digest), state.multipart_id)
        await self._storage.delete(name.state_key)
        return None


class _WriteSession:
    """One WriteBlob stream over an upload that may already have committed parts."""

    def __init__(self, storage: BlobStorage, settings: Settings, name: UploadName, state: UploadState | None,
                 saving: set[asyncio.Task[None]]):
        self._saving = saving
        self._storage = storage
        self._settings = settings
        self._name = name
        self._key = cas_key(name.digest)
        self._state = state
        self._part_size = state.part_size if state else part_size_for(name.digest.size, settings.s3_part_size_bytes)
        self._hash = Sha256.restore(state.sha256_checkpoint) if state and state.sha256_checkpoint else Sha256()
        self._committed = state.committed_size if state else 0
        self._received = self._committed
        self._buffer: list[bytes] = []
        self._buffered = 0
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
            # The client closed without finish_write: keep what can be kept and say how much that is.
            await self._save_interrupted()
            return WriteResult(committed_size=self._committed)
        except asyncio.CancelledError:
            # The stream broke: what arrived still counts where S3 allows it, so the client resends less.
            save = asyncio.create_task(self._save_interrupted())
            self._saving.add(save)
            save.add_done_callback(self._saving.discard)
            await asyncio.shield(save)
            raise
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._settle_in_flight())
            raise

    def _accept(self, chunk: WriteChunk) -> None:
        if chunk.resource_name and chunk.resource_name != self._name.resource_name:
            raise InvalidArgument.field("resource_name", "must be empty or the same in every message of a stream")
        expected = self._received
        if chunk.write_offset != expected:
            relation = "skips" if chunk.write_offset > expected else "overlaps"
            raise InvalidArgument.field(
                "write_offset",
                f"{chunk.write_offset} {relation} the committed size {expected}; ask QueryWriteStatus and continue there")
        limit = self._settings.blob_max_chunk_size_bytes
        if len(chunk.data) > limit:
            raise InvalidArgument.field("data", f"{len(chunk.data)} bytes exceed the maximum chunk size {limit}")
        if expected + len(chunk.data) > self._name.digest.size:
            raise OutOfRange("data", f"bytes past the declared size {self._name.digest.size}")
        if chunk.data:
            self._buffer.append(chunk.data)
            self._buffered += len(chunk.data)
            self._received += len(chunk.data)

    def _take(self, size: int) -> bytes:
        """Removes the first ``size`` buffered bytes, splitting at most one chunk."""
        taken: list[bytes] = []
        wanted = size
        while wanted > 0 and self._buffer:
            head = self._buffer[0]
            if len(head) <= wanted:
                taken.append(self._buffer.pop(0))
                wanted -= len(head)
            else:
                taken.append(head[:wanted])
                self._buffer[0] = head[wanted:]
                wanted = 0
        self._buffered -= size - wanted
        return taken[0] if len(taken) == 1 else b"".join(taken)

    async def _start_part(self, size: int) -> None:
        """Commits the next part in the background; waits for the previous one first."""
        await self._settle_in_flight()
        self._in_flight = asyncio.create_task(self._commit_part(self._take(size)))

    async def _settle_in_flight(self) -> None:
        task, self._in_flight = self._in_flight, None
        if task is not None:
            await asyncio.shield(task)

    async def _commit_part(self, data: bytes) -> None:
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
        state.parts.append(part)
        state.sha256_checkpoint = self._hash.checkpoint()
        await self._storage.put(self._name.state_key, state.to_json(), content_type="application/json")
        self._committed += len(data)

    async def _save_interrupted(self) -> None:
        """Waits for the part in flight; commits the buffered tail too when S3 accepts it as a part."""
        with contextlib.suppress(Exception):
            await self._settle_in_flight()
            if self._buffered >= MIN_PART_SIZE and self._name.digest.size > self._part_size:
                await self._start_part(self._buffered)
                await self._settle_in_flight()

    async def _finish(self) -> WriteResult:
        size = self._name.digest.size
        if self._received != size:
            raise InvalidArgument.field(
                "finish_write", f"the stream ended at {self._received} bytes but the blob has {size}")
        await self._settle_in_flight()
        tail = self._take(self._buffered)
        await asyncio.to_thread(self._hash.update, tail)
        actual = self._hash.hexdigest()
        if actual != self._name.digest.hash:
            await self._discard()
            raise InvalidArgument.field(
                "resource_name", f"the content's sha256 is {actual}, not the {self._name.digest.hash} named")
        if self._state is None:
            await self._storage.put(self._key, tail)
        else:
            parts = list(self._state.parts)
            if tail:
                parts.append(await self._storage.upload_part(self._key, self._state.multipart_id, len(parts) + 1, tail))
            await self._storage.complete_multipart(self._key, self._state.multipart_id, parts)
            await self._storage.delete(self._name.state_key)
        self._committed = size
        return WriteResult(committed_size=size)

    async def _discard(self) -> None:
        if self._state is not None:
            await self._storage.abort_multipart(self._key, self._state.multipart_id)
            await self._storage.delete(self._name.state_key)
            self._state = None
