"""Metadata nests at most 20 levels (objects and lists count, a top-level value
is depth 1), wherever it is carried: frames, sources, ROIs, datasets,
versions and view rule values. Deeper is INVALID_ARGUMENT naming the field;
in an upload only that frame fails. A key path that addresses metadata has at
most as many segments as metadata nests, wherever a caller writes one."""

from __future__ import annotations

import uuid

import grpc
import pytest
from frames.helpers import CREATED, FAILED, bad_fields, by_id, get_frame, image_frame, items, new_draft, upload
from google.protobuf import field_mask_pb2
from grpc import aio
from support import violated_fields

from framevault.v1 import dataset_pb2, metadata_pb2, view_pb2
from framevault.v1 import metadata_service_pb2 as ms

# The limit metadata.proto documents.
MAX_DEPTH = 20


def nested(depth: int, kind: str) -> metadata_pb2.MetadataValue:
    """A value whose innermost scalar lies at ``depth``, inside objects
    (member ``a``) or lists."""
    value = metadata_pb2.MetadataValue(string_value="x")
    for _ in range(depth - 1):
        outer = metadata_pb2.MetadataValue()
        if kind == "map":
            outer.map_value.fields["a"].CopyFrom(value)
        else:
            outer.list_value.values.add().CopyFrom(value)
        value = outer
    return value


def meta_of(value: metadata_pb2.MetadataValue) -> metadata_pb2.Metadata:
    meta = metadata_pb2.Metadata()
    meta.fields["k"].CopyFrom(value)
    return meta


@pytest.mark.parametrize("kind", ["map", "list"])
async def test_upload_accepts_the_limit_and_fails_only_the_deeper_frame(metadata_stub, kind: str) -> None:
    draft = await new_draft(metadata_stub)
    at_limit = image_frame("at-limit")
    at_limit.meta.CopyFrom(meta_of(nested(MAX_DEPTH, kind)))
    too_deep = image_frame("too-deep")
    too_deep.meta.CopyFrom(meta_of(nested(MAX_DEPTH + 1, kind)))
    deep_source = image_frame("deep-source")
    deep_source.sources[0].meta.CopyFrom(meta_of(nested(MAX_DEPTH + 1, kind)))
    deep_roi = image_frame("deep-roi")
    deep_roi.rois[0].meta.CopyFrom(meta_of(nested(MAX_DEPTH + 1, kind)))
    frames = [image_frame("good-1"), at_limit, too_deep, deep_source, deep_roi, image_frame("good-2")]

    run = await upload(metadata_stub, draft.id, items(frames), per_message=2)

    assert run.outcomes() == [CREATED, CREATED, FAILED, FAILED, FAILED, CREATED]
    for result, prefix in zip(run.results[2:5], ("frames[2].meta.k", "frames[3].sources[0].meta.k",
                                                  "frames[4].rois[0].meta.k"), strict=True):
        assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        fields = bad_fields(result.error)
        assert len(fields) == 1 and fields[0].startswith(prefix), fields
        assert "deeper than 20" in result.error.message
    stored = await get_frame(metadata_stub, draft.id, "at-limit")
    assert stored.meta == at_limit.meta


async def _fails(call) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return caught.value


@pytest.mark.parametrize("kind", ["map", "list"])
async def test_catalog_metadata_deeper_than_the_limit_is_refused(metadata_stub, kind: str) -> None:
    deep = meta_of(nested(MAX_DEPTH + 1, kind))
    error = await _fails(metadata_stub.CreateDataset(ms.CreateDatasetRequest(
        dataset=dataset_pb2.Dataset(name=f"deep-{uuid.uuid4().hex[:8]}", meta=deep))))
    assert [f[:len("dataset.meta.k")] for f in violated_fields(error)] == ["dataset.meta.k"]

    draft = await new_draft(metadata_stub)
    error = await _fails(metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_pb2.DatasetRef(id=draft.dataset_id),
        version=dataset_pb2.Version(name=f"v-{uuid.uuid4().hex[:8]}", meta=deep))))
    assert [f[:len("version.meta.k")] for f in violated_fields(error)] == ["version.meta.k"]

    at_limit = dataset_pb2.Dataset(name=f"deep-{uuid.uuid4().hex[:8]}", meta=meta_of(nested(MAX_DEPTH, kind)))
    created = await metadata_stub.CreateDataset(ms.CreateDatasetRequest(dataset=at_limit))
    assert created.meta == at_limit.meta


