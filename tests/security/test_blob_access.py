"""The blob service's access control, with security on, against both services in-process.

Every BlobService RPC x every kind of caller gets the expected code, and a refused call leaves the
store as it was. Reads need a dataset the caller may view that references the blob; uploads need
an editor role somewhere; deleting needs an admin; the metadata service's identity holds what the
permission table lists for it, and no end caller's credential passes for it.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from frames.helpers import by_id, items, unique, upload
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc import aio
from PIL import Image
from support import channel_to, error_details, free_port

from framevault.api.digests import BlobDigest, digest_of, digest_to_proto
from framevault.auth.credentials import SERVICE_TOKEN_PREFIX, ServiceTokenMinter
from framevault.auth.expiring_cache import ExpiringCache
from framevault.auth.permissions import BLOB_SERVICE_NAME, RULES
from framevault.blob.access import BlobAuthenticator, MetadataAccess
from framevault.blob.storage import S3BlobStorage
from framevault.common.config import Settings
from framevault.common.errors import Unauthenticated
from framevault.common.server import RunningService
from framevault.metadata.frames.validation import derive_frame_id
from framevault.stack.versitygw import VersityS3
from framevault.v1 import (
    access_pb2,
    access_pb2_grpc,
    blob_pb2,
    blob_pb2_grpc,
    dataset_pb2,
    frame_pb2,
    metadata_service_pb2_grpc,
)
from framevault.v1 import metadata_service_pb2 as ms

OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED

JWT_ISSUER = "https://issuer.framevault.test"
JWT_AUDIENCE = "framevault"

CALLERS = ["anonymous", "invalid", "viewer", "editor", "owner", "admin", "other_owner", "metadata_service"]


def _png(seed: str) -> bytes:
    """A small real PNG (previews decode it), different per seed."""
    image = Image.new("RGB", (32, 24), color=tuple(uuid.uuid5(uuid.NAMESPACE_OID, seed).bytes[:3]))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass
class SecureStack:
    blob_settings: Settings
    blob: RunningService
    metadata: RunningService
    blob_stub: Any
    metadata_stub: Any
    access_stub: Any
    s3: S3BlobStorage
    jwt_key: rsa.RSAPrivateKey
    tokens: dict[str, str] = field(default_factory=dict)
    dataset_a: str = ""
    dataset_b: str = ""
    version_a: str = ""
    version_b: str = ""
    # Referenced by a frame of dataset A only (a PNG), and of dataset B only.
    blob_a: BlobDigest = digest_of(b"")
    blob_b: BlobDigest = digest_of(b"")
    # Per caller: a stored blob nothing references, for DeleteBlobs.
    throwaway: dict[str, BlobDigest] = field(default_factory=dict)

    def metadata_of(self, caller: str) -> tuple[tuple[str, str], ...]:
        token = self.tokens.get(caller)
        return () if token is None else (("authorization", f"Bearer {token}"),)

    def jwt_for(self, subject: str, *, lifetime: int = 300, not_before: float | None = None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "sub": subject, "iat": now,
                                  "exp": now + lifetime}
        if not_before is not None:
            claims["nbf"] = int(not_before)
        return jwt.encode(claims, self.jwt_key, algorithm="RS256")

    async def put(self, data: bytes, caller: str = "admin") -> BlobDigest:
        digest = digest_of(data)
        response = await self.blob_stub.BatchUpdateBlobs(blob_pb2.BatchUpdateBlobsRequest(requests=[
            blob_pb2.BatchUpdateBlobsRequest.Request(digest=digest_to_proto(digest), data=data)]),
            metadata=self.metadata_of(caller))
        assert response.responses[0].status.code == 0
        return digest

    async def stored(self) -> dict[str, tuple[int, str]]:
        """Every object of the bucket: key -> (size, etag)."""
        return {info.key: (info.size, info.etag) async for info in self.s3.list_objects("")}

    async def has(self, digest: BlobDigest) -> bool:
        found = await self.blob_stub.FindMissingBlobs(blob_pb2.FindMissingBlobsRequest(
            digests=[digest_to_proto(digest)]), metadata=self.metadata_of("admin"))
        return not found.missing_digests


async def _start(spec_builder: Callable[[Settings], Any], settings: Settings) -> RunningService:
    running = RunningService(spec_builder(settings), settings)
    await running.start()
    return running


@pytest.fixture(scope="module")
async def secure(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecureStack]:
    from framevault.blob.app import build_service as build_blob
    from framevault.metadata.app import build_service as build_metadata

    directory: Path = tmp_path_factory.mktemp("blob-security")
    jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_key_file = directory / "issuer.pem"
    public_key_file.write_bytes(jwt_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    blob_port, metadata_port = free_port(), free_port()
    # An S3 server of its own, with credentials of its own.
    s3_secret = "blob-tests-s3-secret-" + uuid.uuid4().hex
    s3_server = VersityS3(directory / "s3", free_port(), access_key="blobsec", secret_key=s3_secret,
                          bucket="blobsec").start()
    common = {
        **settings.__dict__,
        "security_mode": "on",
        "s3_endpoint": s3_server.endpoint, "s3_access_key": "blobsec", "s3_secret_key": s3_secret,
        "s3_bucket": "blobsec", "s3_secure": False,
        "service_token_secret": "blob-tests-service-token-secret-" + uuid.uuid4().hex,
        "api_key_pepper": "blob-tests-pepper-" + uuid.uuid4().hex,
        "view_cursor_secret": "blob-tests-cursor-secret-" + uuid.uuid4().hex,
        "jwt_issuer": JWT_ISSUER, "jwt_audience": JWT_AUDIENCE, "jwt_public_key_file": str(public_key_file),
        "jwt_algorithms": "RS256",
        "mongodb_database": f"{settings.mongodb_database}_blobsec",
        "blob_address": f"127.0.0.1:{blob_port}", "blob_target": f"127.0.0.1:{blob_port}",
        "metadata_address": f"127.0.0.1:{metadata_port}", "metadata_target": f"127.0.0.1:{metadata_port}",
        # Every answer is asked again: these tests revoke and grant between calls.
        "blob_caller_cache_seconds": 0, "blob_read_grant_cache_seconds": 0,
    }
    blob_settings = Settings(**common)
    metadata_settings = Settings(**{**common, "bootstrap_admin_key_file": str(directory / "admin.key")})
    blob = await _start(build_blob, blob_settings)
    metadata = await _start(build_metadata, metadata_settings)
    s3 = S3BlobStorage(blob_settings)
    # Token-less channels: each call sends the credential of the caller it tests.
    async with channel_to(blob.port, anonymous=True) as blob_channel, \
            channel_to(metadata.port, anonymous=True) as metadata_channel:
        stack = SecureStack(
            blob_settings=blob_settings, blob=blob, metadata=metadata,
            blob_stub=blob_pb2_grpc.BlobServiceStub(blob_channel),
            metadata_stub=metadata_service_pb2_grpc.MetadataServiceStub(metadata_channel),
            access_stub=access_pb2_grpc.AccessServiceStub(metadata_channel), s3=s3, jwt_key=jwt_key)
        stack.tokens["admin"] = (directory / "admin.key").read_text().strip()
        stack.tokens["invalid"] = "fv_0123456789abcdef_" + "x" * 43
        stack.tokens["metadata_service"] = ServiceTokenMinter(blob_settings, "metadata", "blob").token()
        await _populate(stack)
        yield stack
    await metadata.stop(grace=1)
    await blob.stop(grace=1)
    await s3.close()
    s3_server.stop()
    from pymongo import MongoClient

    # The bucket goes with the S3 server's directory; the database is dropped.
    with MongoClient(settings.mongodb_uri.get_secret_value()) as mongo:
        mongo.drop_database(blob_settings.mongodb_database)


async def _populate(stack: SecureStack) -> None:
    admin = stack.metadata_of("admin")
    versions = []
    for name in ("a", "b"):
        dataset = await stack.metadata_stub.CreateDataset(ms.CreateDatasetRequest(
            dataset=dataset_pb2.Dataset(name=unique(f"blobsec-{name}"))), metadata=admin)
        version = await stack.metadata_stub.GetVersion(ms.GetVersionRequest(version=dataset_pb2.VersionRef(
            dataset=dataset_pb2.DatasetRef(id=dataset.id), name="Current")), metadata=admin)
        versions.append((dataset.id, version.id))
    (stack.dataset_a, stack.version_a), (stack.dataset_b, stack.version_b) = versions
    for principal, role, dataset_id in (("viewer-a", access_pb2.ROLE_VIEWER, stack.dataset_a),
                                        ("editor-a", access_pb2.ROLE_EDITOR, stack.dataset_a),
                                        ("owner-a", access_pb2.ROLE_OWNER, stack.dataset_a),
                                        ("owner-b", access_pb2.ROLE_OWNER, stack.dataset_b),
                                        ("jwt:alice", access_pb2.ROLE_VIEWER, stack.dataset_a)):
        await stack.access_stub.GrantRole(access_pb2.GrantRoleRequest(
            principal=principal, role=role, dataset=dataset_pb2.DatasetRef(id=dataset_id)), metadata=admin)
    for caller, principal in (("viewer", "viewer-a"), ("editor", "editor-a"), ("owner", "owner-a"),
                              ("other_owner", "owner-b")):
        stack.tokens[caller] = await _new_key(stack, principal)
    stack.blob_a = await _frame_with_inline(stack, stack.version_a, _png("a-" + uuid.uuid4().hex))
    stack.blob_b = await _frame_with_inline(stack, stack.version_b, b"only in b " + uuid.uuid4().bytes)


async def _new_key(stack: SecureStack, principal: str) -> str:
    created = await stack.access_stub.CreateApiKey(access_pb2.CreateApiKeyRequest(
        api_key=access_pb2.ApiKey(principal=principal)), metadata=stack.metadata_of("admin"))
    return str(created.token)


async def _frame_with_inline(stack: SecureStack, version_id: str, data: bytes, caller: str = "admin"
                             ) -> BlobDigest:
    """Uploads a frame whose source is ``data`` inline: the metadata service stores the bytes."""

    class _Authorized:
        """The metadata stub with ``caller``'s credential on the upload stream."""

        def UploadFrames(self) -> Any:  # noqa: N802 - the stub method's name
            return stack.metadata_stub.UploadFrames(metadata=stack.metadata_of(caller))

    frame = frame_pb2.Frame(sources=[frame_pb2.Source(inline_content=data, content_type="image/png")])
    run = await upload(_Authorized(), version_id, items([frame]))
    assert run.summary is not None and run.summary.failed == 0, run.results
    return digest_of(data)


