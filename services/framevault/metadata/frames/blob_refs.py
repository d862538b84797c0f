"""What frames need from the blob service before they are written: inline
bytes stored, and every ``blob:`` reference present."""

from __future__ import annotations

from collections.abc import Sequence

from framevault.api.digests import BlobDigest
from framevault.common.errors import FailedPrecondition, Internal, PreconditionViolation
from framevault.metadata.blobs import BlobGateway
from framevault.metadata.frames.validation import PreparedFrame


async def store_inline_blobs(blobs: BlobGateway, prepared: PreparedFrame) -> None:
    """Stores the frame's inline bytes; each is forgotten once stored, so a
    retry stores only what is left and the bytes are released early."""
    inline = prepared.inline_blobs
    for digest in list(inline):
        stored = await blobs.store(inline[digest])
        if stored != digest:
            raise Internal(f"blob service stored inline bytes as {stored}, expected {digest}")
        del inline[digest]


def missing_blobs_error(absent: Sequence[BlobDigest]) -> FailedPrecondition:
    """FAILED_PRECONDITION listing each missing digest (type MISSING_BLOB,
    subject ``sha256/{hash}/{size}``)."""
    shown = ", ".join(str(d) for d in absent[:3]) + (f" and {len(absent) - 3} more" if len(absent) > 3 else "")
    return FailedPrecondition(
        f"referenced blobs are missing in the blob service: {shown}",
        [PreconditionViolation("MISSING_BLOB", str(d), f"upload {d.uri} before the frame") for d in absent],
        reason="MISSING_BLOB",
    )


async def settle_blobs(blobs: BlobGateway, prepared: PreparedFrame) -> None:
    """Stores inline bytes and checks references of one frame; raises
    FailedPrecondition for missing blobs, Unavailable when the blob service
    cannot be reached."""
    await store_inline_blobs(blobs, prepared)
    if prepared.referenced_blobs:
        missing = await blobs.find_missing(list(prepared.referenced_blobs))
        absent = [d for d in prepared.referenced_blobs if d in missing]
        if absent:
            raise missing_blobs_error(absent)
