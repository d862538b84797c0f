"""Who may call what on the blob service (docs/SECURITY.md, "The blob service").

The blob service keeps no identities and no roles. It plugs its own
authenticator and authorizer into the shared auth interceptor
(``framevault.auth.interceptor``), with the rules of the one permission table
(``framevault.auth.permissions``):

- Service tokens are verified here; only the metadata service's is accepted.
- JWTs are verified here (signature, issuer, audience, expiry, not-before) on
  every call. API keys and the roles of any end caller come from the metadata
  service (``AuthenticateCaller``, called with the blob service's own service
  token), remembered per token for ``blob_caller_cache_seconds``: a revoked
  key or role stops working here within that time.
- Reading a blob (``blobs.read``, ``blobs.preview``) needs, for every digest
  of the request, a frame of a dataset the caller may view that references
  it, as the metadata service answers (``CheckBlobAccess``, batched). Answers
  that allow are remembered per principal and digest for
  ``blob_read_grant_cache_seconds``; refusals are not remembered, so a blob
  becomes readable as soon as a frame references it. A preview that
  CreatePreview made (``framevault.blob.previews``) is readable by whoever
  may read one of its sources: a digest the reference check refuses costs
  one listing of its source records and one more check of those sources.
  A refused digest gets the same answer whether or not the store holds it.
- Uploads and FindMissingBlobs need the editor role on some dataset; garbage
  collection and deleting blobs need an admin. The metadata service's own
  identity holds what the table lists for it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import grpc
from grpc import aio

from framevault.api.digests import MAX_BLOB_SIZE, BlobDigest, digest_from_proto, digest_to_proto
from framevault.api.transport import TokenSource
from framevault.auth.credentials import API_KEY_PREFIX, SERVICE_TOKEN_PREFIX, JwtVerifier, ServiceTokenVerifier
from framevault.auth.expiring_cache import ExpiringCache
from framevault.auth.interceptor import AuthInterceptor, Grant
from framevault.auth.permissions import BLOB_SERVICE, BLOB_SERVICE_NAME, METADATA_SERVICE, Rule, Scope
from framevault.auth.principals import Caller
from framevault.auth.service_identity import service_token
from framevault.auth.startup import security_enabled
from framevault.blob.keys import parse_upload_name
from framevault.common.channels import service_channel
from framevault.common.config import Settings
from framevault.common.digests import checked_digest
from framevault.common.errors import (
    FramevaultError,
    Internal,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from framevault.v1 import access_pb2, access_pb2_grpc

ACCESS_SERVICE = access_pb2.DESCRIPTOR.services_by_name["AccessService"].full_name
# CheckBlobAccess answers at most this many digests per call (access.proto).
CHECK_BLOB_ACCESS_MAX_DIGESTS = 1000
_TRANSIENT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                              grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED})
_METHOD_PREFIX = f"/{BLOB_SERVICE_NAME}/"



class AccessSource(Protocol):
    """What the metadata service answers about end callers."""

    async def authenticate(self, token: str) -> Caller:
        """The caller ``token`` authenticates, with its admin flag and dataset roles;
        ``Unauthenticated`` when it authenticates none."""
        ...

    async def denied(self, principal: str, digests: Sequence[BlobDigest]) -> set[BlobDigest]:
        """Which of ``digests`` (at most CHECK_BLOB_ACCESS_MAX_DIGESTS) ``principal`` may not read."""
        ...

    async def close(self) -> None: ...


class MetadataAccess:
    """``AccessSource`` over the metadata service's AuthenticateCaller and CheckBlobAccess."""

    def __init__(self, target: str, settings: Settings, token: TokenSource):
        self._timeout = settings.service_call_timeout_seconds
        self._channel = service_channel(target, settings, [ACCESS_SERVICE], token=token)
        self._stub = cast("access_pb2_grpc.AccessServiceAsyncStub", access_pb2_grpc.AccessServiceStub(self._channel))

    async def authenticate(self, token: str) -> Caller:
        try:
            caller = await self._stub.AuthenticateCaller(access_pb2.AuthenticateCallerRequest(token=token),
                                                         timeout=self._timeout)
        except aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise Unauthenticated("the credential is not valid", reason="CREDENTIAL_INVALID") from None
            raise _access_error(exc) from exc
        return Caller(principal=caller.principal, credential_kind=caller.credential_kind,
                      api_key_id=caller.api_key_id, admin=caller.admin,
                      dataset_roles={binding.dataset_id: binding.role for binding in caller.roles
                                     if binding.dataset_id})

    async def denied(self, principal: str, digests: Sequence[BlobDigest]) -> set[BlobDigest]:
        request = access_pb2.CheckBlobAccessRequest(principal=principal,
                                                    digests=[digest_to_proto(d) for d in digests])
        try:
            response = await self._stub.CheckBlobAccess(request, timeout=self._timeout)
        except aio.AioRpcError as exc:
            raise _access_error(exc) from exc
        return {digest_from_proto(d) for d in response.denied_digests}

    async def close(self) -> None:
        await self._channel.close()


