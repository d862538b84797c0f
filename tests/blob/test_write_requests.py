"""WriteBlob requests encoded by hand (blob_client.write_request): the same bytes the protobuf runtime
writes, sent as they are on the channel, and uploads over them resuming like any other."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from framevault.api.blob_client import BlobClient, write_blob_encoded, write_request
from framevault.blob.keys import cas_key
from framevault.blob.storage import S3BlobStorage
from framevault.common.server import RunningService
from framevault.v1 import blob_pb2, blob_pb2_grpc

from .helpers import SMALL_PART, channel_to, random_blob

# The session's services issue the admin key every call here carries.
pytestmark = pytest.mark.usefixtures("metadata_service")

CHUNK = 1024 * 1024
NAME = f"uploads/{uuid.UUID(int=7)}/blobs/{'ab' * 32}/{3 * 2 ** 40}"


@pytest.mark.parametrize(("resource_name", "write_offset", "data", "finish_write"), [
    (NAME, 0, b"first chunk", False),
    ("", 1024 * 1024, b"\x00" * 1024 * 1024, False),
    ("", 2 ** 62 + 5, b"x", True),
    ("", 127, b"", True),
    ("", 128, b"y" * 127, False),
    ("uploads/ä/blobs/名前", 2 ** 14, b"z" * 2 ** 14, False),
    ("", 0, b"", False),
    (NAME, 0, b"", True),
])
def test_a_request_is_encoded_as_protobuf_writes_it(resource_name: str, write_offset: int, data: bytes,
                                                    finish_write: bool):
    message = blob_pb2.WriteBlobRequest(resource_name=resource_name, write_offset=write_offset, data=data,
                                        finish_write=finish_write)
    encoded = write_request(resource_name, write_offset, data, finish_write)
    assert blob_pb2.WriteBlobRequest.FromString(encoded) == message
    assert encoded == message.SerializeToString(deterministic=True)
    # A view into a larger buffer (a chunk of a blob held whole) encodes the same.
    assert write_request(resource_name, write_offset, memoryview(b"<" + data + b">")[1:-1], finish_write) == encoded


async def test_an_upload_over_encoded_requests_resumes_from_the_committed_part(
        small_parts_service: RunningService, small_parts_stub: blob_pb2_grpc.BlobServiceStub, s3: S3BlobStorage):
    data, digest = random_blob(2 * SMALL_PART + 12345)
    upload_id = str(uuid.uuid4())
    name = BlobClient.upload_name(digest, upload_id)
    async with channel_to(small_parts_service.port) as channel:
        write_blob = write_blob_encoded(channel)

        async def first_part_and_a_bit() -> AsyncIterator[bytes]:
            for offset in range(0, SMALL_PART + CHUNK, CHUNK):
                yield write_request(name if offset == 0 else "", offset, data[offset:offset + CHUNK], False)

        # A stream that ends without finishing: the service keeps the whole part it received.
        cut = await write_blob(first_part_and_a_bit())
        assert cut.committed_size == SMALL_PART
        client = BlobClient(small_parts_stub, chunk_size=CHUNK, write_blob=write_blob)
        result = await client.upload_bytes(data, upload_id=upload_id)
    assert result.digest == digest and not result.already_existed
    assert result.bytes_sent == len(data) - SMALL_PART
    assert await s3.get(cas_key(digest)) == data
    assert await client.read(digest) == data
