"""Direct transfers: parts PUT to presigned URLs, verified by the service before the blob becomes
visible; parallel ranged reads of download URLs; resume; fallback to the service's streams when the
store cannot be reached from the client. Real S3 (the session's SeaweedFS)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import http.client
import threading
import urllib.parse
import uuid
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from sdk.helpers import sdk

from framevault.api.blob_client import (
    PIECES_HELD_PER_WORKER,
    READ_PIECE_BYTES,
    BlobClient,
    BufferTarget,
    ContentMismatch,
    DirectTransfers,
    FileTarget,
    OrderedDigest,
)
from framevault.api.digests import (
    S3_CHECKSUM_ALGORITHM_HEADER,
    S3_CHECKSUM_HEADER,
    BlobDigest,
    digest_of,
    s3_checksum_headers,
)
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
from framevault.sdk.errors import FramevaultError
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
    # The same bytes again: StartDirectUpload says present, nothing is sent.
    again = await client.upload_bytes(data)
    assert again.already_existed and again.bytes_sent == 0


class _CountedStub:
    """A BlobService stub that counts the calls of each method it passes on."""

    def __init__(self, stub: blob_pb2_grpc.BlobServiceStub):
        self._stub = stub
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> object:
        method = getattr(self._stub, name)

        def counted(*args: object, **kwargs: object) -> object:
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(*args, **kwargs)

        return counted


async def test_a_direct_upload_learns_whether_the_store_has_the_blob_from_its_start_alone(
        small_parts_stub: blob_pb2_grpc.BlobServiceStub, s3: S3BlobStorage):
    data, digest = random_blob(SMALL_PART + 321)
    stub = _CountedStub(small_parts_stub)
    client = BlobClient(stub, direct=DIRECT)  # type: ignore[arg-type]
    first = await client.upload_bytes(data)
    again = await client.upload_bytes(data)
    assert not first.already_existed and again.already_existed and again.bytes_sent == 0
    assert await s3.get(cas_key(digest)) == data
    assert "FindMissingBlobs" not in stub.calls and stub.calls["StartDirectUpload"] == 2


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
    async with _blob_service(small_parts_settings, s3_public_endpoint=f"http://127.0.0.1:{free_port()}") as running:
        yield running


@pytest.fixture(scope="module")
async def unreachable_store_stub(unreachable_store_service: RunningService
                                 ) -> AsyncIterator[blob_pb2_grpc.BlobServiceStub]:
    async with _stub_of(unreachable_store_service) as stub:
        yield stub


@contextlib.asynccontextmanager
async def _blob_service(settings: Settings, **changes: object) -> AsyncIterator[RunningService]:
    """A blob service of its own with ``changes`` to ``settings``."""
    running: RunningService = await start_blob_service(Settings(**{**settings.__dict__, **changes}))
    try:
        yield running
    finally:
        await running.stop(grace=1)


@contextlib.asynccontextmanager
async def _stub_of(running: RunningService) -> AsyncIterator[blob_pb2_grpc.BlobServiceStub]:
    async with channel_to(running.port) as channel:
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


@pytest.mark.parametrize("direct", [DIRECT, None], ids=["direct", "stream"])
async def test_a_whole_read_of_bytes_changed_in_the_store_is_refused(
        small_parts_stub: blob_pb2_grpc.BlobServiceStub, s3: S3BlobStorage, direct: DirectTransfers | None):
    data, digest = random_blob(2 * DIRECT.read_range_bytes + 3)
    client = BlobClient(small_parts_stub, direct=direct)
    await client.upload_bytes(data)
    # Changed inside the store behind the service's back, same size.
    await s3.put(cas_key(digest), data[:-1] + bytes([data[-1] ^ 1]))
    try:
        with pytest.raises(ContentMismatch) as refused:
            await client.read(digest)
        assert (refused.value.digest, refused.value.actual_size) == (digest, digest.size)
        assert refused.value.actual_hash != digest.hash
        assert client.fallbacks == 0
        # A part of the blob is not checked: it comes over ReadBlob as stored.
        assert await client.read(digest, offset=1, limit=4) == data[1:5]
    finally:
        await s3.delete(cas_key(digest))


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


class StoreProxy:
    """A TCP proxy in front of the S3 store for presigned URLs that name it: it can cut a connection
    once it carried a number of bytes in one direction, and refuse all connections from some point on.
    The URLs' signatures name the proxy's address, which the store checks as it would its own."""

    def __init__(self, upstream: str):
        self._upstream_host, _, port = upstream.rpartition(":")
        self._upstream_port = int(port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        # Cut the next connection once it carried this many bytes of responses (or of requests).
        self.cut_response_after: int | None = None
        self.cut_request_after: int | None = None
        # Once this many response bytes went through in all, every connection is closed and new ones are refused.
        self.stop_after: int | None = None
        # Once this many response bytes went through in all, responses wait until ``released`` is set;
        # ``holding`` is set when they started to wait.
        self.hold_after: int | None = None
        self.holding = asyncio.Event()
        self.released = asyncio.Event()
        self.connections = 0
        self.cuts = 0
        self.response_bytes = 0
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def stop(self) -> None:
        """Closes every connection and stops listening: the store is gone for the URLs' holders."""
        for writer in list(self._open):
            writer.close()
        if self._server is not None:
            self._server.close()
            self._server = None

    async def close(self) -> None:
        server = self._server
        self.stop()
        if server is not None:
            await server.wait_closed()

    def reset(self) -> None:
        self.cut_response_after = self.cut_request_after = self.stop_after = self.hold_after = None
        self.connections = self.cuts = self.response_bytes = 0
        self.holding.clear()
        self.released.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.stop_after is not None and self.response_bytes >= self.stop_after:
            writer.close()
            return
        self.connections += 1
        cut_response, self.cut_response_after = self.cut_response_after, None
        cut_request, self.cut_request_after = self.cut_request_after, None
        upstream_reader, upstream_writer = await asyncio.open_connection(self._upstream_host, self._upstream_port)
        self._open.update((writer, upstream_writer))

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, limit: int | None,
                       responses: bool) -> None:
            carried = 0
            try:
                while data := await source.read(256 * 1024):
                    if limit is not None and carried + len(data) > limit:
                        sink.write(data[:limit - carried])
                        await sink.drain()
                        self.cuts += 1
                        break
                    carried += len(data)
                    if responses:
                        if self.hold_after is not None and self.response_bytes >= self.hold_after:
                            self.holding.set()
                            await self.released.wait()
                        self.response_bytes += len(data)
                        if self.stop_after is not None and self.response_bytes >= self.stop_after:
                            sink.write(data)
                            await sink.drain()
                            self.stop()
                            break
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                for end in (writer, upstream_writer):
                    end.close()
                    self._open.discard(end)

        await asyncio.gather(pump(reader, upstream_writer, cut_request, False),
                             pump(upstream_reader, writer, cut_response, True))


