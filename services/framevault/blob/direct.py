"""Direct uploads: the client sends a blob's bytes straight to the object store (StartDirectUpload /
CompleteDirectUpload); the service only signs URLs, assembles and verifies.

How the guarantees of WriteBlob hold without the bytes passing through the service (README.md,
"Direct transfers"):

* A blob up to ``blob_direct_single_put_max_bytes`` goes in one PUT straight to its CAS key, when
  the store proved at start (``BlobStorage.refuses_mismatched_checksums``) that it refuses a PUT
  whose bytes do not have the sha256 the URL signs. The URL signs the method, the CAS key and the
  headers ``x-amz-checksum-sha256`` (the digest's hash) and ``x-amz-sdk-checksum-algorithm:
  SHA256``: a request without exactly these values fails the signature, and the store computes the
  sha256 of the bytes it receives and creates the object only when it matches. A PUT is atomic, so
  the CAS key holds either nothing or bytes of the named sha256 (and so of the named size: another
  size with the same sha256 would be a collision). The client, trusted with nothing, can only send
  the right bytes or have them refused; no read-back and no copy are needed, and the store does the
  work of one PUT, as for any client of its own. The probe also sends forged bytes with headers
  that ask for another checksum (which the forged bytes match), so a store that lets a request
  pick its checksum fails it; a store that fails any probe gets every upload in parts.
* Otherwise the parts go into an S3 multipart upload whose target is the upload's staging key
  (``keys.UploadName.staging_key``), never the blob's CAS key. Each presigned URL signs the method,
  the key, the upload id and the part number, so it writes that one part and nothing else.
* Completion assembles exactly the parts ``1..n`` with the sizes the part layout gives, at the
  staging key. The service then reads the assembled object back and hashes it while the store
  copies it, part by part (UploadPartCopy pinned to the ETag being hashed), into a multipart upload
  at the CAS key. That upload is completed only when the size and sha256 matched the digest, and
  aborted otherwise, so the CAS key never shows unchecked bytes; a mismatch drops the staged bytes
  too. No URL the service hands out reaches a staging key for reading.
* Resume is the store's part listing: StartDirectUpload answers which parts landed (with the right
  size), and the client sends the rest.
* The upload's state object (``staging_state_key``: the multipart upload id) is written once,
  conditionally, so two replicas starting the same upload agree on one multipart upload.
  Garbage collection removes direct uploads started longer ago than its grace period.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from framevault.blob.keys import UploadName, cas_key, parse_upload_name
from framevault.blob.storage import BlobStorage, ObjectMissing, PartInfo, PartsChanged, UploadMissing, WriteConflict
from framevault.blob.store import BlobStore, bounded_map
from framevault.blob.uploads import upload_limits
from framevault.common.config import Settings
from framevault.common.errors import (
    Aborted,
    FailedPrecondition,
    FieldErrors,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
)

log = structlog.get_logger("framevault.blob.direct")

# URLs one StartDirectUpload answers at most (about 600 bytes each: well below 4 MiB messages).
MAX_PART_URLS = 1000
# The read-back that verifies an assembled upload: ranges of this size, this many in flight while
# the one before is hashed (memory per completing upload: about RANGES_AHEAD + 1 ranges).
VERIFY_RANGE_BYTES = 16 * 1024 * 1024
VERIFY_RANGES_AHEAD = 3
# Parts copied inside the store at once while an assembled upload is verified.
COPY_CONCURRENCY = 4
# The largest object S3 takes in one PUT.
S3_MAX_PUT_BYTES = 5 * 1024 ** 3
_STATE_VERSION = 1
_MAX_STATE_BYTES = 64 * 1024
UPLOAD_RESOURCE = "upload"


@dataclass(frozen=True)
class PartUrl:
    number: int
    offset: int
    size: int
    url: str


@dataclass(frozen=True)
class DirectUploadPlan:
    already_existed: bool
    part_size: int
    part_count: int
    uploaded: list[int]
    parts: list[PartUrl]
    expire_time: datetime | None


@dataclass(frozen=True)
class DirectUploadResult:
    committed_size: int
    already_existed: bool


@dataclass(frozen=True)
class _State:
    multipart_id: str
    part_size: int
    started_at: float


class PartLayout:
    """Parts of a blob: ``part_size`` each, the last one the rest."""

    def __init__(self, size: int, part_size: int):
        self.size = size
        self.part_size = part_size
        self.count = max(1, -(-size // part_size))

    def offset(self, number: int) -> int:
        return (number - 1) * self.part_size

    def size_of(self, number: int) -> int:
        return min(self.part_size, self.size - self.offset(number))


class DirectUploads:
    """Runs StartDirectUpload and CompleteDirectUpload."""

    def __init__(self, storage: BlobStorage, blobs: BlobStore, settings: Settings):
        self._storage = storage
        self._blobs = blobs
        self._settings = settings
        self._limits = upload_limits(settings)
        # Set by probe_store: the store refuses a PUT whose bytes do not have the sha256 its URL signs.
        self._store_checks_sha256 = False

    async def start(self, resource_name: str, part_numbers: Sequence[int], expires_in_seconds: int
                    ) -> DirectUploadPlan:
        self._require_enabled()
        errors = FieldErrors()
        try:
            name: UploadName | None = parse_upload_name(resource_name, self._limits.max_blob_size)
        except InvalidArgument as exc:
            errors.violations.extend(exc.violations)
            name = None
        lifetime = self._blobs.url_lifetime(errors, expires_in_seconds)
        # An upload begun in parts (its state exists) goes on in parts, whatever the settings say now.
        one_put = name is not None and self._one_put(name.digest.size) and await self._load_state(name) is None
        layout = PartLayout(name.digest.size, name.digest.size if one_put else self._limits.part_size) \
            if name is not None else None
        if len(part_numbers) > MAX_PART_URLS:
            errors.add("part_numbers", f"{len(part_numbers)} parts exceed the {MAX_PART_URLS} one call answers")
        elif layout is not None:
            for index, number in enumerate(part_numbers):
                if not 1 <= number <= layout.count:
                    errors.add(f"part_numbers[{index}]", f"must be 1..{layout.count}, the parts of this blob")
        errors.raise_if_any()
        assert name is not None and layout is not None
        if await self._blobs.exists(name.digest):
            return DirectUploadPlan(True, layout.part_size, layout.count, [], [], None)
        if one_put:
            url = await self._storage.presign_put_checked(cas_key(name.digest), name.digest.hash, lifetime)
            return DirectUploadPlan(False, layout.part_size, 1, [], [PartUrl(1, 0, name.digest.size, url)],
                                    datetime.now(UTC) + lifetime)
        state = await self._state_for(name)
        try:
            uploaded = self._landed(layout, await self._storage.list_parts(name.staging_key, state.multipart_id))
        except UploadMissing:
            if await self._storage.stat(name.staging_key) is not None:
                # Assembled by a completion that did not finish: every part is there, complete again.
                return DirectUploadPlan(False, layout.part_size, layout.count, list(range(1, layout.count + 1)),
                                        [], None)
            await self._storage.delete(name.staging_state_key)
            state = await self._state_for(name)
            uploaded = []
        wanted = list(dict.fromkeys(part_numbers)) or [
            n for n in range(1, layout.count + 1) if n not in set(uploaded)][:MAX_PART_URLS]
        issued = datetime.now(UTC)

        async def sign(number: int) -> PartUrl:
            url = await self._storage.presign_upload_part(name.staging_key, state.multipart_id, number, lifetime)
            return PartUrl(number, layout.offset(number), layout.size_of(number), url)

        parts = await bounded_map(wanted, sign, self._settings.s3_max_concurrency)
        return DirectUploadPlan(False, layout.part_size, layout.count, uploaded, parts, issued + lifetime)

    async def complete(self, resource_name: str) -> DirectUploadResult:
        self._require_enabled()
        name = parse_upload_name(resource_name, self._limits.max_blob_size)
        size = name.digest.size
        if await self._blobs.exists(name.digest):
            await self._discard(name, await self._load_state(name))
            return DirectUploadResult(size, already_existed=True)
        state = await self._load_state(name)
        if state is None:
            # Never started in parts, and not at the content address: no PUT of it arrived either.
            raise NotFound(UPLOAD_RESOURCE, name.resource_name, field="resource_name",
                           message=f"no direct upload {name.resource_name} and no blob of its PUT; start it "
                                   "with StartDirectUpload")
        layout = PartLayout(size, state.part_size)
        try:
            landed = await self._storage.list_parts(name.staging_key, state.multipart_id)
        except UploadMissing:
            landed = None  # assembled already by a completion that did not finish
        if landed is not None:
            await self._assemble(name, state, layout, landed)
        return await self._verify_and_publish(name, state)

    async def probe_store(self) -> None:
        """Learns whether the store checks the sha256 a PUT URL signs (at start; until then and
        without it, every direct upload goes in parts and is verified by reading it back)."""
        self._store_checks_sha256 = await self._storage.refuses_mismatched_checksums()
        if not self._store_checks_sha256 and self._settings.blob_direct_single_put_max_bytes > 0:
            log.warning("direct_uploads_in_parts_only",
                        reason="the object store does not refuse a PUT whose bytes miss the signed sha256")

    def _one_put(self, size: int) -> bool:
        """Whether a direct upload of ``size`` bytes goes in one checked PUT to its content address."""
        return self._store_checks_sha256 and 0 < size <= min(self._settings.blob_direct_single_put_max_bytes,
                                                              S3_MAX_PUT_BYTES)

    def _require_enabled(self) -> None:
        if not self._settings.blob_direct_transfers:
            raise FailedPrecondition("direct transfers are off on this service; use WriteBlob",
                                     [PreconditionViolation("DIRECT_TRANSFERS", "blob_direct_transfers",
                                                            "direct transfers are off")])

    @staticmethod
    def _landed(layout: PartLayout, parts: Sequence[PartInfo]) -> list[int]:
        """Numbers of the parts the store holds with the size the layout gives them."""
        return sorted({p.number for p in parts if 1 <= p.number <= layout.count and p.size == layout.size_of(p.number)})

    async def _assemble(self, name: UploadName, state: _State, layout: PartLayout,
                        landed: Sequence[PartInfo]) -> None:
        # A part sent again is listed once per version by some stores (SeaweedFS); completion names
        # the ETag of one of the right size, and the store assembles exactly that one.
        by_number = {p.number: p for p in landed if 1 <= p.number <= layout.count and p.size == layout.size_of(p.number)}
        missing = [n for n in range(1, layout.count + 1) if n not in by_number]
        if missing:
            shown = ", ".join(str(n) for n in missing[:20]) + (" ..." if len(missing) > 20 else "")
            raise FailedPrecondition(
                f"{len(missing)} of {layout.count} parts are missing or of the wrong size ({shown}); upload "
                "them (StartDirectUpload gives their URLs) and complete again",
                [PreconditionViolation("PARTS_MISSING", name.resource_name, f"parts {shown}")])
        try:
            # Exactly parts 1..n: a part numbered past the blob's end is not named, so S3 drops it.
            await self._storage.complete_multipart(name.staging_key, state.multipart_id,
                                                   [by_number[n] for n in range(1, layout.count + 1)])
        except UploadMissing:
            pass  # another completion assembled it meanwhile; the staged object is checked below
        except PartsChanged:
            raise Aborted(f"parts of {name.resource_name} changed while completing; complete again") from None

    async def _verify_and_publish(self, name: UploadName, state: _State) -> DirectUploadResult:
        digest = name.digest
        target = cas_key(digest)
        try:
            staged = await self._storage.stat(name.staging_key)
            if staged is None:
                raise ObjectMissing(name.staging_key)
            if staged.size != digest.size:
                await self._discard(name, state)
                raise InvalidArgument.field("resource_name", f"the parts hold {staged.size} bytes, but the blob "
                                                             f"has {digest.size}; nothing was stored")
            # The copy into the CAS key's multipart upload runs while the bytes are hashed: its parts
            # stay invisible until the completion below, which only a matching hash reaches.
            multipart_id = await self._storage.create_multipart(target)
            try:
                actual, parts = await asyncio.gather(
                    self._sha256_of(name.staging_key, digest.size),
                    self._copy_parts(name.staging_key, staged.etag, target, multipart_id,
                                     PartLayout(digest.size, state.part_size)))
                if actual != digest.hash:
                    await self._discard(name, state)
                    raise InvalidArgument.field("resource_name", f"the content's sha256 is {actual}, not the "
                                                                 f"{digest.hash} named; nothing was stored")
                await self._storage.complete_multipart(target, multipart_id, parts)
            except BaseException:
                await asyncio.shield(self._storage.abort_multipart(target, multipart_id))
                raise
        except (ObjectMissing, WriteConflict, UploadMissing, PartsChanged):
            # Another completion of the same upload published it and removed the staged bytes.
            if await self._blobs.exists(digest):
                return DirectUploadResult(digest.size, already_existed=True)
            raise Aborted(f"the staged bytes of {name.resource_name} changed or went away; "
                          "start the upload again") from None
        await self._storage.delete_many([name.staging_key, name.staging_state_key])
        log.info("direct_upload_completed", resource_name=name.resource_name, size=digest.size)
        return DirectUploadResult(digest.size, already_existed=False)

    async def _copy_parts(self, source: str, source_etag: str, target: str, multipart_id: str,
                          layout: PartLayout) -> list[PartInfo]:
        async def copy(number: int) -> PartInfo:
            return await self._storage.upload_part_copy(target, multipart_id, number, source, source_etag,
                                                        layout.offset(number), layout.size_of(number))

        return await bounded_map(list(range(1, layout.count + 1)), copy, COPY_CONCURRENCY)

    async def _sha256_of(self, key: str, size: int) -> str:
        """sha256 of the object, read back in ranges fetched ahead while the previous one is hashed."""
        sha = hashlib.sha256()
        offsets = list(range(0, size, VERIFY_RANGE_BYTES))
        fetches: dict[int, asyncio.Task[bytes]] = {}

        def fetch(index: int) -> None:
            if index < len(offsets) and index not in fetches:
                offset = offsets[index]
                fetches[index] = asyncio.ensure_future(
                    self._storage.get(key, offset, min(VERIFY_RANGE_BYTES, size - offset)))

        try:
            for index in range(len(offsets)):
                for ahead in range(index, index + VERIFY_RANGES_AHEAD + 1):
                    fetch(ahead)
                data = await fetches.pop(index)
                expected = min(VERIFY_RANGE_BYTES, size - offsets[index])
                if len(data) != expected:
                    raise ObjectMissing(key)  # changed under us: treated as gone
                await asyncio.to_thread(sha.update, data)
        finally:
            for task in fetches.values():
                task.cancel()
        return sha.hexdigest()

    async def _state_for(self, name: UploadName) -> _State:
        """The upload's state, creating its multipart upload if there is none yet (one per upload
        across replicas: the state is written only if absent)."""
        existing = await self._load_state(name)
        if existing is not None and existing.part_size == self._limits.part_size:
            return existing
        if existing is not None:
            await self._discard(name, existing)
        multipart_id = await self._storage.create_multipart(name.staging_key)
        state = _State(multipart_id=multipart_id, part_size=self._limits.part_size, started_at=time.time())
        body = json.dumps({"version": _STATE_VERSION, "resource_name": name.resource_name,
                           "multipart_id": state.multipart_id, "part_size": state.part_size,
                           "started_at": state.started_at}, separators=(",", ":")).encode()
        try:
            await self._storage.put_conditional(name.staging_state_key, body, expected_etag=None,
                                                content_type="application/json")
        except WriteConflict:
            # Another start of the same upload won; use its multipart upload.
            await self._storage.abort_multipart(name.staging_key, multipart_id)
            winner = await self._load_state(name)
            if winner is None:
                # Unreadable (another layout, or being replaced): dropped, so the next start begins anew.
                await self._storage.delete(name.staging_state_key)
                raise Aborted(f"upload {name.resource_name} changed while starting; start again") from None
            return winner
        return state

    async def _load_state(self, name: UploadName) -> _State | None:
        try:
            stored = await self._storage.get_tagged(name.staging_state_key, _MAX_STATE_BYTES)
        except ObjectMissing:
            return None
        try:
            doc = json.loads(stored.data)
            if doc.get("version") != _STATE_VERSION or doc.get("resource_name") != name.resource_name:
                return None
            return _State(multipart_id=str(doc["multipart_id"]), part_size=int(doc["part_size"]),
                          started_at=float(doc["started_at"]))
        except (ValueError, KeyError, TypeError):
            return None

    async def _discard(self, name: UploadName, state: _State | None) -> None:
        """Drops a direct upload: its multipart upload, staged bytes and state."""
        if state is not None:
            await self._storage.abort_multipart(name.staging_key, state.multipart_id)
        await self._storage.delete_many([name.staging_key, name.staging_state_key])
