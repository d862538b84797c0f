"""The private ``minio`` SDK methods the blob storage relies on still exist and behave as pinned.

An SDK upgrade that renames, reorders or drops one of them fails here, naming the method.
"""

from __future__ import annotations

import inspect
import uuid
from pathlib import Path

import pytest
from minio import Minio
from minio.error import S3Error

from framevault.blob import minio_internals
from framevault.common.config import Settings


@pytest.mark.parametrize("method", sorted(minio_internals.PINNED_SIGNATURES))
def test_private_method_has_the_pinned_parameters(method: str) -> None:
    found = getattr(Minio, method, None)
    assert found is not None, f"minio.Minio.{method} is gone: blob/minio_internals.py needs another way to call S3"
    parameters = tuple(inspect.signature(found).parameters)[1:]  # without self
    assert parameters == minio_internals.PINNED_SIGNATURES[method], (
        f"minio.Minio.{method} changed its parameters to {parameters}: review blob/minio_internals.py")


def test_every_private_call_is_pinned() -> None:
    source = inspect.getsource(minio_internals)
    called = {name for name in dir(Minio) if name.startswith("_") and not name.startswith("__")
              and f"client.{name}(" in source}
    assert called == set(minio_internals.PINNED_SIGNATURES)


@pytest.mark.parametrize("server_settings", ["settings", "versitygw_settings"])
def test_round_trip_through_every_private_call(server_settings: str, request: pytest.FixtureRequest) -> None:
    settings: Settings = request.getfixturevalue(server_settings)
    client = Minio(settings.s3_endpoint, access_key=settings.s3_access_key, secret_key=settings.s3_secret_key.get_secret_value(),
                   secure=settings.s3_secure, region=settings.s3_region)
    bucket, prefix = settings.s3_bucket, f"internals/{uuid.uuid4().hex}/"

    etag = minio_internals.put_with_headers(client, bucket, prefix + "state", b"one",
                                            {"Content-Type": "application/json", "If-None-Match": "*"})
    assert etag and '"' not in etag
    with pytest.raises(S3Error) as refused:
        minio_internals.put_with_headers(client, bucket, prefix + "state", b"two", {"If-None-Match": "*"})
    assert refused.value.code in {"PreconditionFailed", "ConditionalRequestConflict"}

    key = prefix + "multi"
    upload_id = minio_internals.create_multipart_upload(client, bucket, key, "application/octet-stream")
    part_etag = minio_internals.upload_part(client, bucket, key, upload_id, 1, b"payload")
    page = minio_internals.list_parts_page(client, bucket, key, upload_id, None)
    assert [(p.part_number, p.etag.strip('"'), p.size) for p in page.parts] == [(1, part_etag, 7)]
    uploads = minio_internals.list_multipart_uploads_page(client, bucket, prefix, None, None)
    assert [(u.object_name, u.upload_id) for u in uploads.uploads] == [(key, upload_id)]
    minio_internals.complete_multipart_upload(client, bucket, key, upload_id, [(1, part_etag)])
    response = client.get_object(bucket, key)
    try:
        assert response.read() == b"payload"
    finally:
        response.close()
        response.release_conn()

    aborted = minio_internals.create_multipart_upload(client, bucket, prefix + "aborted", "application/octet-stream")
    minio_internals.abort_multipart_upload(client, bucket, prefix + "aborted", aborted)
    assert minio_internals.list_multipart_uploads_page(client, bucket, prefix, None, None).uploads == []
    for name in ("state", "multi"):
        client.remove_object(bucket, prefix + name)


def test_no_other_server_module_calls_a_private_sdk_method() -> None:
    package = Path(minio_internals.__file__).resolve().parents[1]  # framevault/
    private = {name for name in dir(Minio) if name.startswith("_") and not name.startswith("__")}
    offenders = sorted(
        f"{path.relative_to(package)}: {name}"
        for path in package.rglob("*.py") if path.name != "minio_internals.py"
        for name in private if f".{name}(" in path.read_text())
    assert offenders == []
