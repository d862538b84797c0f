"""Frame validation and normalisation: pure, no services."""

from __future__ import annotations

import math
from typing import Any

import bson
import pytest

from framevault.api.digests import digest_of
from framevault.metadata.frames.validation import (
    DERIVED_ID_HEX_CHARS,
    MAX_FRAME_BLOB_BYTES,
    FrameCheck,
    FrameLimits,
    check_frame,
    derive_frame_id,
)
from framevault.v1 import frame_pb2, metadata_pb2

LIMITS = FrameLimits(max_inline_bytes=1024)
BLOB = "blob:sha256/" + "ab" * 32 + "/10"


def frame(**kw: object) -> frame_pb2.Frame:
    kw.setdefault("sources", [frame_pb2.Source(uri="s3://bucket/a.jpg")])
    return frame_pb2.Frame(**kw)  # type: ignore[arg-type]


def fields_of(f: frame_pb2.Frame, prefix: str = "frames[17]") -> list[str]:
    return [v.field for v in check_frame(f, prefix, LIMITS).violations]


def stored(check: FrameCheck) -> dict[str, Any]:
    """The revision document of a valid frame's check."""
    assert check.violations == [] and check.prepared is not None
    return bson.decode(check.prepared.document(dataset_id="d", version_id="v", saved_ms=1).raw)


def test_a_minimal_frame_is_normalised():
    check = check_frame(frame(num_frames=9, saved=5, etag="x", version_id="v0"), "frames[0]", LIMITS)
    document = stored(check)
    assert document["frame_id"] == derive_frame_id("s3://bucket/a.jpg") == check.frame_id
    assert len(check.frame_id) == DERIVED_ID_HEX_CHARS
    assert document["context_id"] == "s3://bucket/a.jpg"
    assert document["sources"][0]["id"] == "default"
    # Output-only fields are the service's: the etag is computed, not the caller's.
    assert (document["num_frames"], document["saved"], document["version_id"]) == (1, 1, "v")
    assert document["etag"] != "x"


def test_derived_id_is_stable_and_depends_on_the_first_uri_only():
    a = frame(sources=[frame_pb2.Source(id="l", uri="https://h/x.png"), frame_pb2.Source(id="r", uri="file:///1")])
    b = frame(sources=[frame_pb2.Source(id="l", uri="https://h/x.png"), frame_pb2.Source(id="r", uri="file:///2")])
    assert check_frame(a, "f", LIMITS).frame_id == check_frame(b, "f", LIMITS).frame_id
    assert check_frame(frame(id="mine"), "f", LIMITS).frame_id == "mine"


def test_inline_bytes_become_their_blob_uri():
    data = b"pixels"
    f = frame(sources=[frame_pb2.Source(inline_content=data, preview=frame_pb2.Preview(inline_content=b"thumb"))])
    check = check_frame(f, "f", LIMITS)
    document = stored(check)
    assert document["sources"][0]["uri"] == digest_of(data).uri
    assert "inline_content" not in document["sources"][0]
    assert check.frame_id == derive_frame_id(digest_of(data).uri)
    assert check.prepared is not None
    assert set(check.prepared.inline_blobs) == {digest_of(data), digest_of(b"thumb")}
    assert check.prepared.referenced_blobs == ()


def test_blob_references_are_collected_once():
    f = frame(sources=[frame_pb2.Source(id="a", uri=BLOB, masks=[frame_pb2.Mask(id="m", uri=BLOB)])])
    check = check_frame(f, "f", LIMITS)
    assert check.prepared is not None and len(check.prepared.referenced_blobs) == 1


