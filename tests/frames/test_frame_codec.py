"""The frame codec (services/codec): the revision document it encodes, byte
for byte, the etag it computes, and the exact violations of frames whose
characters the rules classify as Python's ``re`` and ``repr`` do."""

from __future__ import annotations

import bson
import pytest
from bson import Int64

from framevault.api.digests import digest_of
from framevault.api.metadata_values import dict_to_metadata
from framevault.common.errors import TooLargeToStore
from framevault.metadata.frame_documents import shuffle_key
from framevault.metadata.frames.validation import FrameLimits, PreparedFrame, check_frame, derive_frame_id
from framevault.v1 import frame_pb2

LIMITS = FrameLimits(max_inline_bytes=1024)


def realistic_frame() -> frame_pb2.Frame:
    return frame_pb2.Frame(
        id="f-1", context_id="drive-7", timestamp=66, num_frames=3, etag="given", saved=9,
        sources=[frame_pb2.Source(
            id="front", uri="s3://bucket/a.jpg", content_type="image/jpeg", width=640, height=480, timestamp=5,
            meta=dict_to_metadata({"exposure": 0.5}),
            preview=frame_pb2.Preview(uri="s3://bucket/a_p.jpg", content_type="image/jpeg"),
            masks=[frame_pb2.Mask(id="semantic", uri="s3://bucket/a_m.png", content_type="image/png")])],
        rois=[frame_pb2.Roi(id="t1", labels=["car", "red"], confidence=0.75, label_ids=[4, 5],
                            polygon=frame_pb2.Polygon2D(parts=[frame_pb2.PolygonPart(xy=[1, 2, 3, 4, 5.5, 6])]),
                            sources=["front"], meta=dict_to_metadata({"occluded": True})),
              frame_pb2.Roi(labels=["sky"], box=frame_pb2.Box2D(x=-0.0, y=0, w=3, h=4)),
              frame_pb2.Roi(labels=["p"], keypoints=frame_pb2.Keypoints2D(xy=[1, 2], visibility=[2])),
              frame_pb2.Roi(labels=["q"], mask=frame_pb2.RoiMaskLink(id="m", value=[1, 2, 3]))],
        meta=dict_to_metadata({"city": "bremen", "n": 7, "big": 2**40, "x": 0.25, "none": None, "tags": ["a", 1],
                               "nested": {"k": False}}),
        blob=b"\x00\x01")


# The etag of realistic_frame's content as the service has always stored it
# (the first 32 hex characters of the SHA-256 of the deterministic protobuf
# encoding): a resend of content stored before is UNCHANGED.
REALISTIC_ETAG = "c7296819606d2187703e6b4acdcd5da4"

# The stored layout (STORAGE.md), in field order, with the BSON types readers
# rely on: int64 times and shuffle key, int32 for small integers, doubles for
# coordinates; metadata members in key order.
REALISTIC_DOCUMENT = {
    "dataset_id": "ds", "version_id": "v1", "frame_id": "f-1", "context_id": "drive-7", "timestamp": Int64(66),
    "sources": [{"id": "front", "uri": "s3://bucket/a.jpg", "content_type": "image/jpeg", "width": 640, "height": 480,
                 "timestamp": Int64(5), "meta": {"exposure": 0.5},
                 "preview": {"uri": "s3://bucket/a_p.jpg", "content_type": "image/jpeg"},
                 "masks": [{"id": "semantic", "uri": "s3://bucket/a_m.png", "content_type": "image/png"}]}],
    "num_frames": 1, "saved": Int64(1_700_000_000_000), "etag": REALISTIC_ETAG,
    "shuffle_key": Int64(2231502223867660077),
    "rois": [{"labels": ["car", "red"], "id": "t1", "confidence": 0.75, "polygon": [[1.0, 2.0, 3.0, 4.0, 5.5, 6.0]],
              "sources": ["front"], "meta": {"occluded": True}},
             {"labels": ["sky"], "box": [-0.0, 0.0, 3.0, 4.0]},
             {"labels": ["p"], "keypoints": [1.0, 2.0], "visibility": [2]},
             {"labels": ["q"], "mask": {"id": "m", "value": [1, 2, 3]}}],
    "meta": {"big": Int64(2**40), "city": "bremen", "n": 7, "nested": {"k": False}, "none": None, "tags": ["a", 1],
             "x": 0.25},
    "blob": b"\x00\x01",
}


