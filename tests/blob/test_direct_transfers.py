"""Direct transfers: parts PUT to presigned URLs, verified by the service before the blob becomes
visible; parallel ranged reads of download URLs; resume; fallback to the service's streams when the
store cannot be reached from the client. Real S3 (the session's SeaweedFS)."""

from __future__ import annotations

import dataclasses
import http.client
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from sdk.helpers import sdk

from framevault.api.blob_client import BlobClient, DirectTransfers
from framevault.api.digests import BlobDigest, digest_of
from framevault.blob.direct import DirectUploads
from framevault.blob.gc import GarbageCollector
from framevault.blob.keys import STAGING_PREFIX, cas_key, parse_upload_name
from framevault.blob.storage import S3BlobStorage, WriteConflict, public_endpoint
from framevault.blob.store import BlobStore
from framevault.common.config import Settings
from framevault.common.errors import FailedPrecondition
from framevault.common.server import RunningService
from framevault.sdk import ClientSettings
from framevault.sdk.blobs import BlobTransfer
from framevault.sdk.client import FramevaultClient
from framevault.sdk.runtime import current_client
from framevault.v1 import blob_pb2, blob_pb2_grpc

from .helpers import SMALL_PART, channel_to, free_port, random_blob, rpc_error, start_blob_service, violated_fields

__all__ = ["sdk"]

# The session's services issue the admin key every call here carries.
pytestmark = pytest.mark.usefixtures("metadata_service")

DIRECT = DirectTransfers(min_size_bytes=1, read_range_bytes=3 * 1024 * 1024, connect_timeout_seconds=2.0)


