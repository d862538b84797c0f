"""Pure logic of the blob service: key layout, names, part sizes, hash checkpoints, upload state."""

from __future__ import annotations

import hashlib
import os

import pytest

from framevault.blob.hashing import CHECKPOINTS_SUPPORTED, Sha256
from framevault.blob.keys import cas_key, digest_of_cas_key, parse_upload_name, upload_name_of_state_key
from framevault.blob.storage import PartInfo
from framevault.blob.uploads import MAX_PARTS, MIN_PART_SIZE, UploadState, part_size_for
from framevault.common.digests import BlobDigest, digest_of
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


def test_part_size_grows_only_when_parts_would_run_out() -> None:
    assert part_size_for(100 * MIB, 32 * MIB) == 32 * MIB
    assert part_size_for(100 * MIB, 1 * MIB) == MIN_PART_SIZE
    huge = 5 * 1024 * 1024 * MIB
    size = part_size_for(huge, 32 * MIB)
    assert size % MIB == 0 and -(-huge // size) <= MAX_PARTS


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
    state = UploadState(name=name, multipart_id="mp-1", part_size=32 * MIB,
                        parts=[PartInfo(1, "etag1", 32 * MIB), PartInfo(2, "etag2", 32 * MIB)],
                        sha256_checkpoint=b"\x01" * 112)
    loaded = UploadState.from_json(name, state.to_json())
    assert loaded == state and loaded.committed_size == 64 * MIB
    other = parse_upload_name(f"uploads/{UUID}/blobs/{'b' * 64}/{digest.size}", max_size=digest.size)
    assert UploadState.from_json(other, state.to_json()) is None
    assert UploadState.from_json(name, b"{not json") is None
