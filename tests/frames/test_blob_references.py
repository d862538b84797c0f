"""``blob:`` references in uploaded frames: each size has one spelling, and a
frame with a bad reference fails alone, with the field named."""

from __future__ import annotations

import uuid

import grpc
import pytest
from support import frame_to_document

from framevault.common.digests import parse_blob_uri
from framevault.common.errors import InvalidArgument
from framevault.metadata.db import Database
from framevault.sdk.blobs import parse_digest
from framevault.v1 import frame_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import CREATED, FAILED, bad_fields, code_of, count_frames, image_frame, items, new_draft, upload

pytestmark = pytest.mark.usefixtures("frames_db")

HASH = "ab" * 32
# Sizes that are not the canonical spelling of a size a blob can have.
NON_CANONICAL_SIZES = [
    "99999999999999999999",  # beyond int64
    "9223372036854775808",  # int64 max + 1
    "²",  # passes str.isdigit, not int()
    "٣",  # Arabic-Indic three: int() reads 3
    "３",  # fullwidth three
    "03",  # leading zero: a second spelling of 3
    "+3",
    " 3",
    "",
]


@pytest.mark.parametrize("size", NON_CANONICAL_SIZES)
def test_only_canonical_ascii_sizes_parse(size: str):
    with pytest.raises(InvalidArgument) as caught:
        parse_blob_uri(f"blob:sha256/{HASH}/{size}", "frames[0].sources[0].uri")
    assert [v.field for v in caught.value.violations] == ["frames[0].sources[0].uri"]


def test_canonical_sizes_parse_up_to_the_limit():
    assert parse_blob_uri(f"blob:sha256/{HASH}/0", "uri").size == 0
    assert parse_blob_uri(f"blob:sha256/{HASH}/9223372036854775807", "uri").size == 2**63 - 1
    assert parse_blob_uri(f"blob:sha256/{HASH}/1024", "uri", max_size=1024).size == 1024
    with pytest.raises(InvalidArgument):
        parse_blob_uri(f"blob:sha256/{HASH}/1025", "uri", max_size=1024)


def blob_frame(frame_id: str, size: str) -> frame_pb2.Frame:
    return frame_pb2.Frame(id=frame_id, sources=[frame_pb2.Source(uri=f"blob:sha256/{HASH}/{size}")])


@pytest.mark.parametrize("size", [*NON_CANONICAL_SIZES[:5], "6000000000000"])  # the last: above the max blob size
async def test_a_bad_blob_size_fails_only_its_frame(metadata_stub, frames_db: Database, size: str):
    version = await new_draft(metadata_stub)
    frames = [image_frame("before"), blob_frame("bad", size), image_frame("after")]
    run = await upload(metadata_stub, version.id, items(frames), per_message=3)
    assert run.summary is not None, "the stream ended early"
    assert run.outcomes() == [CREATED, FAILED, CREATED]
    assert code_of(run.results[1].error) == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(run.results[1].error) == ["frames[1].sources[0].uri"]
    assert await count_frames(metadata_stub, version.id) == 2


@pytest.mark.parametrize("size", NON_CANONICAL_SIZES)
def test_the_sdk_reads_digests_with_the_same_parser(size: str):
    for form in (f"blob:sha256/{HASH}/3", f"sha256/{HASH}/3", f"{HASH}/3", f"{HASH}:3"):
        assert parse_digest(form).size == 3
    with pytest.raises(ValueError):
        parse_digest(f"blob:sha256/{HASH}/{size}")


async def test_blobs_named_by_sizes_stored_before_they_were_canonical_stay_referenced(
        metadata_stub, frames_db: Database):
    version = await new_draft(metadata_stub)
    legacy_hash = uuid.uuid4().hex * 2
    document = frame_to_document(image_frame("legacy"), dataset_id=version.dataset_id, version_id=version.id,
                                 saved_ms=0)
    document["sources"][0]["uri"] = f"blob:sha256/{legacy_hash}/٣"  # accepted by earlier releases
    await frames_db.frames.insert_one(document)
    referenced = {(d.hash, d.size_bytes)
                  async for response in metadata_stub.ListReferencedBlobs(ms.ListReferencedBlobsRequest())
                  for d in response.digests}
    assert (legacy_hash, 3) in referenced