@pytest.fixture(scope="module")
async def store_proxy(small_parts_settings: Settings) -> AsyncIterator[StoreProxy]:
    proxy = StoreProxy(small_parts_settings.s3_endpoint)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture(scope="module")
async def proxied_store_service(small_parts_settings: Settings, store_proxy: StoreProxy
                                ) -> AsyncIterator[RunningService]:
    """A blob service whose presigned URLs go through ``store_proxy``."""
    async with _blob_service(small_parts_settings, s3_public_endpoint=f"http://127.0.0.1:{store_proxy.port}") as running:
        yield running


@pytest.fixture(scope="module")
async def proxied_store_stub(proxied_store_service: RunningService) -> AsyncIterator[blob_pb2_grpc.BlobServiceStub]:
    async with _stub_of(proxied_store_service) as stub:
        yield stub


@pytest.fixture
async def proxy(store_proxy: StoreProxy) -> StoreProxy:
    """The proxy passing everything through (listening again if a test before stopped it)."""
    store_proxy.reset()
    if store_proxy._server is None:
        await store_proxy.start()
    return store_proxy


async def test_a_range_cut_mid_way_is_fetched_again_and_the_read_stays_direct(
        proxied_store_stub: blob_pb2_grpc.BlobServiceStub, proxy: StoreProxy):
    data, digest = random_blob(5 * DIRECT.read_range_bytes + 99)
    client = BlobClient(proxied_store_stub, direct=DIRECT)
    await client.upload_bytes(data)
    proxy.reset()
    # The first connection of the read breaks after 1 MiB of its first range's answer.
    proxy.cut_response_after = 1024 * 1024
    assert await client.read(digest) == data
    assert proxy.cuts == 1 and client.fallbacks == 0
    # Four workers on keep-alive connections, and one fresh connection for the range that broke.
    assert proxy.connections == DIRECT.concurrency + 1


