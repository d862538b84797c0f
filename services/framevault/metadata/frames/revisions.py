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
``write_revisions`` / ``delete_revisions``.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Iterable, Sequence
from typing import Any

from pymongo import InsertOne, ReplaceOne

from framevault.metadata.db import FRAMES, Database
from framevault.metadata.frames.write_leases import WriteLease, claim
from framevault.metadata.lineage import VersionHandle, visible_expression, visible_filter

# What the write rules need to know of the visible revision of a frame.
RULE_FIELDS = {"_id": 1, "frame_id": 1, "version_id": 1, "etag": 1}


async def find_visible_revisions(
    db: Database,
    version: VersionHandle,
    frame_ids: Iterable[str],
    *,
    session: Any = None,
    fields: dict[str, int] | None = RULE_FIELDS,
) -> dict[str, dict[str, Any]]:
    """The revision of each frame id visible in ``version``, by frame id
    (absent ids have none), with ``fields`` (None: whole documents). One
    ``$in`` query on the ``frame_lineage`` index."""
    ids = list(dict.fromkeys(frame_ids))
    if not ids:
        return {}
    query = {**visible_filter(version), "frame_id": {"$in": ids} if len(ids) > 1 else ids[0]}
    cursor = db.frames.find(query, fields, session=session)
    return {doc["frame_id"]: doc async for doc in cursor}


async def find_version_with_revision(
    db: Database, version_id: str, frame_id: str
) -> tuple[VersionHandle, dict[str, Any] | None] | None:
    """The version ``version_id`` and the whole revision of ``frame_id``
    visible in it (None when it has none), in one round trip from one
    snapshot; None when the version does not exist. Same answer as
    resolving the version and then ``find_visible_revisions``."""
    pipeline: list[dict[str, Any]] = [
        {"$match": {"_id": version_id}},
        {"$project": {"dataset_id": 1, "name": 1, "status": 1, "lineage": 1}},
        # The equality on dataset_id and the frame id keep the lookup on the
        # frame_lineage index (one key per revision of the frame).
        {"$lookup": {
            "from": FRAMES,
            "localField": "dataset_id",
            "foreignField": "dataset_id",
            "let": {"lineage": "$lineage"},
            "pipeline": [
                {"$match": {"frame_id": frame_id, "$expr": visible_expression("$$lineage")}},
                # At most one revision per frame is visible (STORAGE.md).
                {"$limit": 1},
            ],
            "as": "visible",
        }},
    ]
    cursor = db.versions.aggregate(pipeline)
    # motor returns the cursor, PyMongo's async API a coroutine of it.
    if inspect.isawaitable(cursor):
        cursor = await cursor
    found = await cursor.to_list(length=1)
    if not found:
        return None
    version = found[0]
    visible = version.pop("visible")
    return VersionHandle.from_document(version), (visible[0] if visible else None)


class Written(enum.Enum):
    """What writing one frame did to its draft."""

    CREATED = "created"      # the frame was new in the version
    UPDATED = "updated"      # it replaced other content
    UNCHANGED = "unchanged"  # it had this content (equal etag); nothing written


async def write_revisions(
    db: Database, session: Any, lease: WriteLease, documents: Sequence[dict[str, Any]]
) -> list[Written]:
    """Upserts revision documents (``frame_documents.frame_to_document``, or
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
    visible = await find_visible_revisions(db, version, (d["frame_id"] for d in documents), session=session)
    last_position = {doc["frame_id"]: i for i, doc in enumerate(documents)}
    outcomes: list[Written] = []
    etag_before: dict[str, str] = {frame_id: revision["etag"] for frame_id, revision in visible.items()}
    operations: list[InsertOne[Any] | ReplaceOne[Any]] = []
    to_hide: list[Any] = []
    appeared = 0
    for i, doc in enumerate(documents):
        frame_id = doc["frame_id"]
        before = etag_before.get(frame_id)
        outcomes.append(Written.CREATED if before is None
                        else Written.UNCHANGED if before == doc["etag"] else Written.UPDATED)
        etag_before[frame_id] = doc["etag"]
        current = visible.get(frame_id)
        if last_position[frame_id] != i or (current is not None and current["etag"] == doc["etag"]):
            continue
        content = {k: v for k, v in doc.items() if k not in ("_id", "hidden_in")}
        content["dataset_id"], content["version_id"] = version.dataset_id, version.id
        if current is None:
            operations.append(InsertOne(content))
            appeared += 1
        elif current["version_id"] == version.id:
            operations.append(ReplaceOne({"_id": current["_id"]}, content))
        else:
            # Inherited: the ancestor's revision stays as it is for the
            # ancestor; only V stops seeing it.
            operations.append(InsertOne(content))
            to_hide.append(current["_id"])
    if operations:
        await db.frames.bulk_write(operations, ordered=True, session=session)
    if to_hide:
        await db.frames.update_many(
            {"_id": {"$in": to_hide}}, {"$addToSet": {"hidden_in": version.id}}, session=session
        )
    await claim(db, session, lease, appeared)
    return outcomes


async def delete_revisions(
    db: Database, session: Any, lease: WriteLease, frame_ids: Iterable[str]
) -> set[str]:
    """Removes frames from the draft ``lease`` is of; the ids that were
    visible (and are now gone). Revisions the draft wrote are deleted;
    inherited ones are hidden in it. Raises like ``write_revisions``."""
    version = lease.version
    visible = await find_visible_revisions(db, version, frame_ids, session=session)
    own = [r["_id"] for r in visible.values() if r["version_id"] == version.id]
    inherited = [r["_id"] for r in visible.values() if r["version_id"] != version.id]
    if own:
        await db.frames.delete_many({"_id": {"$in": own}}, session=session)
    if inherited:
        await db.frames.update_many(
            {"_id": {"$in": inherited}}, {"$addToSet": {"hidden_in": version.id}}, session=session
        )
    await claim(db, session, lease, -len(visible))
    return set(visible)
