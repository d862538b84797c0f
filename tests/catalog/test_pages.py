"""Pages of ListDatasets, ListVersions and ListFrames: what a page token can
carry and how much one page can hold.

Page tokens are signed: a token someone made up — with the unkeyed checksum
tokens once had, or even signed with a known secret but holding a position no
item can have — is INVALID_ARGUMENT on `page_token`. Every page fits the
4 MiB message limit gRPC clients use by default, however large the items:
dataset and version fields are bounded, and a page ends early at its byte
budget with a token to continue.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf import field_mask_pb2
from support import channel_to

from framevault.metadata.catalog.page_tokens import MAX_PAGE_BYTES, query_digest
from framevault.metadata.catalog.validation import MAX_MASK_LABELS_BYTES, MAX_META_BYTES
from framevault.v1 import dataset_pb2, frame_pb2, metadata_pb2, metadata_service_pb2_grpc
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import (
    by_id,
    dataset_ref,
    expect_invalid,
    make_frame,
    mint_page_token,
    new_dataset,
    unique_name,
    write_frames,
)

CLIENT_DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024


def unkeyed_token(after: list[Any], query: str) -> str:
    """A token in the earlier format, its checksum recomputed as anyone can."""
    body: dict[str, Any] = {"v": 1, "a": after, "q": query}
    body["c"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def meta_of_bytes(size: int) -> metadata_pb2.Metadata:
    """Metadata of about ``size`` encoded bytes, never more."""
    def of_text(length: int) -> metadata_pb2.Metadata:
        return metadata_pb2.Metadata(fields={"blob": metadata_pb2.MetadataValue(string_value="x" * length)})
    return of_text(size - (of_text(size).ByteSize() - size))


@pytest.fixture
async def default_client(metadata_service) -> AsyncIterator[metadata_service_pb2_grpc.MetadataServiceStub]:
    """A client with gRPC's default message limits, like most callers."""
    async with channel_to(metadata_service.port, options=[]) as channel:
        yield metadata_service_pb2_grpc.MetadataServiceStub(channel)


async def test_made_up_page_tokens_are_invalid_arguments(metadata_stub, db, settings):
    dataset, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [make_frame("a"), make_frame("b")])
    cases = [
        (lambda token: metadata_stub.ListFrames(ms.ListFramesRequest(version=by_id(current.id), page_token=token)),
         query_digest("frames", current.id), [["ctx", 2**70, "a"], ["ctx", 0, "\ud800"], ["ctx", "0", "a"]]),
        (lambda token: metadata_stub.ListVersions(ms.ListVersionsRequest(dataset=dataset_ref(dataset.id),
                                                                         page_token=token)),
         query_digest("versions", dataset.id), [[10**20, current.id], [0, {"$gt": ""}], [-(10**18), current.id]]),
        (lambda token: metadata_stub.ListDatasets(ms.ListDatasetsRequest(page_token=token)),
         query_digest("datasets", "", []), [["\ud800"], [{"$ne": None}], ["x" * 10_000]]),
    ]
    for call, query, positions in cases:
        for after in positions:
            for token in (unkeyed_token(after, query), mint_page_token(settings.view_cursor_secret.get_secret_value(), after, query)):
                await expect_invalid(db, call(token), "page_token")


async def test_a_page_token_continues_only_the_list_it_came_from(metadata_stub, db):
    dataset, current = await new_dataset(metadata_stub)
    await write_frames(metadata_stub, current.id, [make_frame("a"), make_frame("b")])
    frames = await metadata_stub.ListFrames(ms.ListFramesRequest(version=by_id(current.id), page_size=1))
    assert frames.next_page_token
    _, other = await new_dataset(metadata_stub)
    await expect_invalid(db, metadata_stub.ListFrames(ms.ListFramesRequest(
        version=by_id(other.id), page_token=frames.next_page_token)), "page_token")
    await expect_invalid(db, metadata_stub.ListVersions(ms.ListVersionsRequest(
        dataset=dataset_ref(dataset.id), page_token=frames.next_page_token)), "page_token")
    rest = await metadata_stub.ListFrames(ms.ListFramesRequest(version=by_id(current.id),
                                                               page_token=frames.next_page_token))
    assert [f.id for f in [*frames.frames, *rest.frames]] == ["a", "b"] and not rest.next_page_token


async def test_dataset_and_version_fields_are_bounded(metadata_stub, db):
    dataset, current = await new_dataset(metadata_stub)
    too_big = meta_of_bytes(MAX_META_BYTES + 1)
    assert too_big.ByteSize() == MAX_META_BYTES + 1
    await expect_invalid(db, metadata_stub.CreateDataset(ms.CreateDatasetRequest(
        dataset=dataset_pb2.Dataset(name=unique_name(), meta=meta_of_bytes(5_400_000)))), "dataset.meta")
    await expect_invalid(db, metadata_stub.UpdateDataset(ms.UpdateDatasetRequest(
        dataset_ref=dataset_ref(dataset.id), dataset=dataset_pb2.Dataset(meta=too_big),
        update_mask=field_mask_pb2.FieldMask(paths=["meta"]))), "dataset.meta")
    await expect_invalid(db, metadata_stub.CreateVersion(ms.CreateVersionRequest(
        dataset=dataset_ref(dataset.id), version=dataset_pb2.Version(name="v", meta=too_big))), "version.meta")
    await expect_invalid(db, metadata_stub.UpdateVersion(ms.UpdateVersionRequest(
        version_ref=by_id(current.id), version=dataset_pb2.Version(meta=too_big),
        update_mask=field_mask_pb2.FieldMask(paths=["meta"]))), "version.meta")
    many_labels = [dataset_pb2.MaskLabel(value=[1, 2, 3], labels=[f"label {i:06d}" for i in range(20_000)])]
    assert sum(m.ByteSize() for m in many_labels) > MAX_MASK_LABELS_BYTES
    await expect_invalid(db, metadata_stub.UpdateVersion(ms.UpdateVersionRequest(
        version_ref=by_id(current.id), version=dataset_pb2.Version(mask_labels=many_labels),
        update_mask=field_mask_pb2.FieldMask(paths=["mask_labels"]))), "version.mask_labels")
    # At the limit is fine.
    fits = meta_of_bytes(MAX_META_BYTES)
    assert fits.ByteSize() == MAX_META_BYTES
    updated = await metadata_stub.UpdateDataset(ms.UpdateDatasetRequest(
        dataset_ref=dataset_ref(dataset.id), dataset=dataset_pb2.Dataset(meta=fits),
        update_mask=field_mask_pb2.FieldMask(paths=["meta"])))
    assert updated.meta == fits


