"""The encoder's shortcuts for the most common shapes (polygon ROIs, remembered string metadata entries,
polygon part packers by coordinate count) give the message ``to_proto`` builds, remembered or not."""

from __future__ import annotations

import pytest

from framevault.sdk import SingleFrame, frame_codec
from framevault.sdk.frame_codec import encode_frame
from framevault.v1 import frame_pb2


def polygon_frames() -> list[SingleFrame]:
    frames = []
    for n in range(40):
        frame = SingleFrame(source=f"s3://b/{n}.jpg", preview_uri=f"s3://b/{n}_p.png", mask_source=f"s3://b/{n}.png",
                            metadata={"city": f"city{n % 7}", "weather": "rain", "n": n, "speed": n / 3,
                                      "day": n % 2 == 0, "none": None, "": "empty key", "s": ""})
        frame.add_annotation(poly2d_xy=[float(c) for c in range(6 + 2 * (n % 60))], labels=["car", f"l{n}"],
                             confidence=n / 40)
        frame.add_annotation(poly2d_xy=[[0, 0, 1, 0, 1, 1], [2, 2, 3, 2, 3, 3, 2, 2]], labels="two parts")
        frames.append(frame)
    # A polygon part of 40 points and more (a two-byte length) and one with no coordinates at all.
    long_part = SingleFrame(source="s3://b/long.jpg")
    long_part.add_annotation(poly2d_xy=[float(c) for c in range(90)], labels="long")
    empty_part = SingleFrame(source="s3://b/empty.jpg")
    empty_part.add_annotation(poly2d_xy=[0, 0, 1, 0, 1, 1], labels="emptied").poly2d_xy = [[]]
    # A polygon and a box both assigned: the box comes first in GEOMETRY_FIELDS, as to_proto sends it.
    both = SingleFrame(source="s3://b/both.jpg")
    both.add_annotation(box2d_xywh=(1, 2, 3, 4), labels="box").poly2d_xy = [[0.0, 0.0, 1.0, 0.0, 1.0, 1.0]]
    return [*frames, long_part, empty_part, both]


@pytest.mark.parametrize("bound", [0, 3, frame_codec._VOCABULARY_BOUND])
def test_shortcuts_encode_the_messages_to_proto_builds(monkeypatch: pytest.MonkeyPatch, bound: int) -> None:
    monkeypatch.setattr(frame_codec, "_VOCABULARY_BOUND", bound)
    monkeypatch.setattr(frame_codec, "_STRING_ENTRIES", frame_codec._StringEntries())
    monkeypatch.setattr(frame_codec, "_POLYGON_PARTS_OF", {})
    frames = polygon_frames()
    for _ in range(2):  # the second time from what the first remembered
        assert [frame_pb2.Frame.FromString(encode_frame(f)) for f in frames] == [f.to_proto() for f in frames]
    assert frame_codec._STRING_ENTRIES.count <= bound
    assert len(frame_codec._POLYGON_PARTS_OF) <= bound


def test_a_remembered_string_entry_is_not_taken_for_another_type() -> None:
    # "1" remembered as a string must not be what 1, 1.0 or True encode to, nor a str subclass fail.
    frames = [SingleFrame(source="s3://b/a.jpg", metadata={"v": value}) for value in ("1", 1, 1.0, True, "1")]
    assert [frame_pb2.Frame.FromString(encode_frame(f)) for f in frames] == [f.to_proto() for f in frames]