# -- one call of every RPC -----------------------------------------------------------------------

Call = Callable[[SecureStack, str], Awaitable[None]]


def _fresh(caller: str, what: str) -> bytes:
    return f"{what} by {caller} {uuid.uuid4().hex}".encode()


async def _capabilities(stack: SecureStack, caller: str) -> None:
    await stack.blob_stub.GetCapabilities(blob_pb2.GetCapabilitiesRequest(), metadata=stack.metadata_of(caller))


async def _find_missing(stack: SecureStack, caller: str) -> None:
    await stack.blob_stub.FindMissingBlobs(blob_pb2.FindMissingBlobsRequest(
        digests=[digest_to_proto(stack.blob_a)]), metadata=stack.metadata_of(caller))


async def _batch_update(stack: SecureStack, caller: str) -> None:
    data = _fresh(caller, "batch update")
    response = await stack.blob_stub.BatchUpdateBlobs(blob_pb2.BatchUpdateBlobsRequest(requests=[
        blob_pb2.BatchUpdateBlobsRequest.Request(digest=digest_to_proto(digest_of(data)), data=data)]),
        metadata=stack.metadata_of(caller))
    assert response.responses[0].status.code == 0
    assert await stack.has(digest_of(data))


async def _batch_read(stack: SecureStack, caller: str) -> None:
    response = await stack.blob_stub.BatchReadBlobs(blob_pb2.BatchReadBlobsRequest(
        digests=[digest_to_proto(stack.blob_a)]), metadata=stack.metadata_of(caller))
    assert digest_of(response.responses[0].data) == stack.blob_a