@pytest.mark.parametrize("roi, path", [
    (frame_pb2.Roi(labels=["car"], confidence=1.5), "frames[17].rois[0].confidence"),
    (frame_pb2.Roi(labels=["car"], confidence=math.nan), "frames[17].rois[0].confidence"),
    (frame_pb2.Roi(labels=[""]), "frames[17].rois[0].labels[0]"),
    (frame_pb2.Roi(labels=["x" * 257]), "frames[17].rois[0].labels[0]"),
    (frame_pb2.Roi(labels=["a"], sources=["nope"]), "frames[17].rois[0].sources[0]"),
    (frame_pb2.Roi(polygon=frame_pb2.Polygon2D(parts=[frame_pb2.PolygonPart(xy=[1, 2, 3, 4])])),
     "frames[17].rois[0].polygon.parts[0].xy"),
    (frame_pb2.Roi(polygon=frame_pb2.Polygon2D(parts=[frame_pb2.PolygonPart(xy=[1, 2, 3, 4, 5, 6, 7])])),
     "frames[17].rois[0].polygon.parts[0].xy"),
    (frame_pb2.Roi(polygon=frame_pb2.Polygon2D(parts=[frame_pb2.PolygonPart(xy=[1, 2, 3, 4, 5, math.inf])])),
     "frames[17].rois[0].polygon.parts[0].xy"),
    (frame_pb2.Roi(polygon=frame_pb2.Polygon2D()), "frames[17].rois[0].polygon.parts"),
    (frame_pb2.Roi(box=frame_pb2.Box2D(w=-1)), "frames[17].rois[0].box.w"),
    (frame_pb2.Roi(box=frame_pb2.Box2D(x=math.nan)), "frames[17].rois[0].box.x"),
    (frame_pb2.Roi(ellipse=frame_pb2.Ellipse2D(ry=-2)), "frames[17].rois[0].ellipse.ry"),
    (frame_pb2.Roi(keypoints=frame_pb2.Keypoints2D(xy=[1, 2, 3])), "frames[17].rois[0].keypoints.xy"),
    (frame_pb2.Roi(keypoints=frame_pb2.Keypoints2D(xy=[1, 2, 3, 4], visibility=[2])),
     "frames[17].rois[0].keypoints.visibility"),
    (frame_pb2.Roi(keypoints=frame_pb2.Keypoints2D(xy=[1, 2], visibility=[7])),
     "frames[17].rois[0].keypoints.visibility"),
    (frame_pb2.Roi(keypoints_3d=frame_pb2.Keypoints3D(xyz=[1, 2])), "frames[17].rois[0].keypoints_3d.xyz"),
    (frame_pb2.Roi(box_3d=frame_pb2.Box3D(size_z=-1)), "frames[17].rois[0].box_3d.size_z"),
    (frame_pb2.Roi(labels=["a"], mask=frame_pb2.RoiMaskLink(value=[1, 2])), "frames[17].rois[0].mask.value"),
])
def test_roi_problems_name_the_field(roi: frame_pb2.Roi, path: str):
    assert fields_of(frame(rois=[roi])) == [path]


def test_valid_geometries_pass():
    rois = [
        frame_pb2.Roi(labels=["a"], confidence=0.0),
        frame_pb2.Roi(labels=["a"], confidence=1.0, box=frame_pb2.Box2D(x=-3, y=1, w=0, h=2)),
        frame_pb2.Roi(polygon=frame_pb2.Polygon2D(parts=[frame_pb2.PolygonPart(xy=[0, 0, 1, 0, 1, 1])] * 2)),
        frame_pb2.Roi(keypoints=frame_pb2.Keypoints2D(xy=[1, 2, 3, 4], visibility=[0, 2])),
        frame_pb2.Roi(keypoints_3d=frame_pb2.Keypoints3D(xyz=[1, 2, 3])),
        frame_pb2.Roi(box_3d=frame_pb2.Box3D(size_x=1, qw=1), sources=["default"]),
        frame_pb2.Roi(ellipse=frame_pb2.Ellipse2D(rx=1, ry=2, theta=-3)),
    ]
    assert fields_of(frame(rois=rois)) == []


