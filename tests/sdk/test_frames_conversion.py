"""SingleFrame / FrameGroup / Annotation <-> framevault.v1.Frame (pure, no services)."""

from __future__ import annotations

import math

import pytest

from framevault.sdk import Annotation, FrameGroup, SingleFrame, frame_from_proto, frame_to_proto
from framevault.sdk.frame_codec import frame_to_json_dict
from framevault.sdk.geometry import normalize_polygon
from framevault.sdk.sources import guess_content_type, is_local_uri, local_path
from framevault.v1 import frame_pb2


def test_single_frame_to_proto_carries_every_field() -> None:
    frame = SingleFrame(
        source="s3://bucket/drive1/0001.jpg",
        width=640,
        height=480,
        timestamp=33,
        context_id="drive1",
        preview_uri="https://cdn.example/0001_thumb.png",
        metadata={"city": "bremen", "count": 3, "ratio": 0.5, "tags": ["a", "b"], "nested": {"ok": True}},
        mask_source="s3://bucket/drive1/0001_mask.png",
        id="frame-1",
    )
    frame.add_annotation(box2d_xywh=(10, 20, 30, 40), labels=["car"], confidence=0.9, metadata={"occluded": False},
                         id="track-7")
    frame.add_annotation(labels="daytime")

    proto = frame.to_proto()

    assert proto.id == "frame-1"
    assert proto.context_id == "drive1"
    assert proto.timestamp == 33
    assert len(proto.sources) == 1
    source = proto.sources[0]
    assert source.id == "default"
    assert source.uri == "s3://bucket/drive1/0001.jpg"
    assert source.content_type == "image/jpeg"
    assert (source.width, source.height, source.timestamp) == (640, 480, 33)
    assert source.preview.uri == "https://cdn.example/0001_thumb.png"
    assert source.preview.content_type == "image/png"
    assert [(m.id, m.uri, m.content_type) for m in source.masks] == [
        ("default", "s3://bucket/drive1/0001_mask.png", "image/png")]
    meta = proto.meta.fields
    assert meta["city"].string_value == "bremen"
    assert meta["count"].int_value == 3
    assert meta["ratio"].double_value == 0.5
    assert [v.string_value for v in meta["tags"].list_value.values] == ["a", "b"]
    assert meta["nested"].map_value.fields["ok"].bool_value is True
    box_roi, label_roi = proto.rois
    assert box_roi.WhichOneof("geometry") == "box"
    assert (box_roi.box.x, box_roi.box.y, box_roi.box.w, box_roi.box.h) == (10, 20, 30, 40)
    assert list(box_roi.labels) == ["car"]
    assert box_roi.confidence == pytest.approx(0.9)
    assert box_roi.id == "track-7"
    assert box_roi.meta.fields["occluded"].bool_value is False
    assert label_roi.WhichOneof("geometry") is None
    assert list(label_roi.labels) == ["daytime"]
    assert not label_roi.HasField("confidence")
    assert list(label_roi.sources) == []


