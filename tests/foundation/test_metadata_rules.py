"""Datasets, versions, view rule values and frames refuse the same metadata keys and values with the
same messages, under the field of the metadata that carries them: one rule set (the frame codec's)."""

from __future__ import annotations

import uuid

import grpc
import pytest
from frames.helpers import FAILED, by_id, image_frame, items, new_draft, upload
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from support import error_details, status_details

from framevault.v1 import dataset_pb2, metadata_pb2, view_pb2
from framevault.v1 import metadata_service_pb2 as ms


def bad_metadata() -> metadata_pb2.Metadata:
    """One of each problem a metadata object can have, a nested key among them."""
    meta = metadata_pb2.Metadata()
    for key in ("", "a.b", "$gt", "nul\x00", "k" * 257):
        meta.fields[key].int_value = 1
    meta.fields["nan"].double_value = float("nan")
    meta.fields["unset"].CopyFrom(metadata_pb2.MetadataValue())
    meta.fields["inner"].map_value.fields["x.y"].string_value = "v"
    meta.fields["listed"].list_value.values.add()
    deep = meta.fields["deep"]
    for _ in range(20):
        deep = deep.list_value.values.add()
    deep.string_value = "too deep"
    return meta


# Field paths are compared up to this many characters: the service shortens long ones (the key of
# 257 bytes) to a length that counts the carrier's own prefix.
SHOWN_PATH_CHARS = 100


def relative(violations: list[error_details_pb2.BadRequest.FieldViolation], field: str) -> list[tuple[str, str]]:
    """(path below ``field``, description) of each violation, all of which lie at or below ``field``."""
    assert all(v.field == field or v.field.startswith((f"{field}.", f"{field}[")) for v in violations), violations
    return [(v.field.removeprefix(field)[:SHOWN_PATH_CHARS], v.description) for v in violations]


def bad_request(details: list[object]) -> list[error_details_pb2.BadRequest.FieldViolation]:
    return [v for d in details if isinstance(d, error_details_pb2.BadRequest) for v in d.field_violations]


async def refused(call) -> list[error_details_pb2.BadRequest.FieldViolation]:
    with pytest.raises(aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return bad_request(error_details(caught.value))


async def test_catalog_metadata_view_values_and_frames_refuse_the_same_keys_with_the_same_messages(metadata_stub):
    meta = bad_metadata()
    draft = await new_draft(metadata_stub)
    frame = image_frame("bad-meta")
    frame.meta.CopyFrom(meta)
    run = await upload(metadata_stub, draft.id, items([frame]))
    assert run.outcomes() == [FAILED]
    error: status_pb2.Status = run.results[0].error
    frame_problems = relative(bad_request(status_details(error)), "frames[0].meta")
    assert ("", "keys must not be empty") in frame_problems
    assert (".a.b", "keys must not contain '.'") in frame_problems
    assert (".inner.x.y", "keys must not contain '.'") in frame_problems
    assert (".nan", "numbers must be finite") in frame_problems
    assert (".listed[0]", "value has no kind set") in frame_problems
    assert ("." + "k" * (SHOWN_PATH_CHARS - 1), "keys must be at most 256 bytes") in frame_problems

    dataset = await refused(metadata_stub.CreateDataset(ms.CreateDatasetRequest(
        dataset=dataset_pb2.Dataset(name=f"bad-meta-{uuid.uuid4().hex[:8]}", meta=meta))))
    assert relative(dataset, "dataset.meta") == frame_problems
    version = await refused(metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_pb2.DatasetRef(id=draft.dataset_id),
        version=dataset_pb2.Version(name=f"v-{uuid.uuid4().hex[:8]}", meta=meta))))
    assert relative(version, "version.meta") == frame_problems
    equals = metadata_pb2.MetadataValue()
    equals.map_value.CopyFrom(meta)
    rule = view_pb2.FilterRule(meta=view_pb2.MetadataRule(key="k", equals=equals))
    view = view_pb2.View(selections=[view_pb2.ViewSelection(version=by_id(draft.id), rules=[rule])])
    view_problems = await refused(metadata_stub.CountViewFrames(ms.CountViewFramesRequest(view=view)))
    # The rule's value holds the metadata one level down: its deepest member is too deep one level sooner.
    assert relative(view_problems, "view.selections[0].rules[0].meta.equals") == [
        (path.removesuffix("[0]") if path.startswith(".deep") else path, problem) for path, problem in frame_problems]