@pytest.mark.parametrize("source, path", [
    (frame_pb2.Source(), "frames[3].sources[1].uri"),
    (frame_pb2.Source(uri="ftp://host/x"), "frames[3].sources[1].uri"),
    (frame_pb2.Source(uri="https:///nohost"), "frames[3].sources[1].uri"),
    (frame_pb2.Source(uri="s3:bucket/key"), "frames[3].sources[1].uri"),
    (frame_pb2.Source(uri="file://"), "frames[3].sources[1].uri"),
    (frame_pb2.Source(uri="blob:sha256/xyz/1"), "frames[3].sources[1].uri"),
    (frame_pb2.Source(uri="s3://b/k with space"), "frames[3].sources[1].uri"),
    (frame_pb2.Source(uri="s3://b/k", inline_content=b"x"), "frames[3].sources[1].uri"),
    (frame_pb2.Source(inline_content=b"x" * 1025), "frames[3].sources[1].inline_content"),
    (frame_pb2.Source(uri="s3://b/k", width=-1), "frames[3].sources[1].width"),
    (frame_pb2.Source(uri="s3://b/k", timestamp=-1), "frames[3].sources[1].timestamp"),
    (frame_pb2.Source(uri="s3://b/k", content_type="jpeg"), "frames[3].sources[1].content_type"),
    (frame_pb2.Source(uri="s3://b/k", preview=frame_pb2.Preview()), "frames[3].sources[1].preview.uri"),
    (frame_pb2.Source(uri="s3://b/k", masks=[frame_pb2.Mask(id="m", uri="x")]), "frames[3].sources[1].masks[0].uri"),
    (frame_pb2.Source(uri="s3://b/k", masks=[frame_pb2.Mask(id="m", uri=BLOB), frame_pb2.Mask(id="m", uri=BLOB)]),
     "frames[3].sources[1].masks[1].id"),
])
def test_source_problems_name_the_field(source: frame_pb2.Source, path: str):
    if not source.id:
        source.id = "second"
    f = frame(sources=[frame_pb2.Source(uri="s3://b/first"), source])
    assert fields_of(f, "frames[3]") == [path]


def test_frame_level_problems():
    assert fields_of(frame_pb2.Frame()) == ["frames[17].sources"]
    assert fields_of(frame(id="a\x00b")) == ["frames[17].id"]
    assert fields_of(frame(id="x" * 513)) == ["frames[17].id"]
    assert fields_of(frame(timestamp=-1)) == ["frames[17].timestamp"]
    assert fields_of(frame(blob=b"x" * (MAX_FRAME_BLOB_BYTES + 1))) == ["frames[17].blob"]
    dup = frame(sources=[frame_pb2.Source(uri="s3://b/1"), frame_pb2.Source(id="default", uri="s3://b/2")])
    assert fields_of(dup) == ["frames[17].sources[1].id"]


def test_metadata_keys_that_mongodb_would_interpret_are_rejected():
    meta = metadata_pb2.Metadata()
    meta.fields["bad$key"].int_value = 1
    meta.fields["$where"].int_value = 1
    meta.fields["a.b"].int_value = 1
    meta.fields["fine"].map_value.fields["$gt"].int_value = 1
    meta.fields["fine"].map_value.fields["also_fine"].int_value = 1
    assert sorted(fields_of(frame(meta=meta), "frames[2]")) == [
        "frames[2].meta.$where", "frames[2].meta.a.b", "frames[2].meta.bad$key", "frames[2].meta.fine.$gt"]


def test_all_problems_of_a_frame_are_reported_together():
    f = frame(timestamp=-5, rois=[frame_pb2.Roi(labels=[""], confidence=2)])
    assert sorted(fields_of(f)) == [
        "frames[17].rois[0].confidence", "frames[17].rois[0].labels[0]", "frames[17].timestamp"]


def test_an_invalid_frame_still_reports_its_id_when_derivable():
    check = check_frame(frame(timestamp=-1), "f", LIMITS)
    assert check.prepared is None and check.frame_id == derive_frame_id("s3://bucket/a.jpg")
    check = check_frame(frame(sources=[frame_pb2.Source(uri="nope")]), "f", LIMITS)
    assert check.frame_id == ""