async def _write(stack: SecureStack, caller: str) -> None:
    data = _fresh(caller, "write")
    digest = digest_of(data)

    async def one_message() -> AsyncIterator[blob_pb2.WriteBlobRequest]:
        yield blob_pb2.WriteBlobRequest(resource_name=f"uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size}",
                                        write_offset=0, data=data, finish_write=True)

    response = await stack.blob_stub.WriteBlob(one_message(), metadata=stack.metadata_of(caller))
    assert response.committed_size == digest.size
    assert await stack.has(digest)


async def _query_write_status(stack: SecureStack, caller: str) -> None:
    digest = stack.blob_a
    await stack.blob_stub.QueryWriteStatus(blob_pb2.QueryWriteStatusRequest(
        resource_name=f"uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size}"), metadata=stack.metadata_of(caller))


async def _read(stack: SecureStack, caller: str) -> None:
    chunks = [m.data async for m in stack.blob_stub.ReadBlob(blob_pb2.ReadBlobRequest(
        digest=digest_to_proto(stack.blob_a)), metadata=stack.metadata_of(caller))]
    assert digest_of(b"".join(chunks)) == stack.blob_a


async def _download_url(stack: SecureStack, caller: str) -> None:
    response = await stack.blob_stub.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(
        digest=digest_to_proto(stack.blob_a)), metadata=stack.metadata_of(caller))
    assert response.url