async def test_a_part_cut_mid_way_is_sent_again_and_the_write_stays_direct(
        proxied_store_stub: blob_pb2_grpc.BlobServiceStub, proxy: StoreProxy, s3: S3BlobStorage):
    data, digest = random_blob(3 * SMALL_PART + 7)
    client = BlobClient(proxied_store_stub, direct=DIRECT)
    proxy.cut_request_after = SMALL_PART // 2
    result = await client.upload_bytes(data)
    assert proxy.cuts == 1
    assert (client.direct_transfers, client.fallbacks) == (1, 0) and not result.already_existed
    assert await s3.get(cas_key(digest)) == data


async def test_a_direct_read_the_store_stops_answering_goes_on_over_readblob_from_where_it_got(
        sdk: ClientSettings, proxied_store_service: RunningService, proxied_store_stub: blob_pb2_grpc.BlobServiceStub,
        proxy: StoreProxy, tmp_path: Path):
    data, digest = random_blob(6 * 1024 * 1024 * 3 + 1234)
    writer = BlobClient(proxied_store_stub, direct=DIRECT)
    await writer.upload_bytes(data)
    proxy.reset()
    # The SDK reads 3 MiB ranges one at a time; during the third the store is gone for this client,
    # so the read goes on over ReadBlob from 6 MiB (a wrong offset would fail the sha256 check).
    proxy.stop_after = 7 * 1024 * 1024
    client = FramevaultClient(dataclasses.replace(sdk, blob_target=f"127.0.0.1:{proxied_store_service.port}",
                                                  blob_direct_range_bytes=3 * 1024 * 1024,
                                                  blob_direct_concurrency=1))
    try:
        blobs = BlobTransfer(client)
        copy = await blobs.read_to_file(digest, tmp_path / "copy.bin")
        assert copy.read_bytes() == data
        reader = await blobs.blob_client()
        assert (reader.direct_transfers, reader.fallbacks) == (0, 1)
        assert proxy.response_bytes >= 6 * 1024 * 1024
        assert [p.name for p in tmp_path.iterdir()] == ["copy.bin"]
    finally:
        await client.close()


async def test_a_direct_read_cancelled_mid_way_leaves_no_file_and_a_later_read_completes(
        sdk: ClientSettings, proxied_store_service: RunningService, proxied_store_stub: blob_pb2_grpc.BlobServiceStub,
        proxy: StoreProxy, tmp_path: Path):
    data, digest = random_blob(4 * DIRECT.read_range_bytes + 4321)
    await BlobClient(proxied_store_stub, direct=DIRECT).upload_bytes(data)
    proxy.reset()
    proxy.hold_after = DIRECT.read_range_bytes + 1024 * 1024
    client = FramevaultClient(dataclasses.replace(sdk, blob_target=f"127.0.0.1:{proxied_store_service.port}",
                                                  blob_direct_range_bytes=DIRECT.read_range_bytes))
    try:
        blobs = BlobTransfer(client)
        read = asyncio.ensure_future(blobs.read_to_file(digest, tmp_path / "copy.bin"))
        await proxy.holding.wait()
        # Mid-way: some ranges landed in the hidden file, none of it is at the destination's name.
        assert not (tmp_path / "copy.bin").exists()
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        proxy.released.set()
        assert list(tmp_path.iterdir()) == []
        proxy.reset()
        copy = await blobs.read_to_file(digest, tmp_path / "copy.bin")
        assert copy.read_bytes() == data and [p.name for p in tmp_path.iterdir()] == ["copy.bin"]
        assert ((await blobs.blob_client()).fallbacks) == 0
    finally:
        proxy.released.set()
        await client.close()


