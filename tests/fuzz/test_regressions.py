"""Minimal failing requests found by the fuzzer and by the black-box review,
kept as explicit cases so they stay covered whatever the random search does.

Each case runs through the same oracle as the fuzzed requests (no INTERNAL
or UNKNOWN, named field violations, healthy services, published versions
unchanged). ``{{...}}`` names values of the seeded world (``world.py``);
``{{forge:<token>:<leaf>:<edge>}}`` is a real token with payload value number
``leaf`` replaced by ``TOKEN_JSON_EDGES[edge]`` and re-sealed.
"""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

from framevault.v1 import blob_pb2, dataset_pb2, frame_pb2, metadata_pb2, view_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .harness import ALL_RPCS
from .runner import UNDECODABLE, FuzzEnv, RawRecipe, run_example, run_raw_example
from .strategies import TOKEN_JSON_EDGES, nested_value, placeholder
from .world import BLOBS, digest_of, seed_frame

pytestmark = pytest.mark.fuzz



def _ref(name: str) -> dataset_pb2.VersionRef:
    return dataset_pb2.VersionRef(id="{{" + name + "}}")


def _forged(token: str, leaf: int, value: object) -> str:
    edge = next(i for i, v in enumerate(TOKEN_JSON_EDGES) if v == value and type(v) is type(value))
    return placeholder(f"forge:{token}:{leaf}:{edge}")


def _set(msg: Message, field: str, value: Message) -> Message:
    """``msg`` with ``field`` set by copying: constructors and MergeFrom of the
    Python runtime go through its decoder, which refuses deep messages."""
    getattr(msg, field).CopyFrom(value)
    return msg


def _upload(*frames: frame_pb2.Frame, version: str = "draft.id") -> list[Message]:
    items = ms.UploadFramesRequest()
    for i, frame in enumerate(frames):
        item = items.items.add(client_key=f"k{i}")
        item.frame.CopyFrom(frame)
    return [ms.UploadFramesRequest(options=ms.UploadOptions(version=_ref(version), upload_retries=1)), items]


def _frame_with_uri(uri: str, frame_id: str = "r000") -> frame_pb2.Frame:
    frame = seed_frame(frame_id, 1)
    frame.sources[0].uri = uri
    return frame


def _deep_meta(depth: int, lists: bool = False) -> metadata_pb2.Metadata:
    out = metadata_pb2.Metadata()
    out.fields["deep"].CopyFrom(nested_value(depth, ["k"], [lists], metadata_pb2.MetadataValue(int_value=1)))
    return out


def _frame_with_meta(meta: metadata_pb2.Metadata, frame_id: str = "r001") -> frame_pb2.Frame:
    return _set(seed_frame(frame_id, 2), "meta", meta)


def _deep_source_frame(depth: int) -> frame_pb2.Frame:
    frame = seed_frame("d001", 5)
    frame.sources[0].meta.CopyFrom(_deep_meta(depth))
    return frame


def _deep_rule_view(depth: int) -> ms.IterateFramesRequest:
    request = ms.IterateFramesRequest(view=view_pb2.View(selections=[view_pb2.ViewSelection(
        version=_ref("published.id"))]))
    rule = request.view.selections[0].rules.add().meta
    rule.key = "deep"
    rule.equals.CopyFrom(nested_value(depth, ["k"], [False], metadata_pb2.MetadataValue(int_value=1)))
    return request


def _iterate(query: str, version: str = "published.id") -> list[Message]:
    return [ms.IterateFramesRequest(view=view_pb2.View(selections=[view_pb2.ViewSelection(
        version=_ref(version), query=query)]))]


_BLOB_HASH = digest_of(BLOBS[0]).hash
_BLOB_URI = f"blob:sha256/{_BLOB_HASH}"

