"""Garbage collection with the real metadata service: frames registered through UploadFrames
keep their blobs (source, preview, inline bytes), everything else old enough goes.

Both services run in a world of their own (database and bucket), since a real
collection deletes every old unreferenced blob of its bucket.
"""

from __future__ import annotations

import asyncio
import uuid

from grpc import aio
from minio import Minio
from pymongo import MongoClient
from support import admin_token_of, own_admin_key_file

from framevault.api.blob_client import BlobClient
from framevault.api.digests import BlobDigest, digest_of
from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.metadata.app import build_service as build_metadata_service
from framevault.v1 import blob_pb2, blob_pb2_grpc, dataset_pb2, frame_pb2, metadata_service_pb2_grpc
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import channel_to, free_port, random_blob, start_blob_service

GRACE_SECONDS = 3


async def upload_frames(stub: metadata_service_pb2_grpc.MetadataServiceStub, version_id: str,
                        frames: list[frame_pb2.Frame]) -> list[ms.FrameResult]:
    call = stub.UploadFrames()
    await call.write(ms.UploadFramesRequest(options=ms.UploadOptions(version=dataset_pb2.VersionRef(id=version_id))))
    await call.write(ms.UploadFramesRequest(items=[
        ms.UploadItem(client_key=f"k{i}", frame=frame) for i, frame in enumerate(frames)]))
    await call.done_writing()
    results: list[ms.FrameResult] = []
    while (response := await call.read()) is not aio.EOF:
        if response.WhichOneof("message") == "results":
            results.extend(response.results.results)
    return results


async def own_world(settings: Settings) -> tuple[Settings, Settings]:
    run_id = uuid.uuid4().hex[:8]
    bucket = f"{settings.s3_bucket}-e2e-{run_id}"
    await asyncio.to_thread(Minio(settings.s3_endpoint, access_key=settings.s3_access_key,
                                  secret_key=settings.s3_secret_key.get_secret_value(), secure=settings.s3_secure,
                                  region=settings.s3_region).make_bucket, bucket)
    blob_address = f"127.0.0.1:{free_port()}"
    metadata_settings = own_admin_key_file(Settings(**{
        **settings.__dict__, "s3_bucket": bucket, "blob_target": blob_address,
        "mongodb_database": f"{settings.mongodb_database}_gc_{run_id}"}))
    return metadata_settings, Settings(**{**metadata_settings.__dict__, "blob_address": blob_address})


async def test_collection_keeps_what_frames_reference(settings: Settings) -> None:
    metadata_settings, blob_settings = await own_world(settings)
    metadata = RunningService(build_metadata_service(metadata_settings), metadata_settings)
    await metadata.start()
    blob: RunningService | None = None
    try:
        blob = await start_blob_service(
            Settings(**{**blob_settings.__dict__, "metadata_target": f"127.0.0.1:{metadata.port}"}))
        # The admin key of this world's own database.
        token = admin_token_of(metadata_settings)
        async with channel_to(metadata.port, token=token) as metadata_channel, \
                channel_to(blob.port, token=token) as blob_channel:
            meta = metadata_service_pb2_grpc.MetadataServiceStub(metadata_channel)
            blobs = blob_pb2_grpc.BlobServiceStub(blob_channel)
            await collect_what_nothing_references(meta, blobs)
    finally:
        if blob is not None:
            await blob.stop(grace=1)
        await metadata.stop(grace=1)
        await asyncio.to_thread(drop_database, metadata_settings)


def drop_database(settings: Settings) -> None:
    with MongoClient(settings.mongodb_uri.get_secret_value(), serverSelectionTimeoutMS=settings.mongodb_timeout_ms) as mongo:
        mongo.drop_database(settings.mongodb_database)


async def collect_what_nothing_references(meta: metadata_service_pb2_grpc.MetadataServiceStub,
                                          blobs: blob_pb2_grpc.BlobServiceStub) -> None:
    client = BlobClient(blobs)
    source_data, source = random_blob(4000)
    preview_data, preview = random_blob(500)
    orphan_data, orphan = random_blob(3000)
    for data in (source_data, preview_data, orphan_data):
        await client.upload_bytes(data)
    inline_data = b"mask bytes carried inline " + uuid.uuid4().bytes
    inline = digest_of(inline_data)

    dataset = await meta.CreateDataset(ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(
        name=f"gc-{uuid.uuid4().hex[:8]}")))
    version = await meta.GetVersion(ms.GetVersionRequest(version=dataset_pb2.VersionRef(
        dataset=dataset_pb2.DatasetRef(id=dataset.id), name="Current")))
    results = await upload_frames(meta, version.id, [
        frame_pb2.Frame(context_id="c", timestamp=1, sources=[frame_pb2.Source(
            uri=source.uri, content_type="image/jpeg", width=10, height=10,
            preview=frame_pb2.Preview(uri=preview.uri, content_type="image/jpeg"))]),
        frame_pb2.Frame(context_id="c", timestamp=2, sources=[frame_pb2.Source(
            content_type="image/png", width=4, height=4, inline_content=inline_data)]),
    ])
    assert [r.outcome for r in results] == [ms.FrameResult.OUTCOME_CREATED] * 2, results
    assert await client.missing([inline]) == set()  # the metadata service stored the inline bytes

    await asyncio.sleep(GRACE_SECONDS + 0.5)
    for dry_run in (True, False):
        messages = [m async for m in blobs.CollectGarbage(blob_pb2.CollectGarbageRequest(
            dry_run=dry_run, grace_period_seconds=GRACE_SECONDS))]
        collected = [BlobDigest(d.hash, d.size_bytes) for m in messages for d in m.digests]
        totals = messages[-1].totals
        assert collected == [orphan]
        assert (totals.scanned_blobs, totals.referenced_blobs, totals.collected_blobs, totals.dry_run) == (
            4, 3, 1, dry_run)
    assert await client.missing([source, preview, inline, orphan]) == {orphan}
