"""Pure logic of the blob service: key layout, names, part sizes, hash checkpoints, upload state."""

from __future__ import annotations

import hashlib
import os

import pytest

from framevault.api.digests import BlobDigest, digest_of
from framevault.blob.hashing import CHECKPOINTS_SUPPORTED, Sha256
from framevault.blob.keys import cas_key, digest_of_cas_key, parse_upload_name, upload_name_of_state_key
from framevault.blob.storage import PartInfo
from framevault.blob.uploads import MAX_PARTS, MIN_PART_SIZE, CommittedPart, UploadState, upload_limits
from framevault.common.config import Settings
from framevault.common.errors import InvalidArgument

MIB = 1024 * 1024
UUID = "0b5f7a3e-8a43-4d55-9b5c-3f2d6f0e9a11"


def test_cas_keys_round_trip_and_reject_other_keys() -> None:
    digest = digest_of(b"hello")
    key = cas_key(digest)
    assert key == f"cas/sha256/{digest.hash[:2]}/{digest.hash}_5"
    assert digest_of_cas_key(key) == digest
    for other in (key + "x", key.replace("cas/", "cast/"), f"cas/sha256/zz/{digest.hash}_5",
                  f"cas/sha256/{digest.hash[:2]}/{digest.hash}_05", "uploads/x.json"):
        assert digest_of_cas_key(other) is None


def test_upload_names_parse_strictly() -> None:
    digest = digest_of(b"abc")
    name = parse_upload_name(f"uploads/{UUID}/blobs/{digest.hash}/3", max_size=10)
    assert name.digest == digest and name.upload_id == UUID
    assert upload_name_of_state_key(name.state_key) == name
    with pytest.raises(InvalidArgument) as too_big:
        parse_upload_name(f"uploads/{UUID}/blobs/{digest.hash}/11", max_size=10)
    assert too_big.value.violations[0].field == "resource_name"
    with pytest.raises(InvalidArgument):
        parse_upload_name(f"uploads/{UUID}/blobs/{digest.hash}/3\n", max_size=10)


def _limits(part: int, max_part: int, max_blob: int) -> tuple[int, int]:
    limits = upload_limits(Settings(s3_part_size_bytes=part, s3_max_part_size_bytes=max_part,
                                    blob_max_size_bytes=max_blob))
    return limits.part_size, limits.max_blob_size


def test_one_part_size_per_service_grows_with_the_maximum_blob_only_up_to_the_cap() -> None:
    assert upload_limits(Settings()).part_size == Settings().s3_part_size_bytes
    assert upload_limits(Settings()).max_blob_size == Settings().blob_max_size_bytes
    assert _limits(32 * MIB, 128 * MIB, 100 * MIB) == (32 * MIB, 100 * MIB)
    assert _limits(1 * MIB, 128 * MIB, 100 * MIB) == (MIN_PART_SIZE, 100 * MIB)
    # A maximum blob that needs more than 10,000 parts grows the part (in whole MiB)...
    part, max_blob = _limits(32 * MIB, 128 * MIB, 1024 * 1024 * MIB)
    assert part % MIB == 0 and 32 * MIB < part <= 128 * MIB and -(-max_blob // part) <= MAX_PARTS
    assert max_blob == 1024 * 1024 * MIB
    # ...but never past the cap: the largest blob shrinks to what 10,000 capped parts hold.
    assert _limits(32 * MIB, 128 * MIB, 5 * 1024 * 1024 * MIB) == (128 * MIB, 128 * MIB * MAX_PARTS)


@pytest.mark.skipif(not CHECKPOINTS_SUPPORTED, reason="libcrypto not loadable here")
def test_sha256_checkpoint_restores_exactly() -> None:
    first, second = os.urandom(3 * MIB + 17), os.urandom(MIB + 5)
    running = Sha256()
    running.update(first)
    checkpoint = running.checkpoint()
    assert checkpoint is not None
    assert running.hexdigest() == hashlib.sha256(first).hexdigest()
    restored = Sha256.restore(checkpoint)
    restored.update(memoryview(second))
    assert restored.hexdigest() == hashlib.sha256(first + second).hexdigest()
    with pytest.raises(ValueError):
        Sha256.restore(b"short")


def test_upload_state_round_trips_and_rejects_foreign_state() -> None:
    digest = BlobDigest("a" * 64, 100 * MIB)
    name = parse_upload_name(f"uploads/{UUID}/blobs/{digest.hash}/{digest.size}", max_size=digest.size)
    running = Sha256()
    checkpoints = []
    for _ in range(2):
        running.update(b"\x01" * MIB)
        checkpoints.append(running.checkpoint())
    state = UploadState(name=name, multipart_id="mp-1", part_size=32 * MIB,
                        parts=[CommittedPart(PartInfo(1, "etag1", 32 * MIB), checkpoints[0]),
                               CommittedPart(PartInfo(2, "etag2", 32 * MIB), checkpoints[1])])
    loaded = UploadState.from_json(name, state.to_json())
    assert loaded == state and loaded.committed_size == 64 * MIB
    assert [loaded.parts_ending_at(offset) for offset in (0, 32 * MIB, 64 * MIB, 16 * MIB, 96 * MIB)] == [
        0, 1, 2, None, None]
    other = parse_upload_name(f"uploads/{UUID}/blobs/{'b' * 64}/{digest.size}", max_size=digest.size)
    assert UploadState.from_json(other, state.to_json()) is None
    assert UploadState.from_json(name, b"{not json") is None