CASES: list[tuple[str, str, list[Message]]] = [
    # A real (published) version id with a dataset ref that resolves to nothing.
    ("delete-published-through-unresolved-dataset", "DeleteVersion", [ms.DeleteVersionRequest(
        version=dataset_pb2.VersionRef(dataset=dataset_pb2.DatasetRef(id="000000000000000000000000"),
                                       id="{{published.id}}"))]),
    ("delete-published-through-dataset-name", "DeleteVersion", [ms.DeleteVersionRequest(
        version=dataset_pb2.VersionRef(dataset=dataset_pb2.DatasetRef(name="no such dataset"),
                                       id="{{published2.id}}"))]),
    # Blob URIs with sizes that are not int64 or not ASCII digits.
    ("blob-uri-size-past-int64", "UploadFrames",
     _upload(_frame_with_uri(f"{_BLOB_URI}/99999999999999999999"), seed_frame("r002", 3))),
    ("blob-uri-size-superscript-digit", "UploadFrames",
     _upload(_frame_with_uri(f"{_BLOB_URI}/²"), seed_frame("r003", 3))),
    ("blob-uri-size-arabic-digit", "UploadFrames", _upload(_frame_with_uri(f"{_BLOB_URI}/٣"))),
    ("blob-uri-size-int64-max", "UploadFrames", _upload(_frame_with_uri(f"{_BLOB_URI}/9223372036854775807"))),
    # Metadata nested past the documented limit and past the decoder's.
    ("frame-meta-depth-21", "UploadFrames", _upload(_frame_with_meta(_deep_meta(21)), seed_frame("r004", 4))),
    ("frame-meta-depth-33", "UploadFrames", _upload(_frame_with_meta(_deep_meta(33)), seed_frame("r005", 4))),
    ("frame-meta-depth-40", "UploadFrames", _upload(_frame_with_meta(_deep_meta(40)), seed_frame("r006", 4))),
    ("frame-meta-list-depth-20", "UploadFrames", _upload(_frame_with_meta(_deep_meta(20, lists=True)))),
    ("frame-meta-list-depth-60", "UploadFrames", _upload(_frame_with_meta(_deep_meta(60, lists=True)))),
    ("dataset-meta-depth-40", "CreateDataset", [_set(ms.CreateDatasetRequest(), "dataset", _set(
        dataset_pb2.Dataset(name="fz-deep-meta"), "meta", _deep_meta(40)))]),
    ("version-meta-depth-34", "UpdateVersion", [_set(ms.UpdateVersionRequest(
        version_ref=_ref("draft.id"), update_mask={"paths": ["meta"]}), "version",
        _set(dataset_pb2.Version(), "meta", _deep_meta(34)))]),
    ("view-rule-value-depth-31", "IterateFrames", [_deep_rule_view(31)]),
    ("dataset-update-meta-depth-40", "UpdateDataset", [_set(ms.UpdateDatasetRequest(
        dataset_ref=dataset_pb2.DatasetRef(id="{{playground.id}}"), update_mask={"paths": ["meta"]}), "dataset",
        _set(dataset_pb2.Dataset(), "meta", _deep_meta(40)))]),
    ("frame-update-source-meta-depth-40", "UpdateFrame", [_set(ms.UpdateFrameRequest(
        version=_ref("draft.id"), update_mask={"paths": ["sources"]}), "frame",
        _deep_source_frame(40))]),
    # Queries with numbers out of range.
    ("query-meta-400-digits", "IterateFrames", _iterate("meta.x:" + "9" * 400)),
    ("query-confidence-1e300", "IterateFrames", _iterate("confidence:>1e300")),
    ("query-confidence-range-1e39", "IterateFrames", _iterate("confidence:[1e39 TO 2]")),
    ("query-width-int64-max", "IterateFrames", _iterate("source.width:>9223372036854775807")),
    ("query-roi-count-int64-max", "CountViewFrames", [ms.CountViewFramesRequest(view=view_pb2.View(selections=[
        view_pb2.ViewSelection(version=_ref("published.id"),
                               query="roi:(label:a AND count:>9223372036854775807)")]))]),
    # Forged page tokens and cursors (re-sealed as an outsider can).
    ("list-frames-token-timestamp-2^70", "ListFrames", [ms.ListFramesRequest(
        version=_ref("published.id"), page_size=4, page_token=_forged("token.frames", 1, 2**70))]),
    ("list-versions-token-created-1e20", "ListVersions", [ms.ListVersionsRequest(
        dataset=dataset_pb2.DatasetRef(id="{{dataset.id}}"), page_size=1,
        page_token=_forged("token.versions", 0, 1e20))]),
    ("list-datasets-token-object", "ListDatasets", [ms.ListDatasetsRequest(
        page_size=1, page_token=_forged("token.datasets", 0, {"$gt": ""}))]),
    ("random-cursor-bucket-bits-40", "IterateFrames", [ms.IterateFramesRequest(
        view=view_pb2.View(selections=[view_pb2.ViewSelection(version=_ref("published.id"))],
                           order=view_pb2.ITERATION_ORDER_RANDOM, random_seed=7),
        frames_per_message=3, resume_cursor=_forged("cursor.random", 3, 40))]),
    # Long caller values echoed into the error: the status trailer outgrows
    # what clients accept and they see RESOURCE_EXHAUSTED instead.
    ("echo-long-dataset-name", "ListVersions", [ms.ListVersionsRequest(
        dataset=dataset_pb2.DatasetRef(name="x" * 4097))]),
    ("echo-long-mask-paths", "UpdateDataset", [ms.UpdateDatasetRequest(
        dataset_ref=dataset_pb2.DatasetRef(id="{{playground.id}}"), dataset=dataset_pb2.Dataset(description="d"),
        update_mask={"paths": ["é" * 3000, "x" * 3000, "ü" * 3000]})]),
    ("echo-long-meta-key", "CreateDataset", [ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(
        name="fz-long-key", meta=metadata_pb2.Metadata(fields={"x" * 4097: metadata_pb2.MetadataValue(int_value=1)})))]),
    ("echo-long-dataset-name-get", "GetDataset", [ms.GetDatasetRequest(
        dataset=dataset_pb2.DatasetRef(name="y" * 70_000))]),
    ("echo-long-statistics-key", "GetVersionStatistics", [ms.GetVersionStatisticsRequest(
        version=_ref("published.id"), meta_keys=["x" * 4097])]),
    ("echo-long-projection-path", "ListViewFrames", [ms.ListViewFramesRequest(view=view_pb2.View(
        selections=[view_pb2.ViewSelection(version=_ref("published.id"))], projection={"paths": ["x" * 4097]}))]),
    ("echo-long-version-mask-path", "UpdateVersion", [ms.UpdateVersionRequest(
        version_ref=_ref("draft.id"), version=dataset_pb2.Version(description="x"),
        update_mask={"paths": ["x" * 4097]})]),
    ("echo-long-frame-id", "GetFrame", [ms.GetFrameRequest(version=_ref("published.id"), frame_id="y" * 70_000)]),
    # Durations past what datetime can hold.
    ("gc-grace-1e11", "CollectGarbage", [blob_pb2.CollectGarbageRequest(dry_run=True, grace_period_seconds=10**11)]),
    ("gc-grace-int64-max", "CollectGarbage", [blob_pb2.CollectGarbageRequest(
        dry_run=True, grace_period_seconds=2**63 - 1)]),
]


