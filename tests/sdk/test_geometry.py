"""Annotation geometry on its own: shapes written to a ``framevault.v1.Roi`` read back
unchanged, and the model's proto conversion goes through the same two functions."""

from __future__ import annotations

from typing import Any

import pytest

from framevault.sdk import Annotation
from framevault.sdk.geometry import (
    GEOMETRY_FIELDS,
    normalize_box3d,
    normalize_keypoints_3d,
    read_geometry,
    write_geometry,
)
from framevault.v1 import frame_pb2

SHAPES: list[tuple[str, Any, str]] = [
    ("box2d_xywh", (1.0, 2.0, 3.0, 4.0), "box"),
    ("poly2d_xy", [[0.0, 0.0, 4.0, 0.0, 4.0, 3.0], [10.0, 10.0, 12.0, 10.0, 12.0, 12.0]], "polygon"),
    ("ellipse2d_xyrrt", (5.0, 6.0, 2.0, 1.0, 0.5), "ellipse"),
    ("keypoints", [(1.0, 2.0), (3.0, 4.0)], "keypoints"),
    ("keypoints", [(1.0, 2.0, 2), (3.0, 4.0, 0)], "keypoints"),
    ("keypoints_3d", [(1.0, 2.0, 3.0), (4.0, 5.0, 6.0)], "keypoints_3d"),
    ("box3d", (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1.0, 0.0, 0.0, 0.0), "box_3d"),
]


@pytest.mark.parametrize(("kind", "value", "oneof"), SHAPES)
def test_a_shape_written_to_a_roi_reads_back_unchanged(kind: str, value: Any, oneof: str) -> None:
    roi = frame_pb2.Roi()
    write_geometry(roi, kind, value)
    assert roi.WhichOneof("geometry") == oneof
    assert read_geometry(roi) == (kind, value)


@pytest.mark.parametrize(("kind", "value", "oneof"), SHAPES)
def test_annotation_proto_conversion_carries_each_shape(kind: str, value: Any, oneof: str) -> None:
    annotation = Annotation(labels=["car"], **{kind: value})
    roi = annotation.to_proto()
    assert roi.WhichOneof("geometry") == oneof
    back = Annotation.from_proto(roi)
    assert back.geometry_kind == kind
    assert getattr(back, kind) == value
    assert [getattr(back, other) for other in GEOMETRY_FIELDS if other != kind] == [None] * (len(GEOMETRY_FIELDS) - 1)


def test_a_roi_without_geometry_has_none() -> None:
    assert read_geometry(frame_pb2.Roi(labels=["day"])) is None


def test_six_box3d_values_get_the_identity_rotation() -> None:
    assert normalize_box3d([1, 2, 3, 4, 5, 6]) == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="box3d needs 10 finite numbers"):
        normalize_box3d([1, 2, 3, 4, 5, 6, 7])


def test_keypoints_3d_accept_flat_and_tuple_forms() -> None:
    assert normalize_keypoints_3d([1, 2, 3, 4, 5, 6]) == [(1.0, 2.0, 3.0), (4.0, 5.0, 6.0)]
    assert normalize_keypoints_3d([(1, 2, 3)]) == [(1.0, 2.0, 3.0)]
    with pytest.raises(ValueError, match="multiple of 3"):
        normalize_keypoints_3d([1, 2, 3, 4])
