"""Calls that need both processes: the metadata service asks the blob service, and the other way round."""

from __future__ import annotations

import os
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from minio import Minio
from pymongo import MongoClient

from framevault.api.digests import BlobDigest
from framevault.blob.keys import cas_key
from framevault.common.config import Settings
from framevault.metadata.db import DATASETS
from framevault.v1 import blob_pb2, frame_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .flows import blob_uri, create_dataset, digest_of_uri, read_blob, store_blob, unique, upload_frames, write_image
from .launch import Endpoints, World

# Blobs younger than this survive a collection; the test waits it out for its orphan.
GRACE_SECONDS = 2


def missing_blob_subjects(error: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, error
    subjects = []
    for detail in status.details:
        if detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            detail.Unpack(failure)
            subjects.extend(v.subject for v in failure.violations if v.type == "MISSING_BLOB")
    return subjects


def test_update_frame_with_blob_references(make_run: Endpoints, tmp_path: Path) -> None:
    metadata, blobs = make_run.metadata_stub(), make_run.blob_stub()
    first = store_blob(blobs, write_image(tmp_path / "first.png", (20, 10), 1).read_bytes())
    version = create_dataset(metadata, unique("update"))
    results = upload_frames(metadata, version, [frame_pb2.Frame(id="f", context_id="c", sources=[
        frame_pb2.Source(uri=first, content_type="image/png", width=20, height=10)])])
    assert [r.outcome for r in results] == [ms.FrameResult.OUTCOME_CREATED], results

    replacement = write_image(tmp_path / "second.jpg", (20, 10), 2).read_bytes()
    second = store_blob(blobs, replacement)
    preview = store_blob(blobs, write_image(tmp_path / "preview.jpg", (4, 2), 3).read_bytes())
    updated = metadata.UpdateFrame(ms.UpdateFrameRequest(
        version=version, update_mask=field_mask_pb2.FieldMask(paths=["sources"]),
        frame=frame_pb2.Frame(id="f", sources=[frame_pb2.Source(
            uri=second, content_type="image/jpeg", width=20, height=10,
            preview=frame_pb2.Preview(uri=preview, content_type="image/jpeg"))])), timeout=30)
    assert (updated.sources[0].uri, updated.sources[0].preview.uri) == (second, preview)
    stored = metadata.GetFrame(ms.GetFrameRequest(version=version, frame_id="f"), timeout=30)
    assert stored.sources[0].uri == second
    assert read_blob(blobs, stored.sources[0].uri) == replacement

    # The metadata service really asked the blob service: a reference to bytes it lacks is refused.
    absent = blob_uri(b"never stored " + tmp_path.name.encode())
    with pytest.raises(grpc.RpcError) as refused:
        metadata.UpdateFrame(ms.UpdateFrameRequest(
            version=version, update_mask=field_mask_pb2.FieldMask(paths=["sources"]),
            frame=frame_pb2.Frame(id="f", sources=[frame_pb2.Source(uri=absent, content_type="image/png")])),
            timeout=30)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.value
    assert any(digest_of_uri(absent).hash in subject for subject in missing_blob_subjects(refused.value))
    assert metadata.GetFrame(ms.GetFrameRequest(version=version, frame_id="f"), timeout=30).sources[0].uri == second


def collect(blobs: object, *, dry_run: bool) -> tuple[set[str], blob_pb2.GarbageTotals]:
    messages = list(blobs.CollectGarbage(  # type: ignore[attr-defined]
        blob_pb2.CollectGarbageRequest(dry_run=dry_run, grace_period_seconds=GRACE_SECONDS), timeout=120))
    collected = {f"blob:sha256/{d.hash}/{d.size_bytes}" for m in messages for d in m.digests}
    return collected, messages[-1].totals


def test_collect_garbage_asks_the_metadata_service(make_run: Endpoints, tmp_path: Path) -> None:
    metadata, blobs = make_run.metadata_stub(), make_run.blob_stub()
    source = store_blob(blobs, write_image(tmp_path / "kept.png", (8, 8), 5).read_bytes())
    orphan = store_blob(blobs, b"referenced by no frame " + tmp_path.name.encode())
    inline = write_image(tmp_path / "inline.png", (8, 8), 6).read_bytes()
    version = create_dataset(metadata, unique("gc"))
    results = upload_frames(metadata, version, [
        frame_pb2.Frame(id="by-ref", context_id="c", sources=[frame_pb2.Source(uri=source, content_type="image/png")]),
        frame_pb2.Frame(id="inline", context_id="c", sources=[
            frame_pb2.Source(content_type="image/png", inline_content=inline)]),
    ])
    assert [r.outcome for r in results] == [ms.FrameResult.OUTCOME_CREATED] * 2, results
    referenced = {source, blob_uri(inline)}

    time.sleep(GRACE_SECONDS + 1.5)  # the orphan must be older than the grace period to go
    for dry_run in (True, False):
        collected, totals = collect(blobs, dry_run=dry_run)
        assert orphan in collected and not collected & referenced, (collected, referenced)
        assert totals.dry_run == dry_run and totals.referenced_blobs >= len(referenced)
        assert totals.collected_blobs == len(collected)
    missing = blobs.FindMissingBlobs(blob_pb2.FindMissingBlobsRequest(
        digests=[digest_of_uri(uri) for uri in (source, orphan, blob_uri(inline))]), timeout=30).missing_digests
    assert [f"blob:sha256/{d.hash}/{d.size_bytes}" for d in missing] == [orphan]
    assert read_blob(blobs, source) == (tmp_path / "kept.png").read_bytes()


def test_launcher_serves_the_callers_database_and_bucket(make_run: Endpoints, world: World, stack_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    """``make run`` honours FRAMEVAULT_MONGODB_DATABASE and FRAMEVAULT_S3_BUCKET over the stack's defaults."""
    name = unique("where")
    create_dataset(make_run.metadata_stub(), name)
    data = b"stored in the caller's bucket " + tmp_path.name.encode()
    digest = digest_of_uri(store_blob(make_run.blob_stub(), data))

    settings = Settings.from_env({**os.environ, **stack_env})
    with MongoClient(settings.mongodb_uri.get_secret_value(), serverSelectionTimeoutMS=settings.mongodb_timeout_ms) as mongo:
        assert mongo[world.database][DATASETS].count_documents({"name": name}) == 1
        assert mongo[settings.mongodb_database][DATASETS].count_documents({"name": name}) == 0
    storage = Minio(settings.s3_endpoint, access_key=settings.s3_access_key, secret_key=settings.s3_secret_key.get_secret_value(),
                    secure=settings.s3_secure, region=settings.s3_region)
    key = cas_key(BlobDigest(digest.hash, digest.size_bytes))
    assert storage.stat_object(world.bucket, key).size == len(data)