async def _preview(stack: SecureStack, caller: str) -> None:
    response = await stack.blob_stub.CreatePreview(blob_pb2.CreatePreviewRequest(
        digest=digest_to_proto(stack.blob_a), max_edge=8), metadata=stack.metadata_of(caller))
    assert response.width == 8


async def _delete(stack: SecureStack, caller: str) -> None:
    digest = stack.throwaway[caller]
    response = await stack.blob_stub.DeleteBlobs(blob_pb2.DeleteBlobsRequest(digests=[digest_to_proto(digest)]),
                                                 metadata=stack.metadata_of(caller))
    assert response.responses[0].status.code == 0
    assert not await stack.has(digest)


async def _collect_garbage(stack: SecureStack, caller: str) -> None:
    async for _ in stack.blob_stub.CollectGarbage(blob_pb2.CollectGarbageRequest(
            dry_run=True, grace_period_seconds=3_000_000_000), metadata=stack.metadata_of(caller)):
        pass


async def _start_direct(stack: SecureStack, caller: str) -> None:
    digest = digest_of(_fresh(caller, "direct upload"))
    response = await stack.blob_stub.StartDirectUpload(blob_pb2.StartDirectUploadRequest(
        resource_name=f"uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size}"), metadata=stack.metadata_of(caller))
    assert [part.part_number for part in response.parts] == [1]


async def _complete_direct(stack: SecureStack, caller: str) -> None:
    # An upload nobody started: a caller allowed to upload learns NOT_FOUND, any other is refused first.
    digest = digest_of(_fresh(caller, "direct upload"))
    await stack.blob_stub.CompleteDirectUpload(blob_pb2.CompleteDirectUploadRequest(
        resource_name=f"uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size}"), metadata=stack.metadata_of(caller))


