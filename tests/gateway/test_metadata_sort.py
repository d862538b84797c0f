"""The frames listing sorted by a metadata key (``sort=meta.<key>``, ``desc=1``) over the real services."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from framevault.api.metadata_values import dict_to_metadata
from framevault.v1 import dataset_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .conftest import _upload, seeded_frame

# Frame id -> meta.speed (None: the frame has no speed).
SPEEDS: dict[str, Any] = {"f-slow": 12, "f-fast": 88.5, "f-tie-b": 40, "f-tie-a": 40.0, "f-text": "n/a",
                          "f-none": None}


@pytest.fixture(scope="module")
async def sorted_version(metadata_stub: Any) -> str:
    """The frames page of a published version whose frames carry meta.speed of several types."""
    dataset = await metadata_stub.CreateDataset(ms.CreateDatasetRequest(
        dataset=dataset_pb2.Dataset(name=f"gateway-sort-{uuid.uuid4().hex[:8]}")))
    version = await metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_pb2.DatasetRef(id=dataset.id), version=dataset_pb2.Version(name="root")))
    frames = []
    for i, (frame_id, speed) in enumerate(SPEEDS.items()):
        frame = seeded_frame(frame_id, f"drive-{i % 2}", i, (10 * i, 20, 30), "car")
        if speed is not None:
            frame.meta.CopyFrom(dict_to_metadata({"speed": speed}))
        frames.append(frame)
    await _upload(metadata_stub, version.id, frames)
    await metadata_stub.PublishVersion(ms.PublishVersionRequest(version=dataset_pb2.VersionRef(id=version.id)))
    return f"/api/datasets/{dataset.id}/versions/{version.id}/frames"


async def _listed(web: httpx.AsyncClient, frames: str, params: dict[str, str]) -> list[str]:
    seen: list[str] = []
    token = ""
    while True:
        answer = await web.get(frames, params={**params, "page_size": "2", "page_token": token})
        assert answer.status_code == 200, answer.text
        seen += [frame["id"] for frame in answer.json()["frames"]]
        token = answer.json()["next_page_token"]
        if not token:
            return seen


async def test_sort_by_a_metadata_key_answers_in_order_both_ways(admin_web: httpx.AsyncClient,
                                                                 sorted_version: str) -> None:
    # Numbers by value (40 and 40.0 tie: frame id), then strings; frames without the key last.
    assert await _listed(admin_web, sorted_version, {"sort": "meta.speed"}) == [
        "f-slow", "f-tie-a", "f-tie-b", "f-fast", "f-text", "f-none"]
    assert await _listed(admin_web, sorted_version, {"sort": "meta.speed", "desc": "1"}) == [
        "f-text", "f-fast", "f-tie-a", "f-tie-b", "f-slow", "f-none"]
    assert await _listed(admin_web, sorted_version, {"sort": "metadata.speed", "query": "meta.speed:>=40"}) == [
        "f-tie-a", "f-tie-b", "f-fast"]
    # The sequential order is unchanged.
    assert await _listed(admin_web, sorted_version, {}) == ["f-slow", "f-tie-b", "f-text", "f-fast", "f-tie-a",
                                                            "f-none"]


@pytest.mark.parametrize("key", ["meta.", "meta.a..b", "meta.$where", "meta." + ".".join(["k"] * 21)])
async def test_a_bad_metadata_key_is_400_naming_sort(admin_web: httpx.AsyncClient, sorted_version: str,
                                                     key: str) -> None:
    answer = await admin_web.get(sorted_version, params={"sort": key})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert [f["field"] for f in error["fields"]] == ["sort"]


async def test_a_metadata_sort_inside_one_context_is_refused(admin_web: httpx.AsyncClient,
                                                              sorted_version: str) -> None:
    answer = await admin_web.get(sorted_version, params={"sort": "meta.speed", "context": "drive-0"})
    assert answer.status_code == 400
    assert [f["field"] for f in answer.json()["error"]["fields"]] == ["sort"]
