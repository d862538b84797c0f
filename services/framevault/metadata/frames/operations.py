"""Unary frame operations: get, update (whole or by field mask), delete many,
count, list, and the referenced-blob scan for the blob service's garbage
collection. Validation first, then reads and writes under the STORAGE.md
rules (``revisions``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from framevault.api.digests import digest_to_proto
from framevault.api.limits import MAX_DELETE_IDS
from framevault.api.metadata_values import dict_to_metadata, metadata_to_dict, value_to_python
from framevault.common.config import Settings
from framevault.common.digests import stored_blob_digest
from framevault.common.errors import Aborted, FieldErrors, InvalidArgument, NotFound, TooLargeToStore, ok_status
from framevault.metadata.blobs import BlobGateway
from framevault.metadata.caller_metadata import split_key_path
from framevault.metadata.catalog import page_tokens
from framevault.metadata.frame_documents import document_to_frame, encoded_frame, now_ms
from framevault.metadata.frames.blob_refs import settle_blobs
from framevault.metadata.frames.revisions import (
    Written,
    delete_revisions,
    find_version_with_revision,
    find_visible_revisions,
    write_revisions,
)
from framevault.metadata.frames.store import FrameStore
from framevault.metadata.frames.validation import FrameLimits, frame_id_problem, prepare_frame
from framevault.metadata.frames.write_leases import write_lease
from framevault.metadata.lineage import (
    VersionHandle,
    live_frame_counts,
    plain_version_id,
    require_draft,
    resolve_version,
    resolve_version_document,
)
from framevault.metadata.transactions import with_retries
from framevault.v1 import blob_pb2, dataset_pb2, frame_pb2, metadata_pb2, metadata_service_pb2

DEFAULT_REFERENCE_BATCH = 1000
MAX_REFERENCE_BATCH = 10_000
# Paths of Frame an update mask may name; `meta.<key>.<key>...` addresses
# one metadata entry.
MASKABLE_FIELDS = ("context_id", "timestamp", "sources", "rois", "meta", "blob")


def _checked_frame_id(frame_id: str, field: str) -> None:
    problem = frame_id_problem(frame_id)
    if problem:
        raise InvalidArgument.field(field, problem)


async def _draft(store: FrameStore, ref: dataset_pb2.VersionRef) -> VersionHandle:
    version = await resolve_version(store, ref, "version")
    require_draft(version)
    return version


async def get_frame(store: FrameStore, ref: dataset_pb2.VersionRef, frame_id: str) -> bytes:
    """The frame as a Frame message's bytes, encoded by the frame codec from
    the stored revision (sent as they are: ``ErrorMappingInterceptor``)."""
    _checked_frame_id(frame_id, "frame_id")
    version_id = plain_version_id(ref)
    if version_id is not None:
        # The common case, a version by id: version and frame in one round trip.
        found = await find_version_with_revision(store, version_id, frame_id)
        if found is None:
            raise NotFound("version", version_id, field="version.id")
        version, doc = found
    else:
        version = await resolve_version(store, ref, "version")
        doc = (await find_visible_revisions(store, version, [frame_id], fields=None)).get(frame_id)
    if doc is None:
        raise NotFound("frame", frame_id, field="frame_id")
    return encoded_frame(doc, version_id=version.id)


# -- update -------------------------------------------------------------------


@dataclass(frozen=True)
class MaskPath:
    head: str  # one of MASKABLE_FIELDS
    meta_keys: tuple[str, ...] = ()  # for `meta.<a>.<b>`


def checked_mask(paths: Sequence[str]) -> list[MaskPath]:
    """The update mask's paths; INVALID_ARGUMENT naming `update_mask.paths[i]`."""
    errors = FieldErrors()
    out: list[MaskPath] = []
    for i, path in enumerate(paths):
        head, dot, rest = path.partition(".")
        if head not in MASKABLE_FIELDS or (dot and head != "meta"):
            errors.add(f"update_mask.paths[{i}]",
                       f"unknown path {path!r}; allowed: {', '.join(MASKABLE_FIELDS)}, meta.<key path>")
            continue
        keys, problem = split_key_path(rest) if dot else ((), None)
        if problem:
            errors.add(f"update_mask.paths[{i}]", f"bad metadata key path {path!r}: {problem}")
            continue
        out.append(MaskPath(head, keys))
    errors.raise_if_any()
    return out