def _access_error(exc: aio.AioRpcError) -> FramevaultError:
    if exc.code() in _TRANSIENT_CODES:
        return Unavailable(f"the metadata service cannot check access now ({exc.code().name}); retry",
                           retry_after_ms=500)
    return Internal(f"the metadata service failed an access check ({exc.code().name})")


async def _nothing_to_close() -> None:
    return None


class BlobAuthenticator:
    """``framevault.auth.interceptor.Authenticator`` of the blob service."""

    def __init__(self, source: AccessSource, settings: Settings, clock: Callable[[], float] = time.monotonic):
        self._source = source
        self._services = ServiceTokenVerifier(settings, BLOB_SERVICE)
        self._jwts = JwtVerifier(settings)
        self._callers: ExpiringCache[bytes, Caller] = ExpiringCache(
            settings.blob_caller_cache_seconds, settings.blob_access_cache_entries, clock)

    async def authenticate(self, token: str) -> Caller:
        if token.startswith(SERVICE_TOKEN_PREFIX):
            caller = self._services.verify(token)
            if caller.service != METADATA_SERVICE:
                raise Unauthenticated("the blob service accepts only the metadata service's service token",
                                      reason="CREDENTIAL_INVALID")
            return caller
        if not token.startswith(API_KEY_PREFIX):
            # Checked here on every call, so an expired JWT is refused even while its roles are remembered.
            await self._jwts.verify(token)
        # Keyed by a digest: the cache holds no usable credential.
        key = hashlib.sha256(token.encode()).digest()
        cached = self._callers.get(key)
        if cached is not None:
            return cached
        caller = await self._source.authenticate(token)
        self._callers.put(key, caller)
        return caller


# The sources a preview blob was made of (``framevault.blob.previews.preview_sources``).
PreviewSources = Callable[[BlobDigest], Awaitable[list[BlobDigest]]]


async def _no_preview_sources(_: BlobDigest) -> list[BlobDigest]:
    return []


class BlobAuthorizer:
    """``framevault.auth.interceptor.Authorizer`` of the blob service: the table's blob rules."""

    def __init__(self, source: AccessSource, settings: Settings, clock: Callable[[], float] = time.monotonic,
                 preview_sources: PreviewSources = _no_preview_sources):
        self._source = source
        self._preview_sources = preview_sources
        self._max_batch = settings.blob_max_batch_blobs
        self._readable: ExpiringCache[tuple[str, BlobDigest], bool] = ExpiringCache(
            settings.blob_read_grant_cache_seconds, settings.blob_access_cache_entries, clock)

    async def authorize(self, caller: Caller, method: str, rule: Rule, request: Any) -> Grant:
        permission = rule.permission
        digests = _request_digests(method, request)
        grant = Grant(caller, resources=[d.uri for d in digests])
        if caller.admin or (caller.service and caller.service in permission.services):
            return grant
        if caller.service:
            # A service holds only what the table lists for it.
            raise PermissionDenied(permission.name)
        if permission.scope is Scope.AUTHENTICATED:
            return grant
        if permission.scope is Scope.ANY_DATASET:
            if any(role >= permission.role for role in caller.dataset_roles.values()):
                return grant
            raise PermissionDenied(permission.name, f"permission {permission.name!r} denied: it needs the "
                                                    "editor role on some dataset")
        if permission.scope is Scope.BLOB_REFERENCE:
            await self._require_readable(caller, permission.name, digests, request)
            return grant
        # ADMIN, and any scope the blob service has no way to decide: refused.
        raise PermissionDenied(permission.name)

    async def _require_readable(self, caller: Caller, permission: str, digests: Sequence[BlobDigest],
                                request: Any) -> None:
        if request is None or len(digests) > self._max_batch:
            # Undecodable or over the limit: the handler refuses it with the field named.
            return
        wanted = list(dict.fromkeys(d for d in digests
                                    if not d.is_empty and self._readable.get((caller.principal, d)) is None))
        denied = await self._denied(caller.principal, wanted)
        if denied:
            denied = await self._unreadable_previews(caller.principal, denied)
        if denied:
            raise PermissionDenied(permission, f"permission {permission!r} denied: {len(denied)} of the blobs "
                                               "are referenced by no dataset the caller may view")
        for digest in wanted:
            self._readable.put((caller.principal, digest), True)

    async def _denied(self, principal: str, digests: Sequence[BlobDigest]) -> set[BlobDigest]:
        denied: set[BlobDigest] = set()
        for start in range(0, len(digests), CHECK_BLOB_ACCESS_MAX_DIGESTS):
            denied |= await self._source.denied(principal, digests[start:start + CHECK_BLOB_ACCESS_MAX_DIGESTS])
        return denied

    async def _unreadable_previews(self, principal: str, denied: set[BlobDigest]) -> set[BlobDigest]:
        """Of the refused digests, those that are no preview of a source ``principal`` may read."""
        sources = {digest: await self._preview_sources(digest) for digest in denied}
        candidates = list(dict.fromkeys(s for of_one in sources.values() for s in of_one))
        if not candidates:
            return denied
        unreadable = await self._denied(principal, candidates)
        return {digest for digest in denied if all(s in unreadable for s in sources[digest])}