CALLS: dict[str, Call] = {
    "GetCapabilities": _capabilities, "FindMissingBlobs": _find_missing, "BatchUpdateBlobs": _batch_update,
    "BatchReadBlobs": _batch_read, "WriteBlob": _write, "QueryWriteStatus": _query_write_status,
    "ReadBlob": _read, "GetDownloadUrl": _download_url, "CreatePreview": _preview, "DeleteBlobs": _delete,
    "CollectGarbage": _collect_garbage, "StartDirectUpload": _start_direct, "CompleteDirectUpload": _complete_direct,
}

_AUTHENTICATED_OK = {c: OK for c in CALLERS} | {"anonymous": UNAUTHENTICATED, "invalid": UNAUTHENTICATED}
# Blob reads: a dataset the caller may view references the blob (dataset A does; B's owner sees none).
_READERS = _AUTHENTICATED_OK | {"other_owner": DENIED}
# Uploads and FindMissing: the editor role on some dataset.
_WRITERS = _AUTHENTICATED_OK | {"viewer": DENIED}
_ADMINS = {c: DENIED for c in CALLERS} | {"anonymous": UNAUTHENTICATED, "invalid": UNAUTHENTICATED, "admin": OK}
EXPECTED: dict[str, dict[str, grpc.StatusCode]] = {
    "GetCapabilities": _AUTHENTICATED_OK, "FindMissingBlobs": _WRITERS, "BatchUpdateBlobs": _WRITERS,
    "BatchReadBlobs": _READERS, "WriteBlob": _WRITERS, "QueryWriteStatus": _WRITERS, "ReadBlob": _READERS,
    "GetDownloadUrl": _READERS, "CreatePreview": _READERS, "DeleteBlobs": _ADMINS,
    "CollectGarbage": _ADMINS | {"metadata_service": OK}, "StartDirectUpload": _WRITERS,
    "CompleteDirectUpload": {c: grpc.StatusCode.NOT_FOUND if code == OK else code for c, code in _WRITERS.items()},
}


def test_the_matrix_covers_every_blob_rpc():
    methods = set(blob_pb2.DESCRIPTOR.services_by_name["BlobService"].methods_by_name)
    assert set(CALLS) == methods == set(EXPECTED)


def _permission_named(exc: aio.AioRpcError) -> str:
    return next((d.metadata["permission"] for d in error_details(exc)
                 if isinstance(d, error_details_pb2.ErrorInfo) and "permission" in d.metadata), "")


async def _code_of(call: Awaitable[None]) -> tuple[grpc.StatusCode, aio.AioRpcError | None]:
    try:
        await call
    except aio.AioRpcError as exc:
        return exc.code(), exc
    return OK, None


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("rpc", sorted(CALLS))
async def test_every_blob_rpc_for_every_caller(secure: SecureStack, rpc: str, caller: str):
    expected = EXPECTED[rpc][caller]
    if rpc == "DeleteBlobs":
        secure.throwaway[caller] = await secure.put(_fresh(caller, "delete"))
    before = await secure.stored() if expected != OK else None
    code, error = await _code_of(CALLS[rpc](secure, caller))
    assert code == expected, f"{rpc} as {caller}: {error.details() if error else 'OK'}"
    if expected == DENIED:
        assert error is not None
        assert _permission_named(error) == RULES[f"/{BLOB_SERVICE_NAME}/{rpc}"].permission.name
    if before is not None:
        after = await secure.stored()
        assert after == before, f"{rpc} as {caller} was refused but changed the store"


