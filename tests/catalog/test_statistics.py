"""GetVersionStatistics: computed on the frames a version holds."""

from __future__ import annotations

import grpc
from google.protobuf import field_mask_pb2

from framevault.v1 import frame_pb2, metadata_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import (
    by_id,
    child_of,
    delete_frames,
    expect_invalid,
    expect_unchanged,
    make_frame,
    new_dataset,
    publish,
    write_frames,
)


def nested(city: str | None, weather: object = ...) -> metadata_pb2.Metadata:
    meta = metadata_pb2.Metadata()
    if city is not None:
        meta.fields["city"].string_value = city
    if weather is None:
        meta.fields["env"].map_value.fields["weather"].null_value = 0
    elif weather is not ...:
        meta.fields["env"].map_value.fields["weather"].string_value = str(weather)
    return meta


def frame(frame_id: str, rois: list[list[str]], city: str | None = None, weather: object = ...) -> frame_pb2.Frame:
    out = make_frame(frame_id)
    for labels in rois:
        out.rois.append(frame_pb2.Roi(labels=labels, box=frame_pb2.Box2D(x=0, y=0, w=1, h=1)))
    out.meta.CopyFrom(nested(city, weather))
    return out


async def stats(stub, version_id: str, *keys: str) -> ms.VersionStatistics:
    return await stub.GetVersionStatistics(ms.GetVersionStatisticsRequest(version=by_id(version_id), meta_keys=keys))


def distribution(result, key: str) -> tuple[list[tuple[object, int]], int]:
    found = next(d for d in result.meta_distributions if d.key == key)
    values = []
    for entry in found.values:
        kind = entry.value.WhichOneof("kind")
        values.append((None if kind == "null_value" else getattr(entry.value, kind), entry.count))
    return values, found.missing_count


async def test_statistics_follow_uploads_updates_and_deletes(metadata_stub, db):
    _, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [
        frame("a", [["car"], ["car", "vehicle"]], city="bremen", weather="rain"),
        frame("b", [["person"]], city="bremen", weather=None),
        frame("c", [], city="hamburg"),
        frame("d", [["car", "car"]]),  # one ROI, the label listed twice
        frame("e", [[]], city="bremen", weather="sun"),  # an ROI without labels
    ])
    first = await stats(metadata_stub, current.id, "city", "env.weather")
    assert (first.version_id, first.frame_count, first.annotated_frame_count, first.roi_count) == (current.id, 5, 4, 5)
    assert dict(first.roi_label_counts) == {"car": 3, "vehicle": 1, "person": 1}
    assert distribution(first, "city") == ([("bremen", 3), ("hamburg", 1)], 1)
    # A null value is a value; a frame without the key is missing.
    assert distribution(first, "env.weather") == ([(None, 1), ("rain", 1), ("sun", 1)], 2)

    await write_frames(metadata_stub, current.id, [frame("c", [["truck"]], city="berlin")])
    await delete_frames(metadata_stub, current.id, ["a"])
    # A partial update of one frame's ROIs.
    await metadata_stub.UpdateFrame(ms.UpdateFrameRequest(
        version=by_id(current.id), frame=frame("b", [["person", "cyclist"], ["person"]]),
        update_mask=field_mask_pb2.FieldMask(paths=["rois"])))
    second = await stats(metadata_stub, current.id, "city")
    assert (second.frame_count, second.annotated_frame_count, second.roi_count) == (4, 4, 5)
    assert dict(second.roi_label_counts) == {"car": 1, "person": 2, "cyclist": 1, "truck": 1}
    assert distribution(second, "city") == ([("bremen", 2), ("berlin", 1)], 1)


async def test_published_statistics_are_cached_and_children_start_equal(metadata_stub, db):
    _, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [frame(f"f{i}", [["car"]] * (i % 3), city=f"c{i % 2}")
                                                   for i in range(12)])
    published = await publish(metadata_stub, current.id)
    first = await stats(metadata_stub, published.id, "city")
    cached = (await db.versions.find_one({"_id": published.id}))["statistics"]
    assert cached["frame_count"] == first.frame_count == 12
    again = await stats(metadata_stub, published.id, "city")
    assert again == first
    child = await child_of(metadata_stub, published)
    in_child = await stats(metadata_stub, child.id, "city")
    assert (in_child.frame_count, dict(in_child.roi_label_counts)) == (12, dict(first.roi_label_counts))
    await delete_frames(metadata_stub, child.id, ["f1", "f2"])
    assert (await stats(metadata_stub, child.id)).frame_count == 10
    assert (await stats(metadata_stub, published.id)).frame_count == 12
    assert "statistics" not in await db.versions.find_one({"_id": child.id})


async def test_statistics_bad_keys_name_the_field(metadata_stub, db):
    _, current = await new_dataset(metadata_stub)
    for keys, field in ((["ok", "$where"], "meta_keys[1]"), (["a..b"], "meta_keys[0]"), ([""], "meta_keys[0]"),
                        (["x", "x"], "meta_keys[1]"), (["a.$gt"], "meta_keys[0]"),
                        ([f"k{i}" for i in range(17)], "meta_keys")):
        await expect_invalid(db, stats(metadata_stub, current.id, *keys), field)
    await expect_unchanged(db, stats(metadata_stub, "0123456789abcdef01234567"), grpc.StatusCode.NOT_FOUND)
