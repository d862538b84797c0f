"""CAS operations of the blob service against the real S3 server: find, batch, read, URL, delete."""

from __future__ import annotations

import hashlib
import urllib.parse
import urllib.request

import grpc
import pytest
from google.rpc import code_pb2

from framevault.api.blob_client import BlobClient
from framevault.api.digests import EMPTY_SHA256, BlobDigest, digest_of
from framevault.blob.keys import cas_key
from framevault.blob.storage import S3BlobStorage
from framevault.common.config import Settings
from framevault.v1 import blob_pb2, blob_pb2_grpc

from .helpers import MIB, proto_digest, random_blob, resource_info, rpc_error, violated_fields

EMPTY = blob_pb2.Digest(hash=EMPTY_SHA256, size_bytes=0)


async def test_capabilities_come_from_settings(blob_stub: blob_pb2_grpc.BlobServiceStub, settings: Settings) -> None:
    caps = await blob_stub.GetCapabilities(blob_pb2.GetCapabilitiesRequest())
    assert caps.digest_function == "sha256"
    assert caps.max_batch_total_size_bytes == settings.blob_max_batch_total_size_bytes
    assert caps.max_batch_blobs == settings.blob_max_batch_blobs
    assert 256 * 1024 <= caps.preferred_chunk_size_bytes <= MIB
    assert caps.max_chunk_size_bytes == settings.blob_max_chunk_size_bytes
    assert caps.max_blob_size_bytes == settings.blob_max_size_bytes
    assert caps.max_preview_edge == settings.blob_max_preview_edge
    assert caps.max_download_url_seconds == settings.blob_max_download_url_seconds
    assert caps.resumable_part_size_bytes == settings.s3_part_size_bytes


async def test_capabilities_advertise_bounded_parts_and_url_lifetimes(
        blob_stub: blob_pb2_grpc.BlobServiceStub) -> None:
    caps = await blob_stub.GetCapabilities(blob_pb2.GetCapabilitiesRequest())
    # The largest blob fits S3's 10,000 parts of the advertised resume granularity.
    assert 5 * MIB <= caps.resumable_part_size_bytes <= 128 * MIB
    assert caps.max_blob_size_bytes <= 10_000 * caps.resumable_part_size_bytes
    # A leaked download URL stops working within the hour.
    assert 900 <= caps.max_download_url_seconds <= 3600


async def test_find_missing_reports_unknown_once_in_order(blob_stub: blob_pb2_grpc.BlobServiceStub,
                                                          blob_client: BlobClient) -> None:
    stored_data, stored = random_blob(100)
    await blob_client.upload_bytes(stored_data)
    _, first = random_blob(10)
    _, second = random_blob(20)
    request = blob_pb2.FindMissingBlobsRequest(digests=[
        proto_digest(second), proto_digest(stored), EMPTY, proto_digest(first), proto_digest(second)])
    response = await blob_stub.FindMissingBlobs(request)
    assert [(d.hash, d.size_bytes) for d in response.missing_digests] == [
        (second.hash, second.size), (first.hash, first.size)]


async def test_find_missing_treats_wrong_size_as_missing(blob_stub: blob_pb2_grpc.BlobServiceStub,
                                                         blob_client: BlobClient) -> None:
    data, digest = random_blob(64)
    await blob_client.upload_bytes(data)
    wrong_size = blob_pb2.Digest(hash=digest.hash, size_bytes=65)
    response = await blob_stub.FindMissingBlobs(blob_pb2.FindMissingBlobsRequest(digests=[wrong_size]))
    assert list(response.missing_digests) == [wrong_size]


