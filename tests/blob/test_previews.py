"""CreatePreview against the real S3 server, with real images made by Pillow."""

from __future__ import annotations

import io

import grpc
import pytest
from PIL import Image

from framevault.api.blob_client import BlobClient
from framevault.api.digests import BlobDigest
from framevault.common.config import Settings
from framevault.v1 import blob_pb2, blob_pb2_grpc

from .helpers import proto_digest, random_blob, rpc_error, violated_fields


def image_bytes(width: int, height: int, fmt: str, mode: str = "RGB", **save: object) -> bytes:
    image = Image.new(mode, (width, height))
    # A gradient, so encoders have real content to work on.
    image.putdata([((x * 255) // width, (y * 255) // height, 128, 200)[:len(mode)] if mode != "L" else x % 256
                   for y in range(height) for x in range(width)])
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


async def stored(blob_client: BlobClient, data: bytes) -> BlobDigest:
    return (await blob_client.upload_bytes(data)).digest


async def test_thumbnail_of_a_real_jpeg(blob_stub: blob_pb2_grpc.BlobServiceStub, blob_client: BlobClient) -> None:
    source = await stored(blob_client, image_bytes(640, 480, "JPEG", quality=90))
    request = blob_pb2.CreatePreviewRequest(digest=proto_digest(source), max_edge=128)
    preview = await blob_stub.CreatePreview(request)
    assert (preview.width, preview.height) == (128, 96)
    assert (preview.source_width, preview.source_height) == (640, 480)
    assert preview.content_type == "image/jpeg"
    data = await blob_client.read(BlobDigest(preview.digest.hash, preview.digest.size_bytes))
    with Image.open(io.BytesIO(data)) as thumbnail:
        assert thumbnail.format == "JPEG" and thumbnail.size == (128, 96)

    again = await blob_stub.CreatePreview(request)
    assert again == preview


@pytest.mark.parametrize(("fmt", "mode", "preview_format", "pillow_format", "content_type"), [
    ("PNG", "RGBA", blob_pb2.PREVIEW_FORMAT_WEBP, "WEBP", "image/webp"),
    ("PNG", "RGB", blob_pb2.PREVIEW_FORMAT_PNG, "PNG", "image/png"),
    ("TIFF", "RGB", blob_pb2.PREVIEW_FORMAT_JPEG, "JPEG", "image/jpeg"),
    ("TIFF", "L", blob_pb2.PREVIEW_FORMAT_PNG, "PNG", "image/png"),
])
async def test_preview_formats(blob_stub: blob_pb2_grpc.BlobServiceStub, blob_client: BlobClient, fmt: str,
                               mode: str, preview_format: int, pillow_format: str, content_type: str) -> None:
    source = await stored(blob_client, image_bytes(300, 500, fmt, mode))
    preview = await blob_stub.CreatePreview(blob_pb2.CreatePreviewRequest(
        digest=proto_digest(source), max_edge=100, format=preview_format))  # type: ignore[arg-type]
    assert (preview.width, preview.height) == (60, 100)
    assert preview.content_type == content_type
    data = await blob_client.read(BlobDigest(preview.digest.hash, preview.digest.size_bytes))
    with Image.open(io.BytesIO(data)) as thumbnail:
        assert thumbnail.format == pillow_format and thumbnail.size == (60, 100)


async def test_a_smaller_source_is_not_enlarged(blob_stub: blob_pb2_grpc.BlobServiceStub,
                                                blob_client: BlobClient) -> None:
    source = await stored(blob_client, image_bytes(40, 30, "PNG"))
    preview = await blob_stub.CreatePreview(blob_pb2.CreatePreviewRequest(digest=proto_digest(source), max_edge=512))
    assert (preview.width, preview.height) == (40, 30)


async def test_preview_errors(blob_stub: blob_pb2_grpc.BlobServiceStub, blob_client: BlobClient,
                              settings: Settings) -> None:
    not_an_image = await stored(blob_client, b"%PDF-1.7 this is not an image at all")
    error = await rpc_error(blob_stub.CreatePreview(blob_pb2.CreatePreviewRequest(
        digest=proto_digest(not_an_image), max_edge=64)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["digest"]

    gif = await stored(blob_client, image_bytes(20, 20, "GIF", "L"))
    error = await rpc_error(blob_stub.CreatePreview(blob_pb2.CreatePreviewRequest(digest=proto_digest(gif),
                                                                                  max_edge=64)))
    assert (error.code(), violated_fields(error)) == (grpc.StatusCode.INVALID_ARGUMENT, ["digest"])

    jpeg = await stored(blob_client, image_bytes(20, 20, "JPEG"))
    error = await rpc_error(blob_stub.CreatePreview(blob_pb2.CreatePreviewRequest(
        digest=proto_digest(jpeg), max_edge=settings.blob_max_preview_edge + 1, format=99)))  # type: ignore[arg-type]
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["max_edge", "format"]

    error = await rpc_error(blob_stub.CreatePreview(blob_pb2.CreatePreviewRequest(digest=proto_digest(jpeg))))
    assert violated_fields(error) == ["max_edge"]

    _, unknown = random_blob(1000)
    error = await rpc_error(blob_stub.CreatePreview(blob_pb2.CreatePreviewRequest(
        digest=proto_digest(unknown), max_edge=64)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
