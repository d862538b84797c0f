"""The reference product's query spellings, sent over the wire as a Go, TypeScript,
Java or grpcurl user sends them, select the same frames as the Python SDK's
``DataView.add_query`` with the same queries and as the service's own names."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc import aio

from framevault.sdk import ClientSettings, DataView
from framevault.sdk.errors import InvalidArgumentError
from framevault.v1 import dataset_pb2, frame_pb2, view_pb2

from .client import Stub, frame_ids, view_of, violated_fields
from .corpus import Corpus, make_frame, ref, roi

try:
    from tests.sdk.helpers import sdk
except ModuleNotFoundError:  # tests/ itself is on sys.path when it is not a package
    from sdk.helpers import sdk  # type: ignore[no-redef]

__all__ = ["sdk"]


def _source(frame_id: str, width: int, content_type: str) -> frame_pb2.Source:
    return frame_pb2.Source(id="front", uri=f"s3://bucket/{frame_id}", content_type=content_type,
                            width=width, height=480)


@pytest.fixture(scope="module")
async def version(corpus: Corpus) -> dataset_pb2.VersionRef:
    version = await corpus.version(await corpus.dataset("dialect"))
    await corpus.put_many(version, [
        make_frame("f0", timestamp=0, rois=[roi("car")], meta={"city": "bremen"},
                   sources=[_source("f0.png", 640, "image/png")]),
        make_frame("f1", timestamp=1, rois=[roi("car", "occluded")], meta={"city": "hamburg"},
                   sources=[_source("f1.png", 1280, "image/png")]),
        make_frame("f2", timestamp=2, rois=[roi("bus", confidence=0.7)], meta={"city": "bremen"},
                   sources=[_source("f2.jpg", 1920, "image/jpeg")]),
        make_frame("f3", timestamp=3, meta={"speed": 50}, sources=[_source("f3.png", 320, "image/png")]),
        make_frame("f4", timestamp=4, rois=[roi("truck")], meta={"city": "bremen"},
                   sources=[_source("f4.png", 800, "image/png")]),
    ])
    return ref(version)


# (the SDK's add_query arguments, the one query a Go user writes, the same in
# the service's own names, the frames selected)
CASES: list[tuple[dict[str, Any], str, str, list[str]]] = [
    ({"roi_query": 'label.keyword:"car" AND NOT label.keyword:"occluded"'},
     'label.keyword:"car" AND NOT label.keyword:"occluded"', 'label:"car" AND NOT label:"occluded"', ["f0"]),
    ({"roi_query": "car OR (bus AND rois.confidence:[0.5 TO 1])"},
     "car OR (bus AND rois.confidence:[0.5 TO 1])", "label:car OR (label:bus AND confidence:[0.5 TO 1])",
     ["f0", "f1", "f2"]),
    ({"frame_query": 'metadata.city:"bremen"', "source_query": 'width:[640 TO *] AND sources.content_type:"image/png"'},
     'metadata.city:"bremen" AND width:[640 TO *] AND sources.content_type:"image/png"',
     'meta.city:"bremen" AND source.width:[640 TO *] AND source.content_type:"image/png"', ["f0", "f4"]),
    ({"roi_query": "rois.label:truck", "frame_query": "_exists_:meta_data.city"},
     "rois.label:truck AND _exists_:meta_data.city", "label:truck AND _exists_:meta.city", ["f4"]),
]


@pytest.mark.parametrize(("sdk_query", "wire_query", "own_query", "expected"), CASES)
async def test_reference_queries_select_the_same_frames_over_the_wire_and_through_the_sdk(
    version: dataset_pb2.VersionRef, metadata_stub: Stub, sdk: ClientSettings,
    sdk_query: dict[str, Any], wire_query: str, own_query: str, expected: list[str],
) -> None:
    over_the_wire = await frame_ids(metadata_stub, view_of(view_pb2.ViewSelection(version=version, query=wire_query)))
    own_names = await frame_ids(metadata_stub, view_of(view_pb2.ViewSelection(version=version, query=own_query)))
    view = DataView()
    view.add_query(version_id=version.id, **sdk_query)
    through_the_sdk = [frame.id async for frame in view.aget_iterator(as_proto=True)]
    assert over_the_wire == own_names == through_the_sdk == expected


async def test_reference_query_errors_name_the_query_and_the_position_as_written(
    version: dataset_pb2.VersionRef, metadata_stub: Stub, sdk: ClientSettings,
) -> None:
    query = 'label.keyword:"car" AND metadata.$x:1'
    with pytest.raises(aio.AioRpcError) as caught:
        await frame_ids(metadata_stub, view_of(view_pb2.ViewSelection(version=version, query=query)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["view.selections[0].query"]
    assert "at position 24: field 'metadata.$x'" in (caught.value.details() or "")

    view = DataView()
    view.add_query(version_id=version.id, roi_query=query)
    with pytest.raises(InvalidArgumentError) as raised:
        await view.aget_count()
    assert [(v.field, v.description.split(":")[0]) for v in raised.value.field_violations] == [
        ("view.selections[0].query", "at position 24")]