@pytest.mark.parametrize("kind", ["map", "list"])
async def test_view_rule_values_follow_the_same_limit(metadata_stub, kind: str) -> None:
    draft = await new_draft(metadata_stub)
    frame = image_frame("f")
    frame.meta.CopyFrom(meta_of(nested(MAX_DEPTH, kind)))
    await upload(metadata_stub, draft.id, items([frame]))

    def view(value: metadata_pb2.MetadataValue) -> view_pb2.View:
        rule = view_pb2.FilterRule(meta=view_pb2.MetadataRule(key="k", equals=value))
        return view_pb2.View(selections=[view_pb2.ViewSelection(version=by_id(draft.id), rules=[rule])])

    counted = await metadata_stub.CountViewFrames(ms.CountViewFramesRequest(view=view(nested(MAX_DEPTH, kind))))
    assert counted.count == 1
    error = await _fails(metadata_stub.CountViewFrames(ms.CountViewFramesRequest(
        view=view(nested(MAX_DEPTH + 1, kind)))))
    fields = violated_fields(error)
    assert len(fields) == 1 and fields[0].startswith("view.selections[0].rules[0].meta.equals"), fields


async def test_key_paths_have_as_many_segments_as_metadata_nests(metadata_stub) -> None:
    """View rules, queries, metadata orders, statistics keys and update masks all reach the deepest
    stored value (a path of 20 segments) and refuse one segment more naming their field, with
    the same message."""
    draft = await new_draft(metadata_stub)
    frame = image_frame("f")
    frame.meta.CopyFrom(meta_of(nested(MAX_DEPTH, "map")))
    await upload(metadata_stub, draft.id, items([frame]))
    deepest = ".".join(["k"] + ["a"] * (MAX_DEPTH - 1))
    x = metadata_pb2.MetadataValue(string_value="x")

    def rule_view(key: str) -> view_pb2.View:
        rule = view_pb2.FilterRule(meta=view_pb2.MetadataRule(key=key, equals=x))
        return view_pb2.View(selections=[view_pb2.ViewSelection(version=by_id(draft.id), rules=[rule])])

    def query_view(key: str) -> view_pb2.View:
        return view_pb2.View(selections=[view_pb2.ViewSelection(version=by_id(draft.id), query=f'meta.{key}:"x"')])

    def ordered_view(key: str) -> view_pb2.View:
        return view_pb2.View(selections=[view_pb2.ViewSelection(version=by_id(draft.id))],
                             order=view_pb2.ITERATION_ORDER_METADATA,
                             metadata_order=view_pb2.MetadataOrder(key=f"meta.{key}"))

    def statistics(key: str) -> ms.GetVersionStatisticsRequest:
        return ms.GetVersionStatisticsRequest(version=by_id(draft.id), meta_keys=[key])

    def masked_update(key: str) -> ms.UpdateFrameRequest:
        return ms.UpdateFrameRequest(version=by_id(draft.id), frame=frame,
                                     update_mask=field_mask_pb2.FieldMask(paths=[f"meta.{key}"]))

    assert (await metadata_stub.CountViewFrames(ms.CountViewFramesRequest(view=rule_view(deepest)))).count == 1
    assert (await metadata_stub.CountViewFrames(ms.CountViewFramesRequest(view=query_view(deepest)))).count == 1
    listed = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=ordered_view(deepest)))
    assert [listed_frame.id for listed_frame in listed.frames] == ["f"]
    [distribution] = (await metadata_stub.GetVersionStatistics(statistics(deepest))).meta_distributions
    assert [(count.value, count.count) for count in distribution.values] == [(x, 1)]
    value = frame.meta.fields["k"]
    for _ in range(MAX_DEPTH - 1):
        value = value.map_value.fields["a"]
    value.string_value = "y"
    assert (await metadata_stub.UpdateFrame(masked_update(deepest))).meta == frame.meta

    too_long = deepest + ".a"
    for call, field in (
            (lambda: metadata_stub.CountViewFrames(ms.CountViewFramesRequest(view=rule_view(too_long))),
             "view.selections[0].rules[0].meta.key"),
            (lambda: metadata_stub.CountViewFrames(ms.CountViewFramesRequest(view=query_view(too_long))),
             "view.selections[0].query"),
            (lambda: metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=ordered_view(too_long))),
             "view.metadata_order.key"),
            (lambda: metadata_stub.GetVersionStatistics(statistics(too_long)), "meta_keys[0]"),
            (lambda: metadata_stub.UpdateFrame(masked_update(too_long)), "update_mask.paths[0]")):
        error = await _fails(call())
        assert violated_fields(error) == [field]
        assert f"at most {MAX_DEPTH} segments" in error.details(), (field, error.details())