def test_single_frame_round_trip_is_lossless() -> None:
    frame = SingleFrame(source="blob:sha256/" + "a" * 64 + "/12", width=8, height=6, timestamp=66,
                        context_id="video-3", metadata={"weather": {"rain": 0.25}}, id="f")
    frame.add_annotation(poly2d_xy=[[0, 0, 4, 0, 4, 4], [5, 5, 7, 5, 7, 7, 5, 7]], labels=["road", "wet"])
    frame.add_annotation(ellipse2d_xyrrt=(4, 3, 2, 1, math.pi / 4), labels="sign", confidence=0.5)
    frame.add_annotation(keypoints=[(1, 1, 2), (2, 2, 1)], labels="person")
    frame.add_annotation(keypoints_3d=[(1, 2, 3), (4, 5, 6)], labels="lidar-person")
    frame.add_annotation(box3d=(1, 2, 3, 4, 5, 6), labels="truck-3d")

    proto = frame.to_proto()
    back = frame_from_proto(proto)

    assert isinstance(back, SingleFrame)
    assert back.to_proto() == proto
    assert back.id == "f" and back.context_id == "video-3" and back.timestamp == 66
    assert back.metadata == {"weather": {"rain": 0.25}}
    polygon, ellipse, keypoints, keypoints_3d, box3d = back.annotations
    assert polygon.poly2d_xy == [[0, 0, 4, 0, 4, 4], [5, 5, 7, 5, 7, 7, 5, 7]]
    assert polygon.labels == ["road", "wet"]
    assert ellipse.ellipse2d_xyrrt == pytest.approx((4, 3, 2, 1, math.pi / 4), rel=1e-6)
    assert ellipse.confidence == pytest.approx(0.5)
    assert keypoints.keypoints == [(1, 1, 2), (2, 2, 1)]
    assert keypoints_3d.keypoints_3d == [(1, 2, 3), (4, 5, 6)]
    assert box3d.box3d == (1, 2, 3, 4, 5, 6, 1, 0, 0, 0)
    assert [a.geometry_kind for a in back.annotations] == [
        "poly2d_xy", "ellipse2d_xyrrt", "keypoints", "keypoints_3d", "box3d"]


def test_labels_alone_make_a_frame_label() -> None:
    frame = SingleFrame(source="https://x/y.png")
    annotation = frame.add_annotation(labels=["indoor", "night"])
    assert annotation.is_frame_label
    assert frame.frame_labels == ["indoor", "night"]
    assert frame.to_proto().rois[0].WhichOneof("geometry") is None


@pytest.mark.parametrize("kwargs, message", [
    ({}, "geometry or labels"),
    ({"box2d_xywh": (1, 2, 3), "labels": "x"}, "4 finite numbers"),
    ({"box2d_xywh": (1, 2, 3, 4), "poly2d_xy": [0, 0, 1, 0, 1, 1]}, "at most one geometry"),
    ({"poly2d_xy": [0, 0, 1, 1], "labels": "x"}, "even number"),
    ({"keypoints": [(1, 2), (1, 2, 2)], "labels": "x"}, "all be"),
    ({"labels": "x", "confidence": 1.5}, "confidence"),
])
def test_add_annotation_rejects_malformed_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SingleFrame(source="a.png").add_annotation(**kwargs)


@pytest.mark.parametrize("given, parts", [
    ([0, 0, 4, 0, 4, 4], [[0, 0, 4, 0, 4, 4]]),
    ([(0, 0), (4, 0), (4, 4)], [[0, 0, 4, 0, 4, 4]]),
    ([[0, 0, 4, 0, 4, 4], [1, 1, 2, 1, 2, 2]], [[0, 0, 4, 0, 4, 4], [1, 1, 2, 1, 2, 2]]),
    ([[(0, 0), (4, 0), (4, 4)], [(1, 1), (2, 1), (2, 2)]], [[0, 0, 4, 0, 4, 4], [1, 1, 2, 1, 2, 2]]),
])
def test_polygon_forms_normalize_to_flat_parts(given: list, parts: list) -> None:
    assert normalize_polygon(given) == parts


def test_frame_group_members_and_global_annotations() -> None:
    group = FrameGroup(id="moment-1", context_id="drive", timestamp=100, metadata={"speed": 12})
    group["left"] = SingleFrame(source="s3://b/l.png", width=10, height=10, metadata={"exposure": 1})
    group["right"] = SingleFrame(source="s3://b/r.png", width=10, height=10)
    group["left"].add_annotation(box2d_xywh=(1, 1, 2, 2), labels="car")
    group.add_annotation(labels="highway")
    group.add_annotation(poly2d_xy=[0, 0, 5, 0, 5, 5], labels="sky")

    proto = group.to_proto()

    assert [s.id for s in proto.sources] == ["left", "right"]
    assert proto.sources[0].meta.fields["exposure"].int_value == 1
    assert proto.meta.fields["speed"].int_value == 12
    assert (proto.id, proto.context_id, proto.timestamp) == ("moment-1", "drive", 100)
    by_label = {roi.labels[0]: roi for roi in proto.rois}
    assert list(by_label["car"].sources) == ["left"]
    assert list(by_label["highway"].sources) == []
    assert list(by_label["sky"].sources) == []

    back = frame_from_proto(proto)
    assert isinstance(back, FrameGroup)
    assert list(back) == ["left", "right"]
    assert back["left"].metadata == {"exposure": 1}
    assert [a.labels for a in back["left"].annotations] == [["car"]]
    assert sorted(a.labels[0] for a in back.annotations) == ["highway", "sky"]
    assert back.to_proto() == proto