async def test_a_verified_read_going_on_mid_way_keeps_the_bytes_before_it(
        small_parts_stub: blob_pb2_grpc.BlobServiceStub, tmp_path: Path):
    data, digest = random_blob(3 * DIRECT.read_range_bytes + 777)
    client = BlobClient(small_parts_stub, direct=DIRECT)
    await client.upload_bytes(data)
    # A read going on from an offset inside a piece (as after a fallback): only the bytes from
    # there are fetched and written, in ranges that start at that offset.
    offset = DIRECT.read_range_bytes + 1000
    seen = OrderedDigest()
    seen.update(data[:offset])
    with (tmp_path / "copy.bin").open("w+b") as out:
        out.write(data[:offset])
        out.flush()
        await client.direct_read_verified(digest, FileTarget(out.fileno()), seen)
    assert seen.matches(digest)
    assert (tmp_path / "copy.bin").read_bytes() == data


async def test_a_verified_read_hashes_the_pieces_of_a_range_while_the_rest_of_it_arrives(
        proxied_store_stub: blob_pb2_grpc.BlobServiceStub, proxy: StoreProxy):
    data, digest = random_blob(2 * DIRECT.read_range_bytes)
    one_worker = dataclasses.replace(DIRECT, concurrency=1)
    client = BlobClient(proxied_store_stub, direct=one_worker)
    await client.upload_bytes(data)
    proxy.reset()
    # The store's answer stops after 2.5 MiB of the first 3 MiB range, until released.
    proxy.hold_after = 5 * READ_PIECE_BYTES // 2
    seen = OrderedDigest()
    buffer = bytearray(digest.size)
    read = asyncio.ensure_future(client.direct_read_verified(digest, BufferTarget(buffer), seen))
    try:
        await proxy.holding.wait()
        # The two whole pieces that arrived are hashed before the range is whole.
        async with asyncio.timeout(30):
            while seen.size < 2 * READ_PIECE_BYTES:
                await asyncio.sleep(0.01)
        assert seen.size == 2 * READ_PIECE_BYTES and not read.done()
        proxy.released.set()
        await read
    finally:
        proxy.released.set()
    assert seen.matches(digest) and bytes(buffer) == data


class _HeldTarget(BufferTarget):
    """A BufferTarget whose first write waits until ``release`` is set, and which counts the bytes
    read back from it."""

    def __init__(self, buffer: bytearray):
        super().__init__(buffer)
        self.release = threading.Event()
        self.first_write_waiting = threading.Event()
        self.written = 0
        self.read_back = 0
        self._lock = threading.Lock()

    def write_at(self, offset: int, data: memoryview) -> None:
        if offset == 0:
            self.first_write_waiting.set()
            self.release.wait(30)
        super().write_at(offset, data)
        with self._lock:
            self.written += len(data)

    def read_at(self, offset: int, into: memoryview) -> None:
        super().read_at(offset, into)
        with self._lock:
            self.read_back += len(into)


async def test_pieces_landed_ahead_of_the_hashing_are_hashed_from_the_target(
        small_parts_stub: blob_pb2_grpc.BlobServiceStub):
    # Two ranges of six pieces; the first range's first piece is held back, so the second worker
    # lands all six of its pieces ahead of the hashing: four in buffers it keeps, the rest only in
    # the target.
    step = 6 * READ_PIECE_BYTES
    data, digest = random_blob(2 * step)
    client = BlobClient(small_parts_stub, direct=dataclasses.replace(DIRECT, concurrency=2, read_range_bytes=step))
    await client.upload_bytes(data)
    target = _HeldTarget(bytearray(digest.size))
    seen = OrderedDigest()
    read = asyncio.ensure_future(client.direct_read_verified(digest, target, seen))
    try:
        async with asyncio.timeout(30):
            while not (target.first_write_waiting.is_set() and target.written == step):
                await asyncio.sleep(0.01)
        assert seen.size == 0
        target.release.set()
        await read
    finally:
        target.release.set()
    assert seen.matches(digest) and bytes(target._buffer) == data
    assert target.read_back >= (6 - PIECES_HELD_PER_WORKER) * READ_PIECE_BYTES


ONE_PUT_MAX = 32 * 1024 * 1024


@pytest.fixture(scope="module")
async def one_put_service(small_parts_settings: Settings) -> AsyncIterator[RunningService]:
    """A blob service sending direct uploads up to ONE_PUT_MAX in one checked PUT."""
    async with _blob_service(small_parts_settings, blob_direct_single_put_max_bytes=ONE_PUT_MAX) as running:
        yield running