def prepared(frame: frame_pb2.Frame) -> PreparedFrame:
    check = check_frame(frame, "frame", LIMITS)
    assert check.violations == [] and check.prepared is not None
    return check.prepared


def test_the_document_is_the_stored_layout_byte_for_byte():
    document = prepared(realistic_frame()).document(dataset_id="ds", version_id="v1", saved_ms=1_700_000_000_000)
    assert document.raw == bson.encode(REALISTIC_DOCUMENT)
    # The write rules read these without decoding the document.
    assert (document["frame_id"], document["etag"]) == ("f-1", REALISTIC_ETAG)
    assert document.written_for("ds", "v1") and not document.written_for("ds", "v2")


def test_the_version_and_saved_time_are_those_of_the_write():
    frame = prepared(realistic_frame())
    first = bson.decode(frame.document(dataset_id="a", version_id="b", saved_ms=1).raw)
    again = bson.decode(frame.document(dataset_id="dataset-2", version_id="version-22", saved_ms=2**41).raw)
    assert (first["dataset_id"], first["version_id"], first["saved"]) == ("a", "b", 1)
    assert (again["dataset_id"], again["version_id"], again["saved"]) == ("dataset-2", "version-22", 2**41)
    assert {k: v for k, v in first.items() if k not in ("dataset_id", "version_id", "saved")} == {
        k: v for k, v in again.items() if k not in ("dataset_id", "version_id", "saved")}


def test_the_etag_ignores_output_only_fields_and_keeps_a_negative_zero():
    assert prepared(realistic_frame()).etag == REALISTIC_ETAG
    source = frame_pb2.Source(uri="s3://b/k")
    negative = frame_pb2.Frame(id="z", sources=[source], rois=[frame_pb2.Roi(box=frame_pb2.Box2D(x=-0.0, w=1, h=1))])
    positive = frame_pb2.Frame(id="z", sources=[source], rois=[frame_pb2.Roi(box=frame_pb2.Box2D(x=0.0, w=1, h=1))])
    # -0.0 is content (stored as -0.0), so it has an etag of its own. Both
    # etags are those the service has always given these frames.
    assert prepared(negative).etag == "357c89415aa2943ddd57e2f70854f4fc"
    assert prepared(positive).etag == "84739fa5524162389dc3d3aa28d71061"


def test_normalisation_shows_in_the_document():
    data = b"pixels"
    frame = frame_pb2.Frame(sources=[frame_pb2.Source(inline_content=data)], num_frames=4, version_id="x")
    ready = prepared(frame)
    document = bson.decode(ready.document(dataset_id="d", version_id="v", saved_ms=0).raw)
    uri = digest_of(data).uri
    assert document["frame_id"] == ready.frame_id == derive_frame_id(uri)
    assert document["context_id"] == uri
    assert document["sources"] == [{"id": "default", "uri": uri}]
    assert (document["num_frames"], document["version_id"]) == (1, "v")
    assert document["shuffle_key"] == shuffle_key(ready.frame_id)
    assert ready.inline_blobs == {digest_of(data): data}


def test_the_largest_part_is_named_when_a_frame_is_too_large_to_store():
    frame = frame_pb2.Frame(id="a", sources=[frame_pb2.Source(uri="s3://b/k")],
                            rois=[frame_pb2.Roi(labels=["x" * 200])])
    error = prepared(frame).too_large_to_store("frames[2]", TooLargeToStore("over 16 MiB"))
    assert [v.field for v in error.violations] == ["frames[2].rois"]