async def test_a_refused_write_reaches_a_client_still_streaming_as_the_refusal(secure: SecureStack):
    """A client that streams chunk after chunk without waiting sees PERMISSION_DENIED, not INTERNAL."""
    data = uuid.uuid4().bytes * (8 * 1024 * 1024 // 16)
    digest = digest_of(data)
    chunk = 1024 * 1024

    async def eager() -> AsyncIterator[blob_pb2.WriteBlobRequest]:
        name = f"uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size}"
        for offset in range(0, len(data), chunk):
            yield blob_pb2.WriteBlobRequest(resource_name=name if offset == 0 else "", write_offset=offset,
                                            data=data[offset:offset + chunk],
                                            finish_write=offset + chunk >= len(data))

    before = await secure.stored()
    code, error = await _code_of(secure.blob_stub.WriteBlob(eager(), metadata=secure.metadata_of("viewer")))
    assert code == DENIED and error is not None and _permission_named(error) == "blobs.write"
    code, _ = await _code_of(secure.blob_stub.WriteBlob(eager()))
    assert code == UNAUTHENTICATED
    assert await secure.stored() == before


# -- reads across datasets -------------------------------------------------------------------------


async def test_a_viewer_of_one_dataset_cannot_read_a_blob_only_another_dataset_references(secure: SecureStack):
    viewer = secure.metadata_of("viewer")
    never_stored = digest_of(b"stored nowhere " + uuid.uuid4().bytes)
    refusals = []
    for digest in (secure.blob_b, never_stored):
        proto = digest_to_proto(digest)
        for attempt in (
            secure.blob_stub.BatchReadBlobs(blob_pb2.BatchReadBlobsRequest(digests=[proto]), metadata=viewer),
            secure.blob_stub.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(digest=proto), metadata=viewer),
            _drained(secure.blob_stub.ReadBlob(blob_pb2.ReadBlobRequest(digest=proto), metadata=viewer)),
            secure.blob_stub.CreatePreview(blob_pb2.CreatePreviewRequest(digest=proto, max_edge=8),
                                           metadata=viewer),
            # One readable digest does not open the batch for the other.
            secure.blob_stub.BatchReadBlobs(blob_pb2.BatchReadBlobsRequest(
                digests=[digest_to_proto(secure.blob_a), proto]), metadata=viewer),
        ):
            code, error = await _code_of(attempt)
            assert code == DENIED and error is not None
            refusals.append((error.details(), _permission_named(error)))
    # The same answer whether the store holds the blob or not.
    half = len(refusals) // 2
    assert refusals[:half] == refusals[half:]
    # B's owner reads it; A's viewer reads A's blob.
    owner_b = secure.metadata_of("other_owner")
    read = await secure.blob_stub.BatchReadBlobs(blob_pb2.BatchReadBlobsRequest(
        digests=[digest_to_proto(secure.blob_b)]), metadata=owner_b)
    assert digest_of(read.responses[0].data) == secure.blob_b
    url = await secure.blob_stub.GetDownloadUrl(blob_pb2.GetDownloadUrlRequest(
        digest=digest_to_proto(secure.blob_a)), metadata=viewer)
    assert url.url


async def _drained(call: Any) -> None:
    async for _ in call:
        pass


async def test_a_blob_becomes_readable_when_a_viewable_dataset_references_it_and_stops_with_the_role(
        secure: SecureStack):
    data = b"referenced later " + uuid.uuid4().bytes
    digest = await secure.put(data, caller="editor")
    request = blob_pb2.BatchReadBlobsRequest(digests=[digest_to_proto(digest)])
    code, _ = await _code_of(secure.blob_stub.BatchReadBlobs(request, metadata=secure.metadata_of("viewer")))
    assert code == DENIED  # uploaded, but no frame references it yet
    await _frame_with_inline(secure, secure.version_a, data, caller="editor")
    read = await secure.blob_stub.BatchReadBlobs(request, metadata=secure.metadata_of("viewer"))
    assert read.responses[0].data == data
    principal = "viewer-late"
    token = await _new_key(secure, principal)
    admin = secure.metadata_of("admin")
    await secure.access_stub.GrantRole(access_pb2.GrantRoleRequest(
        principal=principal, role=access_pb2.ROLE_VIEWER, dataset=dataset_pb2.DatasetRef(id=secure.dataset_a)),
        metadata=admin)
    late = (("authorization", f"Bearer {token}"),)
    assert (await secure.blob_stub.BatchReadBlobs(request, metadata=late)).responses[0].data == data
    await secure.access_stub.RevokeRole(access_pb2.RevokeRoleRequest(
        principal=principal, dataset=dataset_pb2.DatasetRef(id=secure.dataset_a)), metadata=admin)
    code, _ = await _code_of(secure.blob_stub.BatchReadBlobs(request, metadata=late))
    assert code == DENIED
    await secure.access_stub.RevokeApiKey(access_pb2.RevokeApiKeyRequest(
        api_key_id=token.split("_")[1]), metadata=admin)
    code, _ = await _code_of(secure.blob_stub.GetCapabilities(blob_pb2.GetCapabilitiesRequest(), metadata=late))
    assert code == UNAUTHENTICATED