@pytest.mark.parametrize(("rpc_name", "requests"), [pytest.param(rpc, reqs, id=name) for name, rpc, reqs in CASES])
async def test_known_failing_request(fuzz_env: FuzzEnv, rpc_name: str, requests: list[Message]) -> None:
    await run_example(fuzz_env, ALL_RPCS[rpc_name], requests)


@pytest.mark.parametrize("rpc_name", sorted(ALL_RPCS))
@pytest.mark.parametrize("junk", range(len(UNDECODABLE)))
async def test_undecodable_request_bytes(fuzz_env: FuzzEnv, rpc_name: str, junk: int) -> None:
    """Bytes no decoder accepts, as the only (or first) message of every RPC."""
    await run_raw_example(fuzz_env, ALL_RPCS[rpc_name], RawRecipe([None], [(3, 0.0, UNDECODABLE[junk])]))


async def test_upload_options_cut_in_half(fuzz_env: FuzzEnv) -> None:
    """Found by the fuzzer: the options message of UploadFrames cut inside the version id."""
    options = ms.UploadFramesRequest(options=ms.UploadOptions(version=_ref("draft.id")))
    await run_raw_example(fuzz_env, ALL_RPCS["UploadFrames"], RawRecipe([options], [(0, 0.5, b"")]))