def test_frame_group_is_a_mutable_mapping_of_single_frames() -> None:
    group = FrameGroup()
    group["rgb"] = SingleFrame(source="a.png")
    group["depth"] = SingleFrame(source="b.png")
    assert len(group) == 2 and "rgb" in group
    del group["rgb"]
    assert list(group.keys()) == ["depth"]
    with pytest.raises(TypeError):
        group["x"] = "not a frame"  # type: ignore[assignment]


def test_roi_spanning_two_members_stays_on_the_group() -> None:
    proto = frame_pb2.Frame(
        id="g", sources=[frame_pb2.Source(id="a", uri="s3://x/a"), frame_pb2.Source(id="b", uri="s3://x/b")],
        rois=[frame_pb2.Roi(labels=["bridge"], sources=["a", "b"])],
    )
    group = frame_from_proto(proto)
    assert isinstance(group, FrameGroup)
    assert group.annotations[0].sources == ["a", "b"]
    assert group.to_proto() == proto


def test_output_only_fields_are_read_into_stored_info() -> None:
    proto = frame_pb2.Frame(id="x", sources=[frame_pb2.Source(uri="s3://a")], dataset_id="d", version_id="v",
                            saved_in_version="p", saved=123, etag="e", num_frames=1)
    frame = frame_from_proto(proto)
    assert (frame.stored.dataset_id, frame.stored.version_id, frame.stored.saved_in_version,
            frame.stored.saved, frame.stored.etag) == ("d", "v", "p", 123, "e")
    assert frame.to_proto().dataset_id == ""


def test_label_ids_come_back_on_annotations() -> None:
    roi = frame_pb2.Roi(labels=["car", "red"], label_ids=[3, -1])
    assert Annotation.from_proto(roi).label_ids == [3, -1]


def test_frame_to_proto_accepts_protos_and_rejects_other_things() -> None:
    proto = frame_pb2.Frame(id="p")
    copy = frame_to_proto(proto)
    assert copy == proto and copy is not proto
    with pytest.raises(TypeError):
        frame_to_proto({"id": "x"})  # type: ignore[arg-type]


@pytest.mark.parametrize("uri, local", [
    ("images/a.jpg", True),
    ("/abs/a.jpg", True),
    ("file:///abs/a.jpg", True),
    ("C:\\data\\a.jpg", True),
    ("s3://b/a.jpg", False),
    ("https://h/a.jpg", False),
    ("blob:sha256/" + "0" * 64 + "/1", False),
    ("", False),
])
def test_local_uris_are_recognised(uri: str, local: bool) -> None:
    assert is_local_uri(uri) is local


def test_local_path_of_file_uri_decodes_it() -> None:
    assert local_path("file:///tmp/with%20space.png") == "/tmp/with space.png"
    assert guess_content_type("s3://b/x.PNG?v=1") == "image/png"


def test_json_dict_has_plain_metadata() -> None:
    frame = SingleFrame(source="s3://a/b.jpg", metadata={"city": "bremen", "n": 2}, source_metadata={"cam": "front"})
    frame.add_annotation(box2d_xywh=(1, 2, 3, 4), labels="car", metadata={"truncated": True})
    out = frame_to_json_dict(frame.to_proto())
    assert out["meta"] == {"city": "bremen", "n": 2}
    assert out["sources"][0]["meta"] == {"cam": "front"}
    assert out["rois"][0]["meta"] == {"truncated": True}
    assert out["rois"][0]["box"] == {"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0}