# -- the metadata service acting for its callers --------------------------------------------------------


async def test_the_metadata_service_stores_inline_bytes_for_an_authorized_caller(secure: SecureStack):
    editor = secure.metadata_of("editor")
    uploaded = b"uploaded inline by an editor " + uuid.uuid4().bytes
    digest = await _frame_with_inline(secure, secure.version_a, uploaded, caller="editor")
    read = [m.data async for m in secure.blob_stub.ReadBlob(blob_pb2.ReadBlobRequest(
        digest=digest_to_proto(digest)), metadata=editor)]
    assert b"".join(read) == uploaded
    replaced = b"replaced by UpdateFrame " + uuid.uuid4().bytes
    frame_id = derive_frame_id(digest.uri)
    updated = await secure.metadata_stub.UpdateFrame(ms.UpdateFrameRequest(
        version=by_id(secure.version_a), frame=frame_pb2.Frame(id=frame_id, sources=[
            frame_pb2.Source(inline_content=replaced, content_type="image/png")]),
        update_mask=field_mask_pb2.FieldMask(paths=["sources"])), metadata=editor)
    assert updated.sources[0].uri == digest_of(replaced).uri
    read = [m.data async for m in secure.blob_stub.ReadBlob(blob_pb2.ReadBlobRequest(
        digest=digest_to_proto(digest_of(replaced))), metadata=secure.metadata_of("viewer"))]
    assert b"".join(read) == replaced
    # A viewer may not do the same through the metadata service.
    code, _ = await _code_of(secure.metadata_stub.UpdateFrame(ms.UpdateFrameRequest(
        version=by_id(secure.version_a), frame=frame_pb2.Frame(id=frame_id, sources=[
            frame_pb2.Source(inline_content=b"not allowed " + uuid.uuid4().bytes)]),
        update_mask=field_mask_pb2.FieldMask(paths=["sources"])), metadata=secure.metadata_of("viewer")))
    assert code == DENIED


# -- what does not pass for the metadata service's identity ------------------------------------------


async def test_no_end_caller_credential_passes_for_the_metadata_service(secure: SecureStack):
    settings = secure.blob_settings
    other_secret = Settings(**{**settings.__dict__, "service_token_secret": "another-secret-" + uuid.uuid4().hex})
    forged = {
        # An end caller's API key dressed as a service token.
        "api key as service token": SERVICE_TOKEN_PREFIX + secure.tokens["editor"],
        # An end caller's JWT dressed as one.
        "jwt as service token": SERVICE_TOKEN_PREFIX + secure.jwt_for("service:metadata"),
        # The blob service's own token, meant for the metadata service.
        "token for the other audience": ServiceTokenMinter(settings, "blob", "metadata").token(),
        # A service token of the blob service addressed to itself: only the metadata service's is accepted.
        "blob service to itself": ServiceTokenMinter(settings, "blob", "blob").token(),
        # Signed with another secret.
        "another secret": ServiceTokenMinter(other_secret, "metadata", "blob").token(),
    }
    collect = blob_pb2.CollectGarbageRequest(dry_run=True)
    for what, token in forged.items():
        code, _ = await _code_of(_drained(secure.blob_stub.CollectGarbage(
            collect, metadata=(("authorization", f"Bearer {token}"),))))
        assert code == UNAUTHENTICATED, what
    # A JWT of the external issuer whose subject names the service is an end caller without roles.
    impostor = (("authorization", f"Bearer {secure.jwt_for('service:metadata')}"),)
    code, error = await _code_of(_drained(secure.blob_stub.CollectGarbage(collect, metadata=impostor)))
    assert code == DENIED and error is not None and _permission_named(error) == "blobs.collect_garbage"
    code, _ = await _code_of(secure.blob_stub.FindMissingBlobs(blob_pb2.FindMissingBlobsRequest(
        digests=[digest_to_proto(secure.blob_a)]), metadata=impostor))
    assert code == DENIED
    # The real service token passes.
    await _drained(secure.blob_stub.CollectGarbage(collect, metadata=secure.metadata_of("metadata_service")))


