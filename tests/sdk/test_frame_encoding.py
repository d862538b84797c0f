"""Frames sent by add_frames: the SDK encodes its frame objects straight to the wire bytes of their
``framevault.v1.Frame``; what it gives must be exactly the message ``to_proto`` builds, and values it
does not take go through ``to_proto`` with the errors they always had.
"""

from __future__ import annotations

import enum
import math
import uuid

import numpy as np
import pytest

from framevault.sdk import DatasetVersion, FrameGroup, SingleFrame, frame_codec, frame_from_proto
from framevault.sdk.frame_codec import encode_frame
from framevault.sdk.settings import ClientSettings
from framevault.sdk.upload import FramePreparer, PreparedFrame
from framevault.v1 import frame_pb2
from framevault.v1 import metadata_service_pb2 as pb


def every_shape(*, storable: bool = False) -> SingleFrame:
    """A frame with every field the SDK writes, and values at the edges of their wire encodings (some of
    which the service refuses, unless ``storable``)."""
    frame = SingleFrame(
        source="s3://bucket/dir.v1/ünïcode_frame.JPG" if storable else "s3://bucket/dir.v1/ünïcode frame.JPG",
        width=2**31 - 1, height=1, timestamp=5 if storable else -5,
        context_id="c" * 200, preview_uri="https://h:8443/p.png?sig=a.b", id="f" * 130,
        metadata={"s": "", "t": "ß", "i": -1, "big": 2**63 - 1, "small": -(2**63), "zero": 0, "f": -0.0,
                  "g": 1e300, "b": False, "n": None, "l": [], "m": {}, "nested": {"a": [1, {"b": [None, True]}]},
                  "k" * 200: "long key"},
        mask_source={"semantic": "s3://b/m.png", "": "s3://b/x.tar.gz", "instances": "https://h/i"}
        if storable else {"semantic": "s3://b/m.png", "": "s3://b/x.tar.gz", "instances": "gs://b/i"},
        content_type=None, source_id="cam", source_timestamp=0, source_metadata={"gain": 1.5},
        blob=b"\x00" * 300,
    )
    frame.mask_content_types["semantic"] = ""
    frame.preview_content_type = "image/webp"
    frame.add_annotation(poly2d_xy=[0, 0, 1.5, 0, 1, 1e30], labels=["car", "x" if storable else "", "ß"], confidence=0.0, id="r1",
                         metadata={"occluded": True})
    frame.add_annotation(poly2d_xy=[[(0, 0), (1, 0), (1, 1)], [2, 2, 3, 2, 3, 3, 2, 3]], labels="two parts")
    frame.add_annotation(box2d_xywh=(0, -0.0, 3, 4), labels="box", confidence=1)
    frame.add_annotation(ellipse2d_xyrrt=(1, 2, 3, 4, -math.pi), labels="ellipse")
    frame.add_annotation(keypoints=[(1, 2, 0), (3, 4, 2), (5, 6, 1)], labels="person")
    frame.add_annotation(keypoints=[(1, 2), (3, 4)], labels="points")
    frame.add_annotation(keypoints_3d=[(1, 2, 3)], labels="3d")
    frame.add_annotation(box3d=(1, 2, 3, 4, 5, 6), labels="cuboid")
    frame.add_annotation(labels=["frame label"])
    frame.annotations[-1].sources = ["cam"]
    return frame


def frames_to_encode(*, storable: bool = False) -> list[SingleFrame | FrameGroup]:
    group = FrameGroup(id="g", context_id="rig", timestamp=7, metadata={"speed": 3}, blob=b"raw")
    group["left"] = SingleFrame(source="s3://b/l.jpg", width=4, height=3, metadata={"side": "l"},
                                source_metadata={"gain": 2}, timestamp=8)
    group["right"] = every_shape(storable=storable)
    group["left"].add_annotation(box2d_xywh=(1, 1, 1, 1), labels="car")
    group["left"].add_annotation(labels="own", metadata={"x": 1}).sources = ["right"]
    group.add_annotation(labels="day")
    read_back = frame_from_proto(every_shape(storable=storable).to_proto())
    touched = frame_from_proto(every_shape(storable=storable).to_proto())
    touched.annotations[0].labels.append("added after reading")
    touched.metadata["new"] = 1
    if storable:
        group["right"].annotations[-1].sources = ["right"]
        return [every_shape(storable=True), group, read_back, touched]
    return [SingleFrame(), SingleFrame(source="blob:sha256/ab/12"), every_shape(), group, read_back, touched]