async def read_all(first: Any, next_page: Any, items: str) -> tuple[list[Any], int]:
    """Every item of a list across its pages, and the number of pages."""
    found, pages, response = [], 0, first
    while True:
        pages += 1
        assert response.ByteSize() <= MAX_PAGE_BYTES + 64 * 1024 < CLIENT_DEFAULT_MAX_MESSAGE
        found.extend(getattr(response, items))
        if not response.next_page_token:
            return found, pages
        response = await next_page(response.next_page_token)


async def test_large_datasets_list_in_pages_a_default_client_can_read(metadata_stub, default_client, db):
    prefix = unique_name("big")
    names = [f"{prefix}-{i:03d}" for i in range(70)]
    for name in names:
        await metadata_stub.CreateDataset(ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(
            name=name, meta=meta_of_bytes(MAX_META_BYTES), description="d" * 4096,
            tags=[f"tag-{i:02d}-{'t' * 50}" for i in range(64)])))
    request = ms.ListDatasetsRequest(name_prefix=prefix, page_size=1000)
    found, pages = await read_all(
        await default_client.ListDatasets(request), lambda token: default_client.ListDatasets(
            ms.ListDatasetsRequest(name_prefix=prefix, page_size=1000, page_token=token)), "datasets")
    assert [d.name for d in found] == names and pages > 1


async def test_large_versions_list_in_pages_a_default_client_can_read(metadata_stub, default_client, db):
    dataset, current = await new_dataset(metadata_stub)
    labels = [dataset_pb2.MaskLabel(value=[i // 256, i % 256, 0], labels=[f"label {i:05d} " + "l" * 200])
              for i in range(1000)]
    assert MAX_MASK_LABELS_BYTES * 0.8 < sum(m.ByteSize() for m in labels) <= MAX_MASK_LABELS_BYTES
    names = [f"v{i:02d}" for i in range(16)]
    for name in names:
        await metadata_stub.CreateVersion(ms.CreateVersionRequest(dataset=dataset_ref(dataset.id), version=(
            dataset_pb2.Version(name=name, meta=meta_of_bytes(MAX_META_BYTES), mask_labels=labels))))
    found, pages = await read_all(
        await default_client.ListVersions(ms.ListVersionsRequest(dataset=dataset_ref(dataset.id), page_size=1000)),
        lambda token: default_client.ListVersions(ms.ListVersionsRequest(
            dataset=dataset_ref(dataset.id), page_size=1000, page_token=token)), "versions")
    assert [v.name for v in found] == ["Current", *names] and pages > 1


async def test_large_frames_list_in_pages_a_default_client_can_read(metadata_stub, default_client, db):
    _, current = await new_dataset(metadata_stub)
    frames = []
    for i in range(90):
        frame = make_frame(f"f{i:03d}", timestamp=i)
        frame.meta.fields["blob"].CopyFrom(metadata_pb2.MetadataValue(string_value="m" * 50_000))
        frames.append(frame)
    await write_frames(metadata_stub, current.id, frames)
    found, pages = await read_all(
        await default_client.ListFrames(ms.ListFramesRequest(version=by_id(current.id), page_size=1000)),
        lambda token: default_client.ListFrames(ms.ListFramesRequest(
            version=by_id(current.id), page_size=1000, page_token=token)), "frames")
    assert [f.id for f in found] == [f.id for f in frames] and pages > 1
    assert all(isinstance(f, frame_pb2.Frame) for f in found)


async def test_one_frame_larger_than_the_budget_still_makes_a_page(metadata_stub, db):
    _, current = await new_dataset(metadata_stub)
    big = make_frame("big")
    # Larger than a page by its geometry (its metadata may not be: frame_max_meta_bytes).
    outline = frame_pb2.PolygonPart(xy=[float(i % 997) for i in range(MAX_PAGE_BYTES // 4 + 1000)])
    big.rois.append(frame_pb2.Roi(labels=["coastline"], polygon=frame_pb2.Polygon2D(parts=[outline])))
    assert big.ByteSize() > MAX_PAGE_BYTES
    await write_frames(metadata_stub, current.id, [big, make_frame("small", timestamp=1)])
    first = await metadata_stub.ListFrames(ms.ListFramesRequest(version=by_id(current.id)))
    assert [f.id for f in first.frames] == ["big"] and first.next_page_token
    second = await metadata_stub.ListFrames(ms.ListFramesRequest(version=by_id(current.id),
                                                                 page_token=first.next_page_token))
    assert [f.id for f in second.frames] == ["small"] and not second.next_page_token