async def test_jwts_are_checked_on_the_blob_service(secure: SecureStack):
    request = blob_pb2.BatchReadBlobsRequest(digests=[digest_to_proto(secure.blob_a)])
    alice = (("authorization", f"Bearer {secure.jwt_for('alice')}"),)
    assert (await secure.blob_stub.BatchReadBlobs(request, metadata=alice)).responses[0].data
    code, _ = await _code_of(secure.blob_stub.BatchReadBlobs(request, metadata=(
        ("authorization", f"Bearer {secure.jwt_for('bob')}"),)))
    assert code == DENIED  # valid, but bob has no role
    for token in (secure.jwt_for("alice", lifetime=-600),
                  secure.jwt_for("alice", not_before=time.time() + 3600),
                  jwt.encode({"iss": JWT_ISSUER, "aud": "someone-else", "sub": "alice",
                              "exp": int(time.time()) + 300}, secure.jwt_key, algorithm="RS256"),
                  jwt.encode({"iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "sub": "alice", "exp": int(time.time()) + 300},
                             rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256")):
        code, _ = await _code_of(secure.blob_stub.BatchReadBlobs(request, metadata=(
            ("authorization", f"Bearer {token}"),)))
        assert code == UNAUTHENTICATED


# -- the caches -----------------------------------------------------------------------------------


def test_expiring_cache_forgets_after_its_lifetime_and_keeps_a_bound():
    now = [100.0]
    cache: ExpiringCache[str, int] = ExpiringCache(10, 2, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    now[0] += 9.9
    assert cache.get("a") == 1
    cache.put("c", 3)  # over the bound: the one stored first goes
    assert cache.get("a") is None and cache.get("b") == 2 and cache.get("c") == 3
    now[0] += 0.2  # past b's lifetime, within c's
    assert cache.get("b") is None and cache.get("c") == 3
    never: ExpiringCache[str, int] = ExpiringCache(0, 10)
    never.put("a", 1)
    assert never.get("a") is None


async def test_a_revoked_api_key_stops_working_on_the_blob_service_within_the_cache_lifetime(
        secure: SecureStack):
    settings = Settings(**{**secure.blob_settings.__dict__, "blob_caller_cache_seconds": 30})
    now = [1000.0]
    source = MetadataAccess(settings.metadata_target, settings,
                            _service_token(settings))
    authenticator = BlobAuthenticator(source, settings, clock=lambda: now[0])
    try:
        token = await _new_key(secure, "revoked-soon")
        assert (await authenticator.authenticate(token)).principal == "revoked-soon"
        await secure.access_stub.RevokeApiKey(access_pb2.RevokeApiKeyRequest(
            api_key_id=token.split("_")[1]), metadata=secure.metadata_of("admin"))
        now[0] += 29
        assert (await authenticator.authenticate(token)).principal == "revoked-soon"  # still remembered
        now[0] += 2
        with pytest.raises(Unauthenticated):
            await authenticator.authenticate(token)
    finally:
        await source.close()


def _service_token(settings: Settings) -> Callable[[], str]:
    from framevault.auth.service_identity import service_token

    return service_token(settings, "blob", "metadata")