@pytest.mark.parametrize("index", range(len(frames_to_encode())))
def test_encoded_frames_are_the_messages_to_proto_builds(index: int) -> None:
    frame = frames_to_encode()[index]
    encoded = encode_frame(frame)
    assert encoded is not None
    assert frame_pb2.Frame.FromString(encoded) == frame.to_proto()
    entry = PreparedFrame(frame, encoded)
    assert entry.proto == frame.to_proto()
    assert pb.UploadFramesRequest.FromString(entry.encoded).items[0].frame == frame.to_proto()


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


def unusual_values() -> list[SingleFrame]:
    """Values the message runtime converts but the encoder does not take as they are."""
    frames = [SingleFrame(source="s3://b/a.jpg", width=np.int64(5)), SingleFrame(source="s3://b/a.jpg", id=Name("x")),
              SingleFrame(source="s3://b/a.jpg", metadata={"c": Colour.RED, "n": np.float64(0.5)}),
              SingleFrame(source="s3://b/a.jpg")]
    frames[-1].add_annotation(box2d_xywh=(1, 2, 3, 4), labels="car", confidence=0.5)
    frames[-1].annotations[0].confidence = 1e40  # beyond float32: the runtime stores infinity
    return frames


async def test_values_the_encoder_does_not_take_are_converted_by_the_runtime() -> None:
    frames = unusual_values()
    failed: list = []
    ready = await FramePreparer(None, failed).prepare(list(frames))
    assert failed == []
    assert [r.proto for r in ready] == [f.to_proto() for f in frames]
    assert [pb.UploadFramesRequest.FromString(r.encoded).items[0].frame for r in ready] == [r.proto for r in ready]
    assert ready[-1].proto.rois[0].confidence == math.inf


def invalid_frames() -> list[SingleFrame]:
    frames = [SingleFrame(source="s3://b/a.jpg", width="wide"), SingleFrame(source="s3://b/a.jpg", width=2**31),
              SingleFrame(source="s3://b/a.jpg", timestamp=1.5), SingleFrame(source="s3://b/a.jpg", id=7),
              SingleFrame(source="s3://b/a.jpg", metadata={"i": 2**63}),
              SingleFrame(source="s3://b/a.jpg", metadata={"s": {1, 2}}),
              SingleFrame(source="s3://b/a.jpg", width=True), SingleFrame(source="s3://b/a.jpg", blob="text"),
              SingleFrame(source=b"s3://b/bytes.jpg")]
    box = SingleFrame(source="s3://b/a.jpg")
    box.add_annotation(box2d_xywh=(1, 2, 3, 4), labels="car")
    box.annotations[0].box2d_xywh = (1, 2, 3)  # type: ignore[assignment]
    label = SingleFrame(source="s3://b/a.jpg")
    label.add_annotation(labels="car")
    label.annotations[0].labels = [None]  # type: ignore[list-item]
    return [*frames, box, label]


@pytest.mark.parametrize("index", range(len(invalid_frames())))
async def test_invalid_frames_fail_locally_with_the_runtime_error(index: int) -> None:
    frame = invalid_frames()[index]
    with pytest.raises((TypeError, ValueError)) as raised:
        frame.to_proto()
    failed: list = []
    assert await FramePreparer(None, failed).prepare([frame]) == []
    (only,) = failed
    assert only.frame is frame and only.error.message == f"not a valid frame: {raised.value}"


async def test_encoded_frames_are_stored_as_their_messages(sdk: ClientSettings) -> None:
    name = f"encoding-{uuid.uuid4().hex[:8]}"
    await DatasetVersion.acreate_new_dataset(name)
    draft = await DatasetVersion.aget_version(name)
    frames = frames_to_encode(storable=True)
    for n, frame in enumerate(frames):
        frame.id = f"frame-{n}"
        assert encode_frame(frame) is not None
    assert await draft.aadd_frames(frames, progress=False) == []
    for frame in frames:
        stored = (await draft.aget_single_frame(frame.id)).to_proto()
        expected = frame.to_proto()
        for message in (stored, expected):
            for field in ("dataset_id", "version_id", "saved_in_version", "saved", "etag"):
                message.ClearField(field)
        assert stored == expected


def test_repeated_strings_encode_alike_remembered_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    # Labels, metadata keys, ids and content types are remembered up to a bound; past it they are encoded anew.
    monkeypatch.setattr(frame_codec, "_VOCABULARY_BOUND", 3)
    frames = []
    for n in range(12):
        frame = SingleFrame(source=f"s3://b/{n}.jpg", metadata={f"key{n % 5}": n, "": n}, source_id=f"cam{n % 4}",
                            mask_source={f"m{n % 6}": f"s3://b/{n}.png"}, content_type=f"image/x-{n % 7}")
        frame.add_annotation(labels=[f"label{n % 9}", "car", ""])
        frames.append(frame)
    for _ in range(2):
        assert [frame_pb2.Frame.FromString(encode_frame(f)) for f in frames] == [f.to_proto() for f in frames]