def bad(**fields: object) -> frame_pb2.Frame:
    fields.setdefault("sources", [frame_pb2.Source(uri="s3://bucket/a.jpg")])
    return frame_pb2.Frame(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("frame, violations", [
    # Quoted as Python's repr quotes them.
    (bad(sources=[frame_pb2.Source(id="it's", uri="s3://b/1"), frame_pb2.Source(id="it's", uri="s3://b/2")]),
     [("f.sources[1].id", "duplicate source id \"it's\" (an empty id means 'default')")]),
    (bad(rois=[frame_pb2.Roi(labels=["a"], sources=["tab\there"])]),
     [("f.rois[0].sources[0]", "names no source of the frame ('tab\\there')")]),
    (bad(sources=[frame_pb2.Source(uri="s3://b/1", masks=[frame_pb2.Mask(uri="s3://b/m"),
                                                            frame_pb2.Mask(uri="s3://b/n")])]),
     [("f.sources[0].masks[1].id", "duplicate mask id '' within the source")]),
    # Python's whitespace: information separators and Unicode spaces, not U+180E.
    (bad(sources=[frame_pb2.Source(uri="s3://b/a\x1cb")]),
     [("f.sources[0].uri", "must not contain NUL or whitespace")]),
    (bad(sources=[frame_pb2.Source(uri="s3://b/a\u2003b")]),
     [("f.sources[0].uri", "must not contain NUL or whitespace")]),
    (bad(sources=[frame_pb2.Source(uri="s3://b/a\u180eb")]), []),
    (bad(sources=[frame_pb2.Source(uri="S3://bucket/a")]), []),
    (bad(sources=[frame_pb2.Source(uri="HTTPS:/h")]), [("f.sources[0].uri", "must have the form https://...")]),
    (bad(sources=[frame_pb2.Source(uri="blob:sha256/" + "a" * 64 + "/007")]),
     [("f.sources[0].uri", "blob URI must be blob:sha256/<sha256 hex>/<size in decimal, no leading zeros>")]),
    (bad(sources=[frame_pb2.Source(uri="blob:sha256/" + "a" * 64 + "/" + "9" * 30)]),
     [("f.sources[0].uri", "blob size must be at most 9223372036854775807 bytes")]),
    # MIME types: \w is Python's (letters and digits of any script, no marks).
    (bad(sources=[frame_pb2.Source(uri="s3://b/1", content_type="image/jpég")]), []),
    (bad(sources=[frame_pb2.Source(uri="s3://b/1", content_type="image/٣d")]), []),
    (bad(sources=[frame_pb2.Source(uri="s3://b/1", content_type="image/je\u0301")]),
     [("f.sources[0].content_type", "must be a MIME type such as image/jpeg")]),
    (bad(sources=[frame_pb2.Source(uri="s3://b/1", content_type="image/\u24d1")]),
     [("f.sources[0].content_type", "must be a MIME type such as image/jpeg")]),
    (bad(sources=[frame_pb2.Source(uri="s3://b/1", content_type="text/plain\u2003; charset=utf-8")]), []),
    (bad(sources=[frame_pb2.Source(uri="s3://b/1", content_type="text/plain;\nx")]),
     [("f.sources[0].content_type", "must be a MIME type such as image/jpeg")]),
    (bad(sources=[frame_pb2.Source(uri="s3://b/1", content_type="é/plain")]),
     [("f.sources[0].content_type", "must be a MIME type such as image/jpeg")]),
    # Bytes, not characters, count.
    (bad(id="é" * 257), [("f.id", "must be at most 512 bytes")]),
    (bad(meta=dict_to_metadata({"ü" * 129: 1})), [("f.meta." + "ü" * 129, "keys must be at most 256 bytes")]),
])
def test_violations_are_exact(frame: frame_pb2.Frame, violations: list[tuple[str, str]]):
    found = [(v.field, v.description) for v in check_frame(frame, "f", LIMITS).violations]
    assert found == violations


def test_bytes_that_are_no_frame_are_a_violation_of_the_prefix():
    check = check_frame(b"\x0a\xff", "frames[4]", LIMITS)
    assert check.prepared is None
    assert [v.field for v in check.violations] == ["frames[4]"]