def _put(url: str, data: bytes) -> int:
    """One HTTP PUT to a presigned URL, as any client would send it; returns the status."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        connection.request("PUT", f"{parts.path}?{parts.query}", body=data)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _name(digest: BlobDigest) -> str:
    return BlobClient.upload_name(digest, str(uuid.uuid4()))


async def _staged(s3: S3BlobStorage, name: str) -> list[str]:
    upload_id = name.split("/")[1]
    return [info.key async for info in s3.list_objects(f"{STAGING_PREFIX}{upload_id}/")]


async def test_capabilities_advertise_direct_transfers(small_parts_stub: blob_pb2_grpc.BlobServiceStub,
                                                       small_parts_settings: Settings):
    caps = await small_parts_stub.GetCapabilities(blob_pb2.GetCapabilitiesRequest())
    assert caps.direct_transfers
    assert caps.direct_transfer_min_size_bytes == small_parts_settings.blob_direct_min_size_bytes


async def test_a_direct_upload_is_verified_published_and_read_back_in_parallel_ranges(
        small_parts_stub: blob_pb2_grpc.BlobServiceStub, s3: S3BlobStorage):
    data, digest = random_blob(2 * SMALL_PART + 12345)
    client = BlobClient(small_parts_stub, direct=DIRECT)
    upload_id = str(uuid.uuid4())
    result = await client.upload_bytes(data, upload_id=upload_id)
    assert result.digest == digest and not result.already_existed
    assert result.bytes_sent == len(data)
    assert await s3.get(cas_key(digest)) == data
    # Nothing of the upload is left behind: staged bytes and state are gone.
    assert await _staged(s3, client.upload_name(digest, upload_id)) == []
    # Read back in 3 MiB ranges, four at a time, over the download URL.
    assert await client.read(digest) == data
    assert client.direct_transfers == 2 and client.fallbacks == 0
    # The same bytes again: FindMissingBlobs says present, nothing is sent.
    again = await client.upload_bytes(data)
    assert again.already_existed and again.bytes_sent == 0


async def test_staged_bytes_are_never_visible_and_a_wrong_sha256_is_never_stored(
        small_parts_stub: blob_pb2_grpc.BlobServiceStub, s3: S3BlobStorage):
    data, digest = random_blob(SMALL_PART + 100)
    forged = bytes([data[0] ^ 1]) + data[1:]
    name = _name(digest)
    plan = await small_parts_stub.StartDirectUpload(blob_pb2.StartDirectUploadRequest(resource_name=name))
    assert [p.part_number for p in plan.parts] == [1, 2] and plan.part_count == 2
    assert [p.size_bytes for p in plan.parts] == [SMALL_PART, 100]
    for part in plan.parts:
        assert _put(part.url, forged[part.offset:part.offset + part.size_bytes]) == 200
    # Every part landed, yet nothing is at the content address and no reader finds the blob.
    assert await s3.stat(cas_key(digest)) is None
    missing = await small_parts_stub.FindMissingBlobs(blob_pb2.FindMissingBlobsRequest(
        digests=[blob_pb2.Digest(hash=digest.hash, size_bytes=digest.size)]))
    assert len(missing.missing_digests) == 1
    # A part URL writes only its part: the same URL without its signed upload id is refused.
    url = urllib.parse.urlsplit(plan.parts[0].url)
    query = "&".join(q for q in url.query.split("&") if not q.startswith("uploadId="))
    assert _put(urllib.parse.urlunsplit(url._replace(query=query)), b"x") == 403

    error = await rpc_error(small_parts_stub.CompleteDirectUpload(
        blob_pb2.CompleteDirectUploadRequest(resource_name=name)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["resource_name"]
    assert await s3.stat(cas_key(digest)) is None
    assert await _staged(s3, name) == []


async def test_a_part_of_the_wrong_size_keeps_the_upload_from_completing(
        small_parts_stub: blob_pb2_grpc.BlobServiceStub, s3: S3BlobStorage):
    data, digest = random_blob(SMALL_PART + 100)
    name = _name(digest)
    plan = await small_parts_stub.StartDirectUpload(blob_pb2.StartDirectUploadRequest(resource_name=name))
    first, last = plan.parts
    assert _put(first.url, data[:first.size_bytes]) == 200
    assert _put(last.url, data[last.offset:last.offset + last.size_bytes] + b"extra") == 200
    error = await rpc_error(small_parts_stub.CompleteDirectUpload(
        blob_pb2.CompleteDirectUploadRequest(resource_name=name)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await s3.stat(cas_key(digest)) is None
    # The wrong part does not count as uploaded; sending it right completes the upload.
    again = await small_parts_stub.StartDirectUpload(blob_pb2.StartDirectUploadRequest(resource_name=name))
    assert list(again.uploaded_part_numbers) == [1] and [p.part_number for p in again.parts] == [2]
    assert _put(again.parts[0].url, data[last.offset:]) == 200
    done = await small_parts_stub.CompleteDirectUpload(blob_pb2.CompleteDirectUploadRequest(resource_name=name))
    assert done.committed_size == digest.size and not done.already_existed
    assert await s3.get(cas_key(digest)) == data


async def test_a_cut_direct_upload_resumes_with_the_parts_still_missing(
        small_parts_stub: blob_pb2_grpc.BlobServiceStub, s3: S3BlobStorage):
    data, digest = random_blob(3 * SMALL_PART + 7)
    upload_id = str(uuid.uuid4())
    name = BlobClient.upload_name(digest, upload_id)
    plan = await small_parts_stub.StartDirectUpload(blob_pb2.StartDirectUploadRequest(resource_name=name))
    # The client is cut after two of the four parts.
    for part in plan.parts[:2]:
        assert _put(part.url, data[part.offset:part.offset + part.size_bytes]) == 200
    status = await small_parts_stub.StartDirectUpload(blob_pb2.StartDirectUploadRequest(resource_name=name))
    assert list(status.uploaded_part_numbers) == [1, 2]
    assert [p.part_number for p in status.parts] == [3, 4]
    # Asked for one part only, the service signs that one.
    one = await small_parts_stub.StartDirectUpload(blob_pb2.StartDirectUploadRequest(
        resource_name=name, part_numbers=[4]))
    assert [p.part_number for p in one.parts] == [4]

    result = await BlobClient(small_parts_stub, direct=DIRECT).upload_bytes(data, upload_id=upload_id)
    assert result.bytes_sent == SMALL_PART + 7
    assert await s3.get(cas_key(digest)) == data
    assert await _staged(s3, name) == []
    # Completing again is harmless: the blob exists.
    done = await small_parts_stub.CompleteDirectUpload(blob_pb2.CompleteDirectUploadRequest(resource_name=name))
    assert done.already_existed and done.committed_size == digest.size


async def test_bad_direct_requests_name_the_field(small_parts_stub: blob_pb2_grpc.BlobServiceStub):
    _, digest = random_blob(SMALL_PART + 1)
    error = await rpc_error(small_parts_stub.StartDirectUpload(blob_pb2.StartDirectUploadRequest(
        resource_name=_name(digest), part_numbers=[1, 3], expires_in_seconds=-1)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(violated_fields(error)) == ["expires_in_seconds", "part_numbers[1]"]
    error = await rpc_error(small_parts_stub.StartDirectUpload(blob_pb2.StartDirectUploadRequest(
        resource_name="uploads/x/blobs/y/1")))
    assert violated_fields(error) == ["resource_name"]
    error = await rpc_error(small_parts_stub.CompleteDirectUpload(blob_pb2.CompleteDirectUploadRequest(
        resource_name=_name(digest))))
    assert error.code() == grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module")
async def unreachable_store_service(small_parts_settings: Settings) -> AsyncIterator[RunningService]:
    """A blob service whose presigned URLs name a port nothing listens on."""
    settings = Settings(**{**small_parts_settings.__dict__, "s3_public_endpoint": f"http://127.0.0.1:{free_port()}"})
    running: RunningService = await start_blob_service(settings)
    yield running
    await running.stop(grace=1)


@pytest.fixture(scope="module")
async def unreachable_store_stub(unreachable_store_service: RunningService
                                 ) -> AsyncIterator[blob_pb2_grpc.BlobServiceStub]:
    async with channel_to(unreachable_store_service.port) as channel:
        yield blob_pb2_grpc.BlobServiceStub(channel)


async def test_writes_and_reads_fall_back_to_the_streams_when_the_store_is_unreachable(
        unreachable_store_stub: blob_pb2_grpc.BlobServiceStub, s3: S3BlobStorage):
    data, digest = random_blob(SMALL_PART + 4321)
    client = BlobClient(unreachable_store_stub, direct=DIRECT)
    result = await client.upload_bytes(data)
    assert result.digest == digest
    assert await s3.get(cas_key(digest)) == data
    assert client.fallbacks == 1 and client.direct_transfers == 0
    # The client now rests direct transfers; a fresh one tries the ranged read and falls back too.
    reader = BlobClient(unreachable_store_stub, direct=DIRECT)
    assert await reader.read(digest) == data
    assert reader.fallbacks == 1 and reader.direct_transfers == 0


async def test_garbage_collection_drops_abandoned_direct_uploads(small_parts_settings: Settings,
                                                                 s3: S3BlobStorage):
    storage = S3BlobStorage(small_parts_settings)
    try:
        direct = DirectUploads(storage, BlobStore(storage, small_parts_settings), small_parts_settings)
        data, digest = random_blob(SMALL_PART + 1)
        name = _name(digest)
        plan = await direct.start(name, [], 0)
        assert _put(plan.parts[0].url, data[:SMALL_PART]) == 200
        assert await _staged(s3, name) != []

        class NoReferences:
            async def referenced(self) -> set[BlobDigest]:
                return set()

            async def close(self) -> None:
                return None

        collector = GarbageCollector(storage, NoReferences(), small_parts_settings)
        # Everything started before the cutoff counts as abandoned.
        await collector._clean_abandoned_direct_uploads(datetime.now(UTC) + timedelta(seconds=5))
        assert await _staged(s3, name) == []
        staging = parse_upload_name(name, digest.size).staging_key
        uploads = [u async for u in storage.list_multipart_uploads(staging)]
        assert uploads == []
    finally:
        await storage.close()


async def test_the_sdk_direct_path_needs_no_user_action(small_parts_stub: blob_pb2_grpc.BlobServiceStub):
    # The threshold comes from the service: a blob below it goes over the streams.
    client = BlobClient(small_parts_stub, direct=DirectTransfers())
    caps = await client.capabilities()
    assert not await client.goes_direct(caps.direct_transfer_min_size_bytes - 1)
    assert await client.goes_direct(caps.direct_transfer_min_size_bytes)
    assert digest_of(b"") == (await client.upload_bytes(b"")).digest


@pytest.mark.parametrize("server_settings", ["settings", "versitygw_settings"])
async def test_a_part_is_copied_inside_the_store_only_from_the_version_named(
        server_settings: str, request: pytest.FixtureRequest):
    settings: Settings = request.getfixturevalue(server_settings)
    storage = S3BlobStorage(settings)
    prefix = f"internals/{uuid.uuid4().hex}/"
    try:
        data = random_blob(SMALL_PART + 10)[0]
        await storage.put(prefix + "source", data)
        source = await storage.stat(prefix + "source")
        assert source is not None
        upload_id = await storage.create_multipart(prefix + "target")
        first = await storage.upload_part_copy(prefix + "target", upload_id, 1, prefix + "source", source.etag,
                                               0, SMALL_PART)
        second = await storage.upload_part_copy(prefix + "target", upload_id, 2, prefix + "source", source.etag,
                                                SMALL_PART, 10)
        with pytest.raises(WriteConflict):
            await storage.upload_part_copy(prefix + "target", upload_id, 3, prefix + "source", "0" * 32, 0, 10)
        # Nothing is visible before completion; afterwards exactly the copied bytes.
        assert await storage.stat(prefix + "target") is None
        await storage.complete_multipart(prefix + "target", upload_id, [first, second])
        assert await storage.get(prefix + "target") == data
    finally:
        await storage.delete_many([prefix + "source", prefix + "target"])
        await storage.close()


async def test_direct_ranges_arrive_whole_and_in_order_when_their_buffers_are_reused(
        small_parts_stub: blob_pb2_grpc.BlobServiceStub):
    data, digest = random_blob(7 * DIRECT.read_range_bytes + 17)
    client = BlobClient(small_parts_stub, direct=DIRECT)
    await client.upload_bytes(data)
    received = bytearray()
    # Every piece is kept alive, so two pieces are the same object only when a buffer was reused.
    pieces = []
    async for piece in client.direct_chunks(digest, reuse_buffers=True):
        received += piece
        pieces.append(piece)
    assert received == data
    # Eight ranges through at most concurrency + 1 buffers (the short last range has its own).
    assert len(pieces) == 8 and len({id(piece) for piece in pieces}) <= DIRECT.concurrency + 2


async def test_writes_take_the_stream_when_direct_writes_are_off(small_parts_stub: blob_pb2_grpc.BlobServiceStub):
    data, digest = random_blob(DIRECT.read_range_bytes + 5)
    client = BlobClient(small_parts_stub, direct=dataclasses.replace(DIRECT, writes=False))
    assert not await client.goes_direct(digest.size, write=True) and await client.goes_direct(digest.size)
    await client.upload_bytes(data)
    assert client.direct_transfers == 0
    assert await client.read(digest) == data
    assert (client.direct_transfers, client.fallbacks) == (1, 0)


async def test_the_sdk_sends_and_reads_a_large_file_straight_to_the_store(sdk: ClientSettings, tmp_path: Path,
                                                                           s3: S3BlobStorage):
    source = tmp_path / "video.bin"
    data = random_blob(9 * 1024 * 1024 + 5)[0]
    source.write_bytes(data)
    blobs = BlobTransfer(current_client())
    digest = await blobs.upload_file(str(source))
    assert await s3.get(cas_key(digest)) == data
    copy = await blobs.read_to_file(digest, tmp_path / "copy.bin")
    assert copy.read_bytes() == data
    client = await blobs.blob_client()
    assert (client.direct_transfers, client.fallbacks) == (2, 0)


async def test_the_sdk_falls_back_to_the_streams_when_the_store_is_unreachable(
        sdk: ClientSettings, unreachable_store_service: RunningService, tmp_path: Path, s3: S3BlobStorage):
    client = FramevaultClient(dataclasses.replace(sdk, blob_target=f"127.0.0.1:{unreachable_store_service.port}"))
    try:
        source = tmp_path / "video.bin"
        data = random_blob(9 * 1024 * 1024 + 5)[0]
        source.write_bytes(data)
        blobs = BlobTransfer(client)
        digest = await blobs.upload_file(str(source))
        assert await s3.get(cas_key(digest)) == data
        # A new transfer (nothing remembered) tries the ranged read first, then reads over ReadBlob.
        reader = BlobTransfer(client)
        assert (await reader.read_to_file(digest, tmp_path / "copy.bin")).read_bytes() == data
        assert ((await blobs.blob_client()).fallbacks, (await reader.blob_client()).fallbacks) == (1, 1)
        assert (await reader.blob_client()).direct_transfers == 0
    finally:
        await client.close()


async def test_a_service_with_direct_transfers_off_refuses_them_and_says_so(small_parts_settings: Settings):
    settings = Settings(**{**small_parts_settings.__dict__, "blob_direct_transfers": False})
    storage = S3BlobStorage(settings)
    try:
        store = BlobStore(storage, settings)
        assert not store.capabilities().direct_transfers
        direct = DirectUploads(storage, store, settings)
        name = _name(random_blob(10)[1])
        with pytest.raises(FailedPrecondition):
            await direct.start(name, [], 0)
        with pytest.raises(FailedPrecondition):
            await direct.complete(name)
    finally:
        await storage.close()


def test_the_public_endpoint_setting_names_host_and_scheme(settings: Settings):
    def of(value: str, secure: bool = False) -> tuple[str, bool]:
        return public_endpoint(Settings(**{**settings.__dict__, "s3_public_endpoint": value, "s3_secure": secure}))

    assert of("") == (settings.s3_endpoint, False)
    assert of("s3.example.com:443", secure=True) == ("s3.example.com:443", True)
    assert of("https://s3.example.com/") == ("s3.example.com", True)
    assert of("HTTP://10.0.0.5:8333") == ("10.0.0.5:8333", False)
