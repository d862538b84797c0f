"""The write rules of frame revisions (STORAGE.md "Writing frame f into draft
V" and "Deleting f in V"), for many frames at once.

Every function here runs inside the caller's transaction (``session``) with a
write lease of the draft (``write_leases``) and ends by claiming it (last, so
a publish waits on the lease only for the moment before the commit): the
lease's frame count moves by exactly the number of frames that appeared or
disappeared, and a version published (or deleted) meanwhile makes the whole
transaction fail, so a frame never lands in a published version and the
count never drifts.

The upload stream, UpdateFrame and DeleteFrames write through
``write_revisions`` / ``delete_revisions``; the store
(``store.FrameStore``) carries out what they decide.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bson import ObjectId

from framevault.metadata.frame_documents import EncodedRevision
from framevault.metadata.frames.store import FrameStore, Revision, Session
from framevault.metadata.frames.write_leases import WriteLease, claim
from framevault.metadata.lineage import VersionHandle

# What the write rules need to know of the visible revision of a frame.
RULE_FIELDS = {"_id": 1, "frame_id": 1, "version_id": 1, "etag": 1}


async def find_visible_revisions(
    store: FrameStore,
    version: VersionHandle,
    frame_ids: Iterable[str],
    *,
    session: Session = None,
    fields: dict[str, int] | None = RULE_FIELDS,
) -> dict[str, Revision]:
    """The revision of each frame id visible in ``version``, by frame id
    (absent ids have none), with ``fields`` (None: whole documents)."""
    ids = list(dict.fromkeys(frame_ids))
    if not ids:
        return {}
    return await store.visible_revisions(version, ids, fields, session)


async def find_version_with_revision(
    store: FrameStore, version_id: str, frame_id: str
) -> tuple[VersionHandle, Mapping[str, Any] | None] | None:
    """The version ``version_id`` and the whole revision of ``frame_id``
    visible in it (None when it has none), in one round trip; None when the
    version does not exist. Same answer as resolving the version and then
    ``find_visible_revisions``, except that the version's name and status may
    be stale (``known_versions``) and the revision is read-only (it may be
    kept as its BSON, for sending).

    A version read recently is not read again: the revision is then one
    query on the frames. A frame not found that way is looked up again with
    the version, so that NOT_FOUND says exactly what is missing."""
    known = store.known_versions.readable(version_id)
    if known is not None:
        stored = await store.stored_revision(known, frame_id)
        if stored is not None:
            return known, stored
    with_version = await store.version_with_revision(version_id, frame_id)
    if with_version is None:
        store.known_versions.forget(version_id)
    else:
        store.known_versions.remember(with_version[0])
    return with_version


class Written(enum.Enum):
    """What writing one frame did to its draft."""

    CREATED = "created"      # the frame was new in the version
    UPDATED = "updated"      # it replaced other content
    UNCHANGED = "unchanged"  # it had this content (equal etag); nothing written


CREATED, UPDATED, UNCHANGED = Written.CREATED, Written.UPDATED, Written.UNCHANGED


async def write_revisions(
    store: FrameStore, session: Session, lease: WriteLease, documents: Sequence[Revision | EncodedRevision]
) -> list[Written]:
    """Upserts revision documents (the frame codec's, ``validation.PreparedFrame.document``, or
    revisions read from another version: their ``_id``, ``hidden_in``,
    ``dataset_id`` and ``version_id`` are replaced) into draft ``version``;
    for each document, what writing it did.

    Several documents of one frame id are applied in order: each reports
    against the content before it (the visible revision or the previous
    document of the id); only the last one is stored, and only when its
    content differs from the visible revision's, so a resend of what is
    stored writes nothing. ``documents`` are not modified. Raises
    FailedPrecondition (published) or NotFound (deleted) through the lease.
    """
    version = lease.version
    # (frame id, etag) of each document; the codec's are known without decoding it.
    keys = [(doc.frame_id, doc.etag) if type(doc) is EncodedRevision else (doc["frame_id"], doc["etag"])
            for doc in documents]
    visible = await find_visible_revisions(store, version, (frame_id for frame_id, _ in keys), session=session)
    last_position = {frame_id: i for i, (frame_id, _) in enumerate(keys)}
    outcomes: list[Written] = []
    etag_before: dict[str, str] = {frame_id: revision["etag"] for frame_id, revision in visible.items()}
    inserts: list[Revision] = []
    replacements: list[tuple[ObjectId, Revision]] = []
    to_hide: list[Any] = []
    appeared = 0
    for i, (doc, (frame_id, etag)) in enumerate(zip(documents, keys, strict=True)):
        before = etag_before.get(frame_id)
        outcomes.append(CREATED if before is None else UNCHANGED if before == etag else UPDATED)
        etag_before[frame_id] = etag
        current = visible.get(frame_id)
        if last_position[frame_id] != i or (current is not None and current["etag"] == etag):
            continue
        content: Any
        if isinstance(doc, EncodedRevision) and doc.written_for(version.dataset_id, version.id):
            # The frame codec's document of this draft: the driver sends its bytes as they are.
            content = doc
        else:
            content = {k: v for k, v in doc.items() if k not in ("_id", "hidden_in")}
            content["dataset_id"], content["version_id"] = version.dataset_id, version.id
        if current is None:
            inserts.append(content)
            appeared += 1
        elif current["version_id"] == version.id:
            replacements.append((current["_id"], content))
        else:
            # Inherited: the ancestor's revision stays as it is for the
            # ancestor; only V stops seeing it.
            inserts.append(content)
            to_hide.append(current["_id"])
    await store.write_revisions(session, version.id, inserts, replacements, to_hide)
    await claim(store, session, lease, appeared)
    return outcomes


async def delete_revisions(
    store: FrameStore, session: Session, lease: WriteLease, frame_ids: Iterable[str]
) -> set[str]:
    """Removes frames from the draft ``lease`` is of; the ids that were
    visible (and are now gone). Revisions the draft wrote are deleted;
    inherited ones are hidden in it. Raises like ``write_revisions``."""
    version = lease.version
    visible = await find_visible_revisions(store, version, frame_ids, session=session)
    own = [r["_id"] for r in visible.values() if r["version_id"] == version.id]
    inherited = [r["_id"] for r in visible.values() if r["version_id"] != version.id]
    await store.remove_revisions(session, version.id, own, inherited)
    await claim(store, session, lease, -len(visible))
    return set(visible)