def _upload_digest(request: Any) -> list[tuple[str, int]]:
    try:
        digest = parse_upload_name(request.resource_name, MAX_BLOB_SIZE).digest
    except InvalidArgument:
        return []
    return [(digest.hash, digest.size)]


def _listed(request: Any) -> list[tuple[str, int]]:
    return [(d.hash, d.size_bytes) for d in request.digests]


def _single(request: Any) -> list[tuple[str, int]]:
    return [(request.digest.hash, request.digest.size_bytes)]


def _updated(request: Any) -> list[tuple[str, int]]:
    return [(r.digest.hash, r.digest.size_bytes) for r in request.requests]


# Where each blob request names its digests.
_DIGESTS_OF: dict[str, Callable[[Any], list[tuple[str, int]]]] = {
    "FindMissingBlobs": _listed, "BatchUpdateBlobs": _updated, "BatchReadBlobs": _listed,
    "WriteBlob": _upload_digest, "QueryWriteStatus": _upload_digest, "StartDirectUpload": _upload_digest,
    "CompleteDirectUpload": _upload_digest, "ReadBlob": _single,
    "GetDownloadUrl": _single, "CreatePreview": _single, "DeleteBlobs": _listed,
}


def _request_digests(method: str, request: Any) -> list[BlobDigest]:
    """The well-formed digests a blob request names; malformed ones are left to the handler, which
    refuses them with the field named."""
    extract = _DIGESTS_OF.get(method.removeprefix(_METHOD_PREFIX)) if method.startswith(_METHOD_PREFIX) else None
    if request is None or extract is None:
        return []
    digests = []
    for hash_hex, size in extract(request):
        try:
            digests.append(checked_digest(hash_hex, size, "digest"))
        except InvalidArgument:
            continue
    return digests


@dataclass
class BlobSecurity:
    """What the blob app adds with security on: the auth interceptor, and the blob service's own
    identity on its calls to the metadata service."""

    interceptors: list[aio.ServerInterceptor] = field(default_factory=list)
    service_token: TokenSource | None = None
    close: Callable[[], Awaitable[None]] = _nothing_to_close


def blob_security(settings: Settings, preview_sources: PreviewSources = _no_preview_sources) -> BlobSecurity:
    """Security of the blob service per ``security_mode`` (SystemExit naming a missing setting)."""
    if not security_enabled(settings, "blob"):
        return BlobSecurity()
    identity = service_token(settings, BLOB_SERVICE, METADATA_SERVICE)
    source = MetadataAccess(settings.metadata_target, settings, identity)
    authorizer = BlobAuthorizer(source, settings, preview_sources=preview_sources)
    interceptor = AuthInterceptor(BlobAuthenticator(source, settings), authorizer)
    return BlobSecurity(interceptors=[interceptor], service_token=identity, close=source.close)