def apply_mask(current: frame_pb2.Frame, given: frame_pb2.Frame, mask: Sequence[MaskPath]) -> frame_pb2.Frame:
    """``current`` with the fields named by ``mask`` taken from ``given``.

    ``meta.<a>.<b>`` sets that entry to its value in ``given.meta`` and removes
    it when ``given`` lacks it (AIP-134), creating intermediate maps as needed.
    """
    merged = frame_pb2.Frame()
    merged.CopyFrom(current)
    meta: dict[str, Any] | None = None
    for path in mask:
        if path.head == "meta":
            if not path.meta_keys:
                meta = metadata_to_dict(given.meta)
            else:
                meta = meta if meta is not None else metadata_to_dict(merged.meta)
                _set_meta_entry(meta, path.meta_keys, given.meta)
        elif path.head in ("sources", "rois"):
            merged.ClearField(path.head)  # type: ignore[arg-type]
            getattr(merged, path.head).extend(getattr(given, path.head))
        else:
            setattr(merged, path.head, getattr(given, path.head))
    if meta is not None:
        merged.meta.CopyFrom(dict_to_metadata(meta))
    return merged


def _set_meta_entry(meta: dict[str, Any], keys: tuple[str, ...], given: metadata_pb2.Metadata) -> None:
    node: metadata_pb2.Metadata | None = given
    for key in keys[:-1]:
        if node is None or key not in node.fields or node.fields[key].WhichOneof("kind") != "map_value":
            node = None
            break
        node = node.fields[key].map_value
    present = node is not None and keys[-1] in node.fields
    target = meta
    for key in keys[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            if not present:
                return
            child = target[key] = {}
        target = child
    if present:
        assert node is not None
        target[keys[-1]] = value_to_python(node.fields[keys[-1]])
    else:
        target.pop(keys[-1], None)


class _ChangedMeanwhile(Exception):
    """The frame changed between the read the update is based on and its write."""


class _EtagMismatch(Exception):
    """The caller's etag is not the frame's current one."""


async def update_frame(store: FrameStore, blobs: BlobGateway, settings: Settings,
                       request: metadata_service_pb2.UpdateFrameRequest) -> frame_pb2.Frame:
    frame_id = request.frame.id
    if not frame_id:
        raise InvalidArgument.field("frame.id", "required: names the frame to update")
    _checked_frame_id(frame_id, "frame.id")
    mask = checked_mask(request.update_mask.paths)
    version = await _draft(store, request.version)
    limits = FrameLimits.from_settings(settings)
    # Stored sources were checked when written; only new ones need the blob service.
    touches_sources = not mask or any(path.head == "sources" for path in mask)

    async def attempt() -> frame_pb2.Frame:
        base = (await find_visible_revisions(store, version, [frame_id], fields=None)).get(frame_id)
        if base is None:
            raise NotFound("frame", frame_id, field="frame.id")
        if request.etag and request.etag != base["etag"]:
            raise _EtagMismatch()
        given = frame_pb2.Frame()
        given.CopyFrom(request.frame)
        if mask:
            merged = apply_mask(document_to_frame(base, version_id=version.id), given, mask)
        else:
            merged = given
        prepared = prepare_frame(merged, "frame", limits)
        if touches_sources:
            await settle_blobs(blobs, prepared)
        doc = prepared.document(dataset_id=version.dataset_id, version_id=version.id, saved_ms=now_ms())
        try:
            async with write_lease(store, version) as lease, store.transaction() as session:
                now = (await find_visible_revisions(store, version, [frame_id], session=session)).get(frame_id)
                if now is None or now["etag"] != base["etag"]:
                    raise _ChangedMeanwhile()
                written = await write_revisions(store, session, lease, [doc])
        except TooLargeToStore as exc:
            raise prepared.too_large_to_store("frame", exc) from exc
        # Unchanged content is not written again: the stored revision answers.
        return document_to_frame(base if written == [Written.UNCHANGED] else doc.as_dict(), version_id=version.id)

    async def settled() -> frame_pb2.Frame:
        try:
            return await attempt()
        except _ChangedMeanwhile:
            # Reported as a conflict so the retry below re-reads and re-merges.
            raise Aborted(f"frame {frame_id!r} changed during the update", retry_after_ms=50) from None

    try:
        return await with_retries(settled, settings)
    except _EtagMismatch:
        # Final, unlike a conflict: the caller must re-read the frame.
        raise Aborted(f"frame {frame_id!r} changed: etag {request.etag!r} is not the current one",
                      reason="ETAG_MISMATCH") from None


# -- delete, count, list --------------------------------------------------------


async def delete_frames(store: FrameStore, settings: Settings, request: metadata_service_pb2.DeleteFramesRequest
                        ) -> metadata_service_pb2.DeleteFramesResponse:
    errors = FieldErrors()
    ids = list(request.frame_ids)
    if not 1 <= len(ids) <= MAX_DELETE_IDS:
        errors.add("frame_ids", f"give 1..{MAX_DELETE_IDS} frame ids")
    for i, frame_id in enumerate(ids[:MAX_DELETE_IDS]):
        problem = frame_id_problem(frame_id)
        if problem:
            errors.add(f"frame_ids[{i}]", problem)
    errors.raise_if_any()
    version = await _draft(store, request.version)

    async def attempt() -> set[str]:
        async with write_lease(store, version) as lease, store.transaction() as session:
            return await delete_revisions(store, session, lease, ids)

    deleted = await with_retries(attempt, settings)
    statuses = [
        metadata_service_pb2.FrameStatus(
            frame_id=frame_id,
            status=ok_status() if frame_id in deleted else NotFound("frame", frame_id).to_status(),
        )
        for frame_id in ids
    ]
    return metadata_service_pb2.DeleteFramesResponse(statuses=statuses, deleted_count=len(deleted))


async def count_frames(store: FrameStore, ref: dataset_pb2.VersionRef) -> int:
    """The version's exact frame count (a draft's includes its write leases)."""
    doc = await resolve_version_document(store, ref, "version")
    await live_frame_counts(store, [doc])
    return int(doc.get("frame_count", 0))


async def list_frames(store: FrameStore, settings: Settings, request: metadata_service_pb2.ListFramesRequest
                      ) -> metadata_service_pb2.ListFramesResponse:
    """One page in sequential order (context id, timestamp, frame id), cut
    short at the page byte budget; the token is the last key of the page,
    bound to the version."""
    errors = FieldErrors()
    page_size = page_tokens.check_page_size(request.page_size, "page_size", errors)
    errors.raise_if_any()
    version = await resolve_version(store, request.version, "version")
    tokens = page_tokens.PageTokens.from_settings(settings)
    token_scope = page_tokens.query_digest("frames", version.id)
    after = None
    if request.page_token:
        context_id, timestamp, frame_id = tokens.decode(
            request.page_token, token_scope, (page_tokens.as_text, page_tokens.as_int64, page_tokens.as_text))
        after = (context_id, timestamp, frame_id)
    frames, token = await page_tokens.collect_page(
        store.sequential_page(version, after, page_size + 1), page_size, lambda doc: document_to_frame(doc, version_id=version.id),
        lambda last: tokens.encode([last["context_id"], int(last["timestamp"]), last["frame_id"]], token_scope))
    return metadata_service_pb2.ListFramesResponse(frames=frames, next_page_token=token)


# -- referenced blobs -------------------------------------------------------------


async def referenced_blobs(store: FrameStore, batch_size: int
                           ) -> AsyncIterator[metadata_service_pb2.ListReferencedBlobsResponse]:
    if batch_size == 0:
        batch_size = DEFAULT_REFERENCE_BATCH
    if not 1 <= batch_size <= MAX_REFERENCE_BATCH:
        raise InvalidArgument.field("batch_size", f"must be in 1..{MAX_REFERENCE_BATCH} (0 means the default)")
    seen = 0
    digests: list[blob_pb2.Digest] = []
    async for uri, references in store.referenced_uris(batch_size):
        seen += references
        digest = stored_blob_digest(uri)
        if digest is None:
            continue  # names no blob a collector could keep
        digests.append(digest_to_proto(digest))
        if len(digests) >= batch_size:
            yield metadata_service_pb2.ListReferencedBlobsResponse(digests=digests, references_seen=seen)
            digests = []
    if digests:
        yield metadata_service_pb2.ListReferencedBlobsResponse(digests=digests, references_seen=seen)
