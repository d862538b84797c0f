"""Rich error parsing and query normalisation (pure, no services)."""

from __future__ import annotations

import grpc
import pytest

from framevault.common.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
    Unavailable,
)
from framevault.sdk import DataView, IterationOrder
from framevault.sdk.errors import (
    STATUS_DETAILS_KEY,
    FailedPreconditionError,
    FramevaultError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from framevault.sdk.queries import combine_queries, roi_query_text


class FakeRpcError(grpc.RpcError):
    """What a failed aio call exposes: code, details, trailing metadata."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple = ()) -> None:
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailing


def rpc_error_from(server_error) -> FakeRpcError:
    status = server_error.to_status()
    return FakeRpcError(server_error.code, server_error.message,
                        ((STATUS_DETAILS_KEY, status.SerializeToString()),))


def test_invalid_argument_carries_field_violations() -> None:
    server = InvalidArgument([FieldViolation("frames[3].rois[0].confidence", "must be within [0, 1]"),
                              FieldViolation("frames[4].id", "too long")])
    error = FramevaultError.from_rpc_error(rpc_error_from(server))
    assert isinstance(error, InvalidArgumentError)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.field_violations] == ["frames[3].rois[0].confidence", "frames[4].id"]
    assert error.reason == "INVALID_ARGUMENT"
    assert error.domain == "framevault.dev"
    assert "frames[3].rois[0].confidence: must be within [0, 1]" in error.detail_lines()
    assert str(error).startswith("INVALID_ARGUMENT: ")


def test_not_found_carries_resource_info() -> None:
    error = FramevaultError.from_rpc_error(rpc_error_from(NotFound("dataset", "cars")))
    assert isinstance(error, NotFoundError)
    assert error.resource_info is not None
    assert (error.resource_info.resource_type, error.resource_info.resource_name) == ("dataset", "cars")
    assert error.reason == "DATASET_NOT_FOUND"


def test_precondition_and_retry_details() -> None:
    pre = FramevaultError.from_rpc_error(rpc_error_from(FailedPrecondition(
        "blobs missing", [PreconditionViolation("MISSING_BLOB", "sha256/ab/1", "not stored")])))
    assert isinstance(pre, FailedPreconditionError)
    assert [(v.type, v.subject) for v in pre.precondition_violations] == [("MISSING_BLOB", "sha256/ab/1")]
    retry = FramevaultError.from_rpc_error(rpc_error_from(Unavailable("busy", retry_after_ms=250)))
    assert isinstance(retry, UnavailableError)
    assert retry.retry_delay == pytest.approx(0.25)


def test_status_from_a_per_item_result() -> None:
    status = InvalidArgument.field("frames[0].sources", "at least one source").to_status()
    error = FramevaultError.from_status(status)
    assert isinstance(error, InvalidArgumentError)
    assert error.field_violations[0].field == "frames[0].sources"


def test_error_without_details_and_garbled_trailer() -> None:
    plain = FramevaultError.from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused"))
    assert isinstance(plain, UnavailableError) and plain.message == "connection refused"
    garbled = FramevaultError.from_rpc_error(
        FakeRpcError(grpc.StatusCode.INTERNAL, "boom", ((STATUS_DETAILS_KEY, b"\xff\xfe not a proto"),)))
    assert garbled.code is grpc.StatusCode.INTERNAL and garbled.message == "boom"


# The service reads these reference-product queries as the ones of its own
# language beside them (tests/views/test_units.py checks the same pairs).
@pytest.mark.parametrize("query, sent", [
    ("Car", "Car"),
    ('label.keyword:"Car" AND NOT label.keyword:"occluded"', 'label.keyword:"Car" AND NOT label.keyword:"occluded"'),
    (" Car OR (Bus AND confidence:[0.5 TO 1]) ", "Car OR (Bus AND confidence:[0.5 TO 1])"),
    (["car", "bus"], 'label:"car" OR label:"bus"'),
    (['say "hi"', ""], 'label:"say \\"hi\\""'),
    ("rois.label:truck", "rois.label:truck"),
])
def test_roi_queries_are_sent_as_written(query, sent: str) -> None:
    assert roi_query_text(query) == sent


def test_source_query_and_bad_syntax_are_sent_as_written() -> None:
    view = DataView()
    view.add_query(dataset_name="cars", source_query='width:[640 TO *] AND sources.content_type:"image/png"')
    view.add_query(dataset_name="cars", roi_query="AND ((")
    assert [s.query for s in view.to_proto().selections] == [
        'width:[640 TO *] AND sources.content_type:"image/png"', "AND (("]
    assert combine_queries("label:a", "", "meta.x:1") == "(label:a) AND (meta.x:1)"


def test_view_proto_combines_queries_mapping_and_labels() -> None:
    view = DataView(iteration_order="random", iteration_infinite=False, maximum_number_of_frames=50, random_seed=7,
                    projection=["rois"])
    view.add_query(dataset_name="cars", version_name="v1", roi_query="car", frame_query='meta.city:"bremen"',
                   source_query="width:640", weight=2)
    view.add_query(dataset_name="trucks", roi_query=["truck"])
    view.add_mapping_rule(dataset_name="cars", version_name="v1", from_labels=["car", "van"], to_label="vehicle")
    view.add_mapping_rule(dataset_name="trucks", from_labels=["truck"], to_label="vehicle")
    view.set_labels({"vehicle": 1})

    proto = view.to_proto()

    assert view.iteration_order is IterationOrder.random
    assert (proto.random_seed, proto.max_frames, proto.infinite) == (7, 50, False)
    assert list(proto.projection.paths) == ["rois"]
    assert dict(proto.label_enumeration) == {"vehicle": 1}
    first, second = proto.selections
    assert first.query == '(car) AND (meta.city:"bremen") AND (width:640)'
    assert first.weight == 2
    assert (first.version.dataset.name, first.version.name) == ("cars", "v1")
    assert [(list(r.from_labels), r.to_label) for r in first.label_mapping] == [(["car", "van"], "vehicle")]
    assert (second.version.dataset.name, second.version.name) == ("trucks", "Current")
    assert [r.to_label for r in second.label_mapping] == ["vehicle"]


def test_view_without_query_or_with_bad_weight_is_refused() -> None:
    with pytest.raises(ValueError):
        DataView().to_proto()
    with pytest.raises(ValueError):
        DataView().add_query(dataset_name="x", weight=0)
    with pytest.raises(ValueError):
        DataView(iteration_infinite=True).add_query()
