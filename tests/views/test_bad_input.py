"""Bad view requests: the right status, with the offending field named."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from framevault.metadata.views.filters import MetaEquals
from framevault.metadata.views.query import QueryError, parse_query
from framevault.v1 import dataset_pb2, metadata_pb2, view_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .client import Stub, error_details, iterate, resource_info, view_of, violated_fields
from .corpus import Corpus, make_frame, ref

MISSING_ID = "0123456789abcdef01234567"


@pytest.fixture(scope="module")
async def version(corpus: Corpus) -> view_pb2.VersionRef:
    version = await corpus.version(await corpus.dataset())
    await corpus.put_many(version, [make_frame(f"f{i:02d}", context="c", timestamp=i, meta={"city": "$gt"})
                                    for i in range(30)])
    return ref(version)


async def _fails(call: Awaitable[Any] | Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if hasattr(call, "__aiter__"):
            async for _ in call:
                pass
        else:
            await call
    return caught.value


async def _iterate_fails(stub: Stub, **request: Any) -> grpc.aio.AioRpcError:
    return await _fails(stub.IterateFrames(ms.IterateFramesRequest(**request)))


def _selection(version: view_pb2.VersionRef, **kw: Any) -> view_pb2.ViewSelection:
    return view_pb2.ViewSelection(version=version, **kw)


async def test_unknown_version_is_not_found_naming_the_selection(version: view_pb2.VersionRef,
                                                                 metadata_stub: Stub) -> None:
    view = view_of(_selection(version), _selection(dataset_pb2.VersionRef(id=MISSING_ID)))
    for call in (
        metadata_stub.IterateFrames(ms.IterateFramesRequest(view=view)),
        metadata_stub.CountViewFrames(ms.CountViewFramesRequest(view=view)),
        metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view)),
    ):
        error = await _fails(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert violated_fields(error) == ["view.selections[1].version.id"]
        info = resource_info(error)
        assert info is not None and info.resource_type == "version" and info.resource_name == MISSING_ID


async def test_unknown_version_name_is_not_found(version: view_pb2.VersionRef, metadata_stub: Stub) -> None:
    missing = dataset_pb2.VersionRef(dataset=dataset_pb2.DatasetRef(id=MISSING_ID), name="nope")
    error = await _iterate_fails(metadata_stub, view=view_of(_selection(missing)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert violated_fields(error)[0].startswith("view.selections[0].version")


@pytest.mark.parametrize(("query", "position"), [
    ('label:"car" AND (', 17),
    ('label:"car" AND AND label:bus', 16),
    ("label:car bus", 10),
    ("colour:red", 0),
    ("meta.a.$where:1", 0),
    ("label:car~2", 6),
    ('meta.city:"unterminated', 10),
])
async def test_malformed_query_names_the_query_and_the_position(
    version: view_pb2.VersionRef, metadata_stub: Stub, query: str, position: int
) -> None:
    error = await _iterate_fails(metadata_stub, view=view_of(_selection(version), _selection(version, query=query)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["view.selections[1].query"]
    assert f"position {position}" in error.details()


@pytest.mark.parametrize(("query", "position", "fragment"), [
    ("meta.x:" + "9" * 400, 7, "out of range"),
    ("meta.x:[-1e400 TO 0]", 8, "out of range"),
    ("meta.x:1e400", 7, "out of range"),
    ("confidence:>1e300", 11, "[0, 1]"),
    ("confidence:[1e39 TO 2]", 11, "[0, 1]"),
    ("label:a AND confidence:>50", 23, "[0, 1]"),
    ("source.width:>9223372036854775807", 13, "out of range"),
    ("source.height:<=" + "9" * 30, 14, "out of range"),
    ("roi:(label:a AND count:>9223372036854775807)", 23, "out of range"),
    ('label:"a"~0.5', 9, "modifier"),
    ("label:a^1.2.3", 7, "modifier"),
])
async def test_out_of_range_numbers_in_queries_name_the_query_and_the_position(
    version: view_pb2.VersionRef, metadata_stub: Stub, query: str, position: int, fragment: str
) -> None:
    view = view_of(_selection(version, query=query))
    for call in (
        metadata_stub.IterateFrames(ms.IterateFramesRequest(view=view)),
        metadata_stub.CountViewFrames(ms.CountViewFramesRequest(view=view)),
        metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view)),
    ):
        error = await _fails(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
        assert violated_fields(error) == ["view.selections[0].query"]
        assert f"at position {position}:" in error.details() and fragment in error.details()


@pytest.mark.parametrize(("rule", "field"), [
    (view_pb2.RoiRule(min_confidence=2), "min_confidence"),
    (view_pb2.RoiRule(max_confidence=-0.5), "max_confidence"),
    (view_pb2.RoiRule(min_confidence=float("inf")), "min_confidence"),
])
async def test_confidence_bounds_of_rules_lie_in_the_unit_interval(
    version: view_pb2.VersionRef, metadata_stub: Stub, rule: view_pb2.RoiRule, field: str
) -> None:
    error = await _iterate_fails(metadata_stub, view=_with_rule(version, roi=rule))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == [f"view.selections[0].rules[0].roi.{field}"]


async def test_numbers_beyond_int64_still_filter_as_doubles(version: view_pb2.VersionRef, metadata_stub: Stub) -> None:
    # Every frame of the fixture has a string city: no number is below 1e30.
    assert (await iterate(metadata_stub, view_of(_selection(version, query="meta.n:<" + "9" * 30)))).ids == []
    assert len((await iterate(metadata_stub, view_of(_selection(version, query="source.width:<=9223372036854775807"))
                )).ids) == 30


@pytest.mark.parametrize(("request_fields", "field"), [
    ({"shard_index": 3, "shard_count": 3}, "shard_index"),
    ({"shard_index": -1, "shard_count": 3}, "shard_index"),
    ({"shard_index": 1, "shard_count": 0}, "shard_index"),
    ({"shard_count": -2}, "shard_count"),
    ({"frames_per_message": -1}, "frames_per_message"),
    ({"resume_cursor": "not-a-cursor"}, "resume_cursor"),
    ({"resume_cursor": "e30.AAAAAAAAAAAAAAAAAAAAAA"}, "resume_cursor"),
])
async def test_bad_request_fields(version: view_pb2.VersionRef, metadata_stub: Stub,
                                  request_fields: dict[str, Any], field: str) -> None:
    error = await _iterate_fails(metadata_stub, view=view_of(_selection(version)), **request_fields)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == [field]


def _with_rule(version: view_pb2.VersionRef, **rule: Any) -> view_pb2.View:
    return view_of(_selection(version, rules=[view_pb2.FilterRule(**rule)]))


def _map_value(fields: dict[str, str]) -> metadata_pb2.MetadataValue:
    members = {key: metadata_pb2.MetadataValue(string_value=value) for key, value in fields.items()}
    return metadata_pb2.MetadataValue(map_value=metadata_pb2.Metadata(fields=members))


@pytest.mark.parametrize(("view", "fields"), [
    (lambda v: view_pb2.View(), ["view.selections"]),
    (lambda v: view_of(view_pb2.ViewSelection()), ["view.selections[0].version"]),
    (lambda v: view_of(_selection(v, weight=-1)), ["view.selections[0].weight"]),
    (lambda v: view_of(_selection(v, weight=float("nan"))), ["view.selections[0].weight"]),
    (lambda v: view_of(_selection(v), max_frames=-5), ["view.max_frames"]),
    (lambda v: view_of(_selection(v), order=7), ["view.order"]),
    (lambda v: view_of(_selection(v), projection=field_mask_pb2.FieldMask(paths=["rois.nope", "meta.fields.x"])),
     ["view.projection.paths[0]", "view.projection.paths[1]"]),
    (lambda v: view_of(_selection(v, rules=[view_pb2.FilterRule()])), ["view.selections[0].rules[0]"]),
    (lambda v: _with_rule(v, meta=view_pb2.MetadataRule(key="a.$where", exists=True)),
     ["view.selections[0].rules[0].meta.key"]),
    (lambda v: _with_rule(v, meta=view_pb2.MetadataRule(key="a", equals=_map_value({"$gt": ""}))),
     ["view.selections[0].rules[0].meta.equals.$gt"]),
    (lambda v: _with_rule(v, meta=view_pb2.MetadataRule(
        key="a", range=view_pb2.ValueRange(min=metadata_pb2.MetadataValue(bool_value=True)))),
     ["view.selections[0].rules[0].meta.range.min"]),
    (lambda v: _with_rule(v, roi=view_pb2.RoiRule(
        labels=["car", ""], min_count=3, max_count=2, min_confidence=0.9, max_confidence=0.1)),
     ["view.selections[0].rules[0].roi.labels[1]", "view.selections[0].rules[0].roi.min_confidence",
      "view.selections[0].rules[0].roi.min_count"]),
    (lambda v: _with_rule(v, source=view_pb2.SourceRule(
        width=view_pb2.IntRange(min=-1), height=view_pb2.IntRange(min=5, max=4))),
     ["view.selections[0].rules[0].source.width.min", "view.selections[0].rules[0].source.height.min"]),
    (lambda v: view_of(_selection(v, label_mapping=[
        view_pb2.LabelMappingRule(from_labels=["car"], to_label="vehicle"),
        view_pb2.LabelMappingRule(from_labels=["car"], to_label="auto"),
        view_pb2.LabelMappingRule(to_label="")])),
     ["view.selections[0].label_mapping[1].from_labels[0]", "view.selections[0].label_mapping[2].to_label",
      "view.selections[0].label_mapping[2].from_labels"]),
])
async def test_invalid_views_name_every_bad_field(version: view_pb2.VersionRef, metadata_stub: Stub, view: Any,
                                                  fields: list[str]) -> None:
    error = await _iterate_fails(metadata_stub, view=view(version))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == fields


async def test_tampered_or_foreign_cursors_are_rejected(version: view_pb2.VersionRef, metadata_stub: Stub,
                                                        corpus: Corpus) -> None:
    view = view_of(_selection(version), order=view_pb2.ITERATION_ORDER_RANDOM, random_seed=1)
    stream = await iterate(metadata_stub, view, per_message=10, shard=(0, 2))
    cursor = stream.cursors[0][1]
    body, mac = cursor.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    other_view = view_of(_selection(version), order=view_pb2.ITERATION_ORDER_RANDOM, random_seed=2)

    for request in (
        ms.IterateFramesRequest(view=view, shard_index=0, shard_count=2, resume_cursor=f"{flipped}.{mac}"),
        ms.IterateFramesRequest(view=view, shard_index=0, shard_count=2, resume_cursor=cursor + "x"),
        ms.IterateFramesRequest(view=view, shard_index=1, shard_count=2, resume_cursor=cursor),
        ms.IterateFramesRequest(view=view, resume_cursor=cursor),
        ms.IterateFramesRequest(view=other_view, shard_index=0, shard_count=2, resume_cursor=cursor),
    ):
        error = await _fails(metadata_stub.IterateFrames(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(error) == ["resume_cursor"]

    # A page token is not an iteration cursor, nor the reverse.
    page = await metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view, page_size=5))
    error = await _fails(metadata_stub.IterateFrames(ms.IterateFramesRequest(view=view, resume_cursor=page.next_page_token)))
    assert violated_fields(error) == ["resume_cursor"]
    error = await _fails(metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view, page_token=cursor)))
    assert violated_fields(error) == ["page_token"]
    error = await _fails(metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view, page_size=-1)))
    assert violated_fields(error) == ["page_size"]


async def test_caller_text_stays_a_value(version: view_pb2.VersionRef, metadata_stub: Stub) -> None:
    # "$gt" is the stored city of every frame: matched literally, never an operator.
    matched = await iterate(metadata_stub, view_of(_selection(version, query='meta.city:"$gt"')))
    assert len(matched.ids) == 30
    equal = view_pb2.FilterRule(meta=view_pb2.MetadataRule(key="city", equals=metadata_pb2.MetadataValue(
        string_value="$gt")))
    assert len((await iterate(metadata_stub, view_of(_selection(version, rules=[equal])))).ids) == 30
    prefix = view_pb2.FilterRule(source=view_pb2.SourceRule(uri_prefix=".*"))
    assert (await iterate(metadata_stub, view_of(_selection(version, rules=[prefix])))).ids == []


async def test_errors_carry_error_info(version: view_pb2.VersionRef, metadata_stub: Stub) -> None:
    error = await _iterate_fails(metadata_stub, view=view_of(_selection(version, query="(")))
    assert any(type(d).__name__ == "ErrorInfo" and d.reason == "INVALID_ARGUMENT" for d in error_details(error))


async def test_request_and_view_problems_are_reported_together(version: view_pb2.VersionRef,
                                                               metadata_stub: Stub) -> None:
    error = await _iterate_fails(metadata_stub, view=view_of(_selection(version, weight=-2, query="label:")),
                                 shard_index=5, shard_count=2, frames_per_message=-1)
    assert sorted(violated_fields(error)) == ["frames_per_message", "shard_index", "view.selections[0].query",
                                              "view.selections[0].weight"]


def test_only_ascii_digits_make_numbers() -> None:
    # int() reads digits of every script; a query's numbers are ASCII.
    assert parse_query("meta.n:\u0663") == MetaEquals(("n",), "\u0663")
    with pytest.raises(QueryError):
        parse_query("source.width:\u0663")


async def test_every_list_call_takes_page_sizes_up_to_the_limit_and_refuses_larger(
        version: view_pb2.VersionRef, metadata_stub: Stub) -> None:
    """page_size is 1..1000 (0 = 100) on every list call of the metadata service: a larger one is
    INVALID_ARGUMENT naming page_size, not cut down to the limit on some calls and refused on others."""
    selection = _selection(version)
    view = view_of(selection)
    dataset = dataset_pb2.DatasetRef(id=(await metadata_stub.GetVersion(ms.GetVersionRequest(version=version))).dataset_id)
    calls = {
        "ListDatasets": lambda size: metadata_stub.ListDatasets(ms.ListDatasetsRequest(page_size=size)),
        "ListVersions": lambda size: metadata_stub.ListVersions(ms.ListVersionsRequest(dataset=dataset, page_size=size)),
        "ListFrames": lambda size: metadata_stub.ListFrames(ms.ListFramesRequest(version=version, page_size=size)),
        "ListViewFrames": lambda size: metadata_stub.ListViewFrames(ms.ListViewFramesRequest(view=view,
                                                                                             page_size=size)),
        "ListContexts": lambda size: metadata_stub.ListContexts(ms.ListContextsRequest(selection=selection,
                                                                                       page_size=size)),
        "ListContextFrames": lambda size: metadata_stub.ListContextFrames(ms.ListContextFramesRequest(
            selection=selection, context_id="c", page_size=size)),
    }
    for name, call in calls.items():
        await call(1000)
        for size in (1001, -1):
            error = await _fails(call(size))
            assert (error.code(), violated_fields(error)) == (grpc.StatusCode.INVALID_ARGUMENT, ["page_size"]), name
            assert "1..1000" in error.details(), (name, error.details())