async def test_find_missing_rejects_malformed_digests(blob_stub: blob_pb2_grpc.BlobServiceStub) -> None:
    request = blob_pb2.FindMissingBlobsRequest(digests=[
        EMPTY, blob_pb2.Digest(hash="ABC", size_bytes=1), blob_pb2.Digest(hash=EMPTY_SHA256, size_bytes=-1)])
    error = await rpc_error(blob_stub.FindMissingBlobs(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["digests[1].hash", "digests[2].size_bytes"]


async def test_find_missing_over_the_limit_is_rejected_whole(blob_stub: blob_pb2_grpc.BlobServiceStub,
                                                             settings: Settings) -> None:
    request = blob_pb2.FindMissingBlobsRequest(digests=[EMPTY] * (settings.blob_max_batch_blobs + 1))
    error = await rpc_error(blob_stub.FindMissingBlobs(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["digests"]


async def test_batch_update_gives_a_status_per_blob(blob_stub: blob_pb2_grpc.BlobServiceStub,
                                                    s3: S3BlobStorage) -> None:
    good_data, good = random_blob(1000)
    bad_data, bad = random_blob(50)
    tampered = bytes([bad_data[0] ^ 1]) + bad_data[1:]
    request = blob_pb2.BatchUpdateBlobsRequest(requests=[
        blob_pb2.BatchUpdateBlobsRequest.Request(digest=proto_digest(good), data=good_data),
        blob_pb2.BatchUpdateBlobsRequest.Request(digest=proto_digest(bad), data=tampered),
        blob_pb2.BatchUpdateBlobsRequest.Request(digest=blob_pb2.Digest(hash="nothex", size_bytes=3), data=b"abc"),
        blob_pb2.BatchUpdateBlobsRequest.Request(digest=EMPTY, data=b""),
    ])
    response = await blob_stub.BatchUpdateBlobs(request)
    codes = [r.status.code for r in response.responses]
    assert codes == [code_pb2.OK, code_pb2.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT, code_pb2.OK]
    assert "requests[1].data" in response.responses[1].status.message
    assert "requests[2].digest.hash" in response.responses[2].status.message
    assert [r.digest for r in response.responses] == [r.digest for r in request.requests]
    assert await s3.get(cas_key(good)) == good_data
    assert await s3.stat(cas_key(bad)) is None


async def test_batch_update_over_the_limits_is_rejected_whole(blob_stub: blob_pb2_grpc.BlobServiceStub,
                                                              settings: Settings, s3: S3BlobStorage) -> None:
    data, digest = random_blob(settings.blob_max_batch_total_size_bytes // 2 + 1)
    request = blob_pb2.BatchUpdateBlobsRequest(requests=[
        blob_pb2.BatchUpdateBlobsRequest.Request(digest=proto_digest(digest), data=data)] * 2)
    error = await rpc_error(blob_stub.BatchUpdateBlobs(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["requests"]
    assert await s3.stat(cas_key(digest)) is None

    too_many = blob_pb2.BatchUpdateBlobsRequest(requests=[
        blob_pb2.BatchUpdateBlobsRequest.Request(digest=EMPTY)] * (settings.blob_max_batch_blobs + 1))
    error = await rpc_error(blob_stub.BatchUpdateBlobs(too_many))
    assert violated_fields(error) == ["requests"]


async def test_batch_read_gives_data_or_not_found(blob_stub: blob_pb2_grpc.BlobServiceStub,
                                                  blob_client: BlobClient, settings: Settings) -> None:
    data, digest = random_blob(3000)
    await blob_client.upload_bytes(data)
    _, unknown = random_blob(5)
    response = await blob_stub.BatchReadBlobs(blob_pb2.BatchReadBlobsRequest(
        digests=[proto_digest(digest), proto_digest(unknown), EMPTY, blob_pb2.Digest(hash="x", size_bytes=1)]))
    assert [r.status.code for r in response.responses] == [
        code_pb2.OK, code_pb2.NOT_FOUND, code_pb2.OK, code_pb2.INVALID_ARGUMENT]
    assert response.responses[0].data == data
    assert response.responses[1].data == b"" and response.responses[2].data == b""

    over = blob_pb2.BatchReadBlobsRequest(digests=[
        blob_pb2.Digest(hash=digest.hash, size_bytes=settings.blob_max_batch_total_size_bytes + 1)])
    error = await rpc_error(blob_stub.BatchReadBlobs(over))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["digests"]


async def test_ranged_reads_stream_the_right_bytes_in_bounded_chunks(
        blob_stub: blob_pb2_grpc.BlobServiceStub, blob_client: BlobClient) -> None:
    data, digest = random_blob(3 * MIB + 12345)
    await blob_client.upload_bytes(data)
    for offset, limit in [(0, 0), (1, 10), (MIB - 3, MIB + 7), (len(data) - 5, 0), (len(data) - 5, 100),
                          (len(data), 0)]:
        messages = [m async for m in blob_stub.ReadBlob(
            blob_pb2.ReadBlobRequest(digest=proto_digest(digest), offset=offset, limit=limit))]
        end = len(data) if limit == 0 else min(len(data), offset + limit)
        assert b"".join(m.data for m in messages) == data[offset:end]
        assert all(len(m.data) <= MIB for m in messages)
        assert all(len(m.data) >= 256 * 1024 for m in messages[:-1])
        position = offset
        for message in messages:
            assert message.offset == position
            position += len(message.data)


async def test_read_errors(blob_stub: blob_pb2_grpc.BlobServiceStub, blob_client: BlobClient) -> None:
    data, digest = random_blob(100)
    await blob_client.upload_bytes(data)
    past = await rpc_error(blob_stub.ReadBlob(blob_pb2.ReadBlobRequest(digest=proto_digest(digest), offset=101)))
    assert past.code() == grpc.StatusCode.OUT_OF_RANGE
    assert violated_fields(past) == ["offset"]

    negative = await rpc_error(blob_stub.ReadBlob(
        blob_pb2.ReadBlobRequest(digest=proto_digest(digest), offset=-1, limit=-2)))
    assert negative.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(negative) == ["offset", "limit"]

    _, unknown = random_blob(100)
    missing = await rpc_error(blob_stub.ReadBlob(blob_pb2.ReadBlobRequest(digest=proto_digest(unknown))))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    info = resource_info(missing)
    assert info is not None and info.resource_type == "blob" and unknown.hash in info.resource_name

    malformed = await rpc_error(blob_stub.ReadBlob(blob_pb2.ReadBlobRequest(
        digest=blob_pb2.Digest(hash="../../etc/passwd", size_bytes=1))))
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(malformed) == ["digest.hash"]


async def test_empty_blob_is_always_present(blob_stub: blob_pb2_grpc.BlobServiceStub) -> None:
    messages = [m async for m in blob_stub.ReadBlob(blob_pb2.ReadBlobRequest(digest=EMPTY))]
    assert b"".join(m.data for m in messages) == b""
    url = await blob_stub.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(digest=EMPTY))
    with urllib.request.urlopen(url.url, timeout=10) as response:  # noqa: S310 - local test server
        assert response.read() == b""


async def test_download_url_serves_the_blob_over_http(blob_stub: blob_pb2_grpc.BlobServiceStub,
                                                      blob_client: BlobClient) -> None:
    data, digest = random_blob(200_000)
    await blob_client.upload_bytes(data)
    response = await blob_stub.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(
        digest=proto_digest(digest), expires_in_seconds=60, content_type="image/jpeg"))
    assert response.url.startswith("http")
    assert response.expire_time.seconds > 0
    with urllib.request.urlopen(response.url, timeout=10) as http:  # noqa: S310 - local test server
        body = http.read()
        assert http.headers["Content-Type"] == "image/jpeg"
    assert hashlib.sha256(body).hexdigest() == digest.hash and len(body) == digest.size


def _lifetime(url: str) -> int:
    return int(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Expires"][0])


def _fetch(url: str) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as http:  # noqa: S310 - local test server
        return http.read(), dict(http.headers)


@pytest.mark.parametrize(("requested", "served", "disposition"), [
    ("image/png", "image/png", "inline"),
    ("IMAGE/WEBP; q=1", "image/webp", "inline"),
    ("video/mp4", "video/mp4", "inline"),
    ("text/html", "application/octet-stream", "attachment"),
    ("text/html; charset=utf-8", "application/octet-stream", "attachment"),
    ("image/svg+xml", "application/octet-stream", "attachment"),
    ("application/javascript", "application/octet-stream", "attachment"),
    ("application/xhtml+xml", "application/octet-stream", "attachment"),
    ("", "application/octet-stream", "attachment"),
])
async def test_download_urls_never_serve_a_page(blob_stub: blob_pb2_grpc.BlobServiceStub, blob_client: BlobClient,
                                                requested: str, served: str, disposition: str) -> None:
    page = b"<html><script>document.title = 'run from the bucket origin'</script></html>" + random_blob(16)[0]
    result = await blob_client.upload_bytes(page)
    response = await blob_stub.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(
        digest=proto_digest(result.digest), content_type=requested))
    body, headers = _fetch(response.url)
    assert body == page
    assert (headers["Content-Type"], headers["Content-Disposition"]) == (served, disposition)


async def test_download_urls_live_at_most_the_advertised_lifetime(blob_stub: blob_pb2_grpc.BlobServiceStub,
                                                                  blob_client: BlobClient) -> None:
    data, digest = random_blob(10)
    await blob_client.upload_bytes(data)
    caps = await blob_stub.GetCapabilities(blob_pb2.GetCapabilitiesRequest())
    for seconds in (caps.max_download_url_seconds + 1, 7 * 24 * 3600, 2**31 - 1, -1):
        error = await rpc_error(blob_stub.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(
            digest=proto_digest(digest), expires_in_seconds=seconds)))
        assert (error.code(), violated_fields(error)) == (grpc.StatusCode.INVALID_ARGUMENT, ["expires_in_seconds"])
    longest = await blob_stub.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(
        digest=proto_digest(digest), expires_in_seconds=caps.max_download_url_seconds))
    assert _lifetime(longest.url) == caps.max_download_url_seconds
    default = await blob_stub.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(digest=proto_digest(digest)))
    assert _lifetime(default.url) == 900
    assert _fetch(default.url)[0] == data


async def test_download_url_errors(blob_stub: blob_pb2_grpc.BlobServiceStub, settings: Settings,
                                   blob_client: BlobClient) -> None:
    data, digest = random_blob(10)
    await blob_client.upload_bytes(data)
    too_long = await rpc_error(blob_stub.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(
        digest=proto_digest(digest), expires_in_seconds=settings.blob_max_download_url_seconds + 1,
        content_type="not a type\r\nX-Injected: 1")))
    assert too_long.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(too_long) == ["expires_in_seconds", "content_type"]
    _, unknown = random_blob(10)
    missing = await rpc_error(blob_stub.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(digest=proto_digest(unknown))))
    assert missing.code() == grpc.StatusCode.NOT_FOUND


async def test_delete_blobs(blob_stub: blob_pb2_grpc.BlobServiceStub, blob_client: BlobClient,
                            s3: S3BlobStorage) -> None:
    data, digest = random_blob(77)
    await blob_client.upload_bytes(data)
    _, unknown = random_blob(77)
    response = await blob_stub.DeleteBlobs(blob_pb2.DeleteBlobsRequest(
        digests=[proto_digest(digest), proto_digest(unknown), EMPTY]))
    assert [r.status.code for r in response.responses] == [code_pb2.OK, code_pb2.NOT_FOUND, code_pb2.OK]
    assert await s3.stat(cas_key(digest)) is None
    assert await blob_client.missing([digest]) == {digest}

    malformed = await rpc_error(blob_stub.DeleteBlobs(blob_pb2.DeleteBlobsRequest(
        digests=[proto_digest(unknown), blob_pb2.Digest(hash="zz", size_bytes=1)])))
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(malformed) == ["digests[1].hash"]


@pytest.mark.parametrize("size", [0, 1, 4096])
async def test_client_round_trip(blob_client: BlobClient, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    result = await blob_client.upload_bytes(data)
    assert result.digest == digest_of(data)
    assert await blob_client.read(BlobDigest(result.digest.hash, size)) == data