@pytest.fixture(scope="module")
async def one_put_stub(one_put_service: RunningService) -> AsyncIterator[blob_pb2_grpc.BlobServiceStub]:
    async with _stub_of(one_put_service) as stub:
        yield stub


def _put_with(url: str, data: bytes, headers: dict[str, str]) -> int:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        connection.request("PUT", f"{parts.path}?{parts.query}", body=data, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _with_checksum_of(url: str, data: bytes) -> str:
    """``url`` with its signed checksum parameter replaced by the base64 sha256 of ``data``."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query[S3_CHECKSUM_HEADER] = s3_checksum_headers(hashlib.sha256(data).hexdigest())[S3_CHECKSUM_HEADER]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


async def test_a_checked_put_url_stores_only_bytes_of_the_sha256_it_signs(s3: S3BlobStorage):
    """The store's side of one checked PUT, straight through the storage adapter's signing."""
    data, forged = b"the named bytes", b"any other bytes"
    key = f"conformance/{uuid.uuid4().hex}"
    url = await s3.presign_put_checked(key, hashlib.sha256(data).hexdigest(), timedelta(minutes=5))
    try:
        assert 400 <= await asyncio.to_thread(_put_with, url, forged, {}) < 500
        assert await s3.stat(key) is None
        assert await asyncio.to_thread(_put_with, _with_checksum_of(url, forged), forged, {}) == 403
        assert await s3.stat(key) is None
        assert await asyncio.to_thread(_put_with, url, data, {}) == 200
        assert await s3.get(key) == data
    finally:
        await s3.delete(key)


async def test_a_one_put_upload_lands_at_the_content_address_only_with_the_signed_sha256(
        one_put_stub: blob_pb2_grpc.BlobServiceStub, s3: S3BlobStorage):
    data, digest = random_blob(2 * SMALL_PART + 5)
    forged = bytes([data[0] ^ 1]) + data[1:]
    name = _name(digest)
    plan = await one_put_stub.StartDirectUpload(blob_pb2.StartDirectUploadRequest(resource_name=name))
    assert plan.part_count == 1 and [(p.offset, p.size_bytes) for p in plan.parts] == [(0, digest.size)]
    url = plan.parts[0].url
    signed = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert signed[S3_CHECKSUM_HEADER] == [s3_checksum_headers(digest.hash)[S3_CHECKSUM_HEADER]]
    assert signed[S3_CHECKSUM_ALGORITHM_HEADER] == ["SHA256"]
    forged_crc32 = base64.b64encode(zlib.crc32(forged).to_bytes(4, "big")).decode()
    # Bytes of another sha256 are refused, also when the request names their sha256 or asks for a
    # checksum the forged bytes match; a URL whose checksum was changed fails its signature.
    assert 400 <= await asyncio.to_thread(_put_with, url, forged, {}) < 500
    assert 400 <= await asyncio.to_thread(_put_with, url, forged, s3_checksum_headers(
        hashlib.sha256(forged).hexdigest())) < 500
    assert 400 <= await asyncio.to_thread(_put_with, url, forged, {
        "x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-crc32": forged_crc32}) < 500
    assert await asyncio.to_thread(_put_with, _with_checksum_of(url, forged), forged, {}) == 403
    assert await s3.stat(cas_key(digest)) is None
    error = await rpc_error(one_put_stub.CompleteDirectUpload(blob_pb2.CompleteDirectUploadRequest(resource_name=name)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # The right bytes land at the content address, and completion finds them there.
    assert await asyncio.to_thread(_put_with, url, data, {}) == 200
    done = await one_put_stub.CompleteDirectUpload(blob_pb2.CompleteDirectUploadRequest(resource_name=name))
    assert done.committed_size == digest.size
    assert await s3.get(cas_key(digest)) == data
    assert await _staged(s3, name) == []


async def test_a_client_sends_a_blob_up_to_the_one_put_size_in_one_put_and_larger_ones_in_parts(
        one_put_stub: blob_pb2_grpc.BlobServiceStub, s3: S3BlobStorage):
    client = BlobClient(one_put_stub, direct=DIRECT)
    for size in (ONE_PUT_MAX, ONE_PUT_MAX + 1):
        data, digest = random_blob(size)
        name = _name(digest)
        plan = await one_put_stub.StartDirectUpload(blob_pb2.StartDirectUploadRequest(resource_name=name))
        assert plan.part_count == (1 if size <= ONE_PUT_MAX else 5)
        result = await client.upload_bytes(data, upload_id=name.split("/")[1])
        assert result.bytes_sent == size and not result.already_existed
        assert await s3.get(cas_key(digest)) == data
        assert await _staged(s3, name) == []
    assert (client.direct_transfers, client.fallbacks) == (2, 0)


async def test_a_file_going_in_one_put_is_sent_from_the_file_and_stored_only_with_its_sha256(
        one_put_stub: blob_pb2_grpc.BlobServiceStub, s3: S3BlobStorage, tmp_path: Path):
    data, digest = random_blob(ONE_PUT_MAX - 3)
    path = tmp_path / "video.bin"
    path.write_bytes(data)
    client = BlobClient(one_put_stub, direct=DIRECT)
    reads: list[int] = []

    async def read_at(offset: int, size: int) -> bytes:
        reads.append(offset)
        with path.open("rb") as source:
            source.seek(offset)
            return source.read(size)

    reached: list[int] = []
    result = await client.upload(digest, read_at, source=path, sent_up_to=reached.append)
    assert result.bytes_sent == digest.size and not result.already_existed
    assert await s3.get(cas_key(digest)) == data
    # The bytes went from the file to the socket, and how far they got was told in order.
    assert reads == [] and reached[-1] == digest.size and reached == sorted(reached)
    assert (client.direct_transfers, client.fallbacks) == (1, 0)

    # The file changed after it was hashed: the store refuses the PUT of the signed sha256, and the
    # service's stream, which the write falls back to, refuses the bytes too. Nothing is stored.
    other, changed = random_blob(ONE_PUT_MAX - 3)
    path.write_bytes(other[:-1] + bytes([other[-1] ^ 1]))
    client = BlobClient(one_put_stub, direct=DIRECT, max_attempts=2)
    with pytest.raises(grpc.aio.AioRpcError):
        await client.upload(changed, read_at, source=path)
    assert client.fallbacks == 1
    assert await s3.stat(cas_key(changed)) is None


async def test_uploads_go_in_one_put_only_once_the_store_proved_it_checks_the_sha256(
        small_parts_settings: Settings):
    settings = Settings(**{**small_parts_settings.__dict__, "blob_direct_single_put_max_bytes": ONE_PUT_MAX})
    storage = S3BlobStorage(settings)
    try:
        direct = DirectUploads(storage, BlobStore(storage, settings), settings)
        data, digest = random_blob(SMALL_PART + 1)
        # Before the probe: in parts, staged and read back.
        plan = await direct.start(_name(digest), [], 0)
        assert plan.part_count == 2
        await direct.probe_store()
        plan = await direct.start(_name(digest), [], 0)
        assert plan.part_count == 1
        assert await storage.refuses_mismatched_checksums()
    finally:
        await storage.close()


async def test_a_direct_read_of_bytes_changed_in_the_store_is_refused_and_shows_nothing(
        sdk: ClientSettings, tmp_path: Path, s3: S3BlobStorage):
    source = tmp_path / "video.bin"
    data = random_blob(9 * 1024 * 1024 + 5)[0]
    source.write_bytes(data)
    blobs = BlobTransfer(current_client())
    digest = await blobs.upload_file(str(source))
    # Changed inside the store behind the service's back, same size.
    await s3.put(cas_key(digest), data[:-1] + bytes([data[-1] ^ 1]))
    try:
        with pytest.raises(FramevaultError) as refused:
            await blobs.read_to_file(digest, tmp_path / "copy.bin")
        assert refused.value.code == grpc.StatusCode.DATA_LOSS
        assert sorted(p.name for p in tmp_path.iterdir()) == ["video.bin"]
        with pytest.raises(FramevaultError) as refused:
            await blobs.read_bytes(digest)
        assert refused.value.code == grpc.StatusCode.DATA_LOSS
        assert ((await blobs.blob_client()).fallbacks) == 0
    finally:
        await s3.delete(cas_key(digest))
