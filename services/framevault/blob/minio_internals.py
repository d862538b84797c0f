"""The S3 calls the ``minio`` SDK offers only as private methods, in one place.

minio-py has no public API for part-level multipart control (create, upload
one part, copy one part from another object, list parts, complete with named
parts, abort, list uploads) nor for
a PUT with conditional headers: its public ``put_object`` turns every header
it does not know (``If-Match``, ``If-None-Match``) into user metadata. The
blob service needs exactly those operations, so this module calls the SDK's
private methods and nothing else in the code base does.

``PINNED_SIGNATURES`` records the parameters of each private method in the
pinned SDK version (``minio==7.2.20``); ``tests/blob/test_minio_internals.py``
compares them with the installed SDK and runs every call against a real S3
server, so an SDK upgrade that changes them fails there, not in production.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast
from urllib.parse import quote

from minio import Minio
from minio.datatypes import ListMultipartUploadsResult, ListPartsResult, Part
from minio.helpers import ObjectWriteResult

# Parameter names, in order, of the private methods used below (``self`` left out).
PINNED_SIGNATURES: Mapping[str, tuple[str, ...]] = {
    "_put_object": ("bucket_name", "object_name", "data", "headers", "query_params"),
    "_create_multipart_upload": ("bucket_name", "object_name", "headers"),
    "_upload_part": ("bucket_name", "object_name", "data", "headers", "upload_id", "part_number"),
    "_upload_part_copy": ("bucket_name", "object_name", "upload_id", "part_number", "headers"),
    "_list_parts": ("bucket_name", "object_name", "upload_id", "max_parts", "part_number_marker",
                    "extra_headers", "extra_query_params"),
    "_complete_multipart_upload": ("bucket_name", "object_name", "upload_id", "parts", "ssec"),
    "_abort_multipart_upload": ("bucket_name", "object_name", "upload_id"),
    "_list_multipart_uploads": ("bucket_name", "delimiter", "encoding_type", "key_marker", "max_uploads",
                                "prefix", "upload_id_marker", "extra_headers", "extra_query_params"),
}


def _body(data: bytes | memoryview) -> bytes:
    """``data`` as the SDK's annotations want it: it sends any buffer as it is (its hashing, ``len`` and
    urllib3 take one), so a memoryview of a part buffer goes out without being copied into bytes."""
    return cast(bytes, data)


def put_with_headers(client: Minio, bucket: str, key: str, data: bytes | memoryview, headers: dict[str, str]) -> str:
    """One PutObject request carrying exactly ``headers`` (conditions included); returns the ETag."""
    written: ObjectWriteResult = client._put_object(bucket, key, _body(data), dict(headers))
    return (written.etag or "").strip('"')


def create_multipart_upload(client: Minio, bucket: str, key: str, content_type: str) -> str:
    return client._create_multipart_upload(bucket, key, {"Content-Type": content_type})


def upload_part(client: Minio, bucket: str, key: str, upload_id: str, number: int, data: bytes | memoryview) -> str:
    """Uploads part ``number``; returns its ETag without quotes."""
    return client._upload_part(bucket, key, _body(data), None, upload_id, number).strip('"')


def upload_part_copy(client: Minio, bucket: str, key: str, upload_id: str, number: int, source_key: str,
                     source_etag: str, first: int, last: int) -> str:
    """Part ``number`` copied inside the store from bytes ``first..last`` of ``source_key``, only while
    the source is at ``source_etag``; returns the part's ETag without quotes."""
    headers: dict[str, str | list[str] | tuple[str]] = {
        "x-amz-copy-source": f"/{bucket}/{quote(source_key)}",
        "x-amz-copy-source-range": f"bytes={first}-{last}",
        "x-amz-copy-source-if-match": f'"{source_etag}"',
    }
    etag, _ = client._upload_part_copy(bucket, key, upload_id, number, headers)
    return etag.strip('"')


def list_parts_page(client: Minio, bucket: str, key: str, upload_id: str, marker: str | None) -> ListPartsResult:
    return client._list_parts(bucket, key, upload_id, part_number_marker=marker)


def complete_multipart_upload(client: Minio, bucket: str, key: str, upload_id: str,
                              parts: Sequence[tuple[int, str]]) -> None:
    """Completes the upload from exactly these (part number, ETag) pairs."""
    client._complete_multipart_upload(bucket, key, upload_id, [Part(number, etag) for number, etag in parts])


def abort_multipart_upload(client: Minio, bucket: str, key: str, upload_id: str) -> None:
    client._abort_multipart_upload(bucket, key, upload_id)


def list_multipart_uploads_page(client: Minio, bucket: str, prefix: str, key_marker: str | None,
                                upload_id_marker: str | None) -> ListMultipartUploadsResult:
    return client._list_multipart_uploads(bucket, prefix=prefix, key_marker=key_marker,
                                          upload_id_marker=upload_id_marker)
