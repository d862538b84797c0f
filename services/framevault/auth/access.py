"""Access management: API keys, role bindings, the blob reference check
(the domain behind the AccessService RPCs)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf import timestamp_pb2

from framevault.api.digests import BlobDigest
from framevault.auth.access_control import MetadataAuthenticator, MetadataAuthorizer
from framevault.auth.credentials import ApiKeyHasher, IssuedApiKey
from framevault.auth.permissions import ADMIN, DATASET_ROLES, OWNER, ROLES_LIST
from framevault.auth.principals import PRINCIPAL_PATTERN, Caller
from framevault.auth.store import GLOBAL, AccessStore, Document
from framevault.common.config import Settings
from framevault.common.digests import checked_digest
from framevault.common.errors import FieldErrors, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from framevault.metadata.catalog.documents import now
from framevault.metadata.catalog.page_tokens import (
    PageTokens,
    as_id,
    as_text,
    as_time,
    check_page_size,
    collect_page,
    query_digest,
)
from framevault.v1 import access_pb2, blob_pb2, dataset_pb2

MAX_DESCRIPTION_BYTES = 1024
# Dataset roles GetCaller and AuthenticateCaller list.
MAX_LISTED_ROLES = 1000
# Digests per CheckBlobAccess call.
MAX_CHECKED_DIGESTS = 1000


def _timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC))
    return out


def api_key_to_proto(doc: Document) -> access_pb2.ApiKey:
    return access_pb2.ApiKey(
        id=doc["_id"], principal=doc["principal"], description=doc.get("description", ""),
        expire_time=_timestamp(doc.get("expire_time")), create_time=_timestamp(doc.get("create_time")),
        revoke_time=_timestamp(doc.get("revoke_time")), created_by=doc.get("created_by", ""),
    )


def binding_to_proto(doc: Document) -> access_pb2.RoleBinding:
    return access_pb2.RoleBinding(
        principal=doc["principal"], role=int(doc["role"]), dataset_id=doc["dataset_id"],  # type: ignore[arg-type]
        create_time=_timestamp(doc.get("create_time")), granted_by=doc.get("granted_by", ""),
    )


def _check_principal(principal: str, field: str, errors: FieldErrors) -> None:
    if not PRINCIPAL_PATTERN.fullmatch(principal):
        errors.add(field, "must be 1..256 printable ASCII characters without spaces")


class Access:
    def __init__(self, settings: Settings, store: AccessStore):
        self.settings = settings
        self.store = store
        self.hasher = ApiKeyHasher(settings.api_key_pepper.get_secret_value(),
                                   settings.api_key_verified_cache_seconds)
        self.authenticator = MetadataAuthenticator(settings, store, self.hasher)
        self.authorizer = MetadataAuthorizer(settings, store)
        self._pages = PageTokens.from_settings(settings)

    # -- callers --------------------------------------------------------------

    async def describe(self, caller: Caller) -> access_pb2.Caller:
        roles = [binding_to_proto(doc) for doc in await self.store.roles_of(caller.principal, MAX_LISTED_ROLES + 1)
                 if doc["dataset_id"] != GLOBAL][:MAX_LISTED_ROLES]
        return caller.to_proto(roles)

    async def authenticate_token(self, token: str) -> access_pb2.Caller:
        try:
            caller = await self.authenticator.authenticate(token)
        except Unauthenticated as exc:
            # The calling service's own credential was fine; the token it checks is not.
            raise Unauthenticated(exc.message, reason="CHECKED_TOKEN_INVALID",
                                  metadata={"checked_reason": exc.reason}) from None
        if caller.service:
            raise Unauthenticated("service tokens are not end callers", reason="CHECKED_TOKEN_INVALID")
        return await self.describe(await self.authorizer.with_admin_role(caller))

    # -- API keys -------------------------------------------------------------

    async def create_api_key(self, caller: Caller, request: access_pb2.CreateApiKeyRequest
                             ) -> access_pb2.CreateApiKeyResponse:
        key = request.api_key
        errors = FieldErrors()
        _check_principal(key.principal, "api_key.principal", errors)
        if len(key.description.encode()) > MAX_DESCRIPTION_BYTES:
            errors.add("api_key.description", f"must be at most {MAX_DESCRIPTION_BYTES} bytes")
        expire_time = None
        if key.HasField("expire_time"):
            expire_time = key.expire_time.ToDatetime(dt.UTC)
            if expire_time <= dt.datetime.now(dt.UTC):
                errors.add("api_key.expire_time", "must be in the future")
        errors.raise_if_any()
        return await self.issue_api_key(key.principal, key.description, expire_time, caller.principal)

    async def issue_api_key(self, principal: str, description: str, expire_time: dt.datetime | None,
                            created_by: str) -> access_pb2.CreateApiKeyResponse:
        issued = self.hasher.issue()
        doc = _api_key_document(issued, principal, description, expire_time, created_by)
        await self.store.insert_api_key(doc)
        return access_pb2.CreateApiKeyResponse(api_key=api_key_to_proto(doc), token=issued.token)

    async def list_api_keys(self, request: access_pb2.ListApiKeysRequest) -> access_pb2.ListApiKeysResponse:
        errors = FieldErrors()
        if request.principal:
            _check_principal(request.principal, "principal", errors)
        page_size = check_page_size(request.page_size, "page_size", errors)
        errors.raise_if_any()
        scope = query_digest("api-keys", request.principal, request.include_revoked)
        after = None
        if request.page_token:
            time, key_id = self._pages.decode(request.page_token, scope, [as_time, as_text])
            after = (time, key_id)
        cursor = await self.store.list_api_keys(request.principal, request.include_revoked, after, page_size + 1)
        keys, token = await collect_page(cursor, page_size, api_key_to_proto,
                                         lambda last: self._pages.encode([last["create_time"], last["_id"]], scope))
        return access_pb2.ListApiKeysResponse(api_keys=keys, next_page_token=token)

    async def revoke_api_key(self, request: access_pb2.RevokeApiKeyRequest) -> access_pb2.ApiKey:
        if not request.api_key_id:
            raise InvalidArgument.field("api_key_id", "required")
        doc = await self.store.revoke_api_key(request.api_key_id, now())
        if doc is None:
            raise NotFound("api_key", request.api_key_id, field="api_key_id")
        self.hasher.forget(request.api_key_id)
        self.authenticator.forget_api_key(request.api_key_id)
        return api_key_to_proto(doc)

    # -- roles ----------------------------------------------------------------

    async def _existing_dataset(self, ref: dataset_pb2.DatasetRef, field: str) -> str:
        dataset_id = await self.authorizer.dataset_of(ref)
        if dataset_id is None or not await self.store.dataset_exists(dataset_id):
            which = ref.WhichOneof("ref")
            if which is None:
                raise InvalidArgument.field(field, "set id or name")
            raise NotFound("dataset", getattr(ref, which), field=field)
        return dataset_id

    async def grant_role(self, caller: Caller, request: access_pb2.GrantRoleRequest) -> access_pb2.RoleBinding:
        errors = FieldErrors()
        _check_principal(request.principal, "principal", errors)
        if request.role == ADMIN:
            if request.HasField("dataset"):
                errors.add("dataset", "the admin role is global: leave dataset unset")
        elif request.role in DATASET_ROLES:
            if not request.HasField("dataset"):
                errors.add("dataset", "required for a dataset role")
        else:
            errors.add("role", "must be ROLE_VIEWER, ROLE_EDITOR, ROLE_OWNER or ROLE_ADMIN")
        errors.raise_if_any()
        if request.role == ADMIN:
            self._require_admin(caller)
            dataset_id = GLOBAL
        else:
            dataset_id = await self._existing_dataset(request.dataset, "dataset")
        doc = await self.store.put_role({"principal": request.principal, "dataset_id": dataset_id,
                                         "role": int(request.role), "create_time": now(),
                                         "granted_by": caller.principal})
        self.authorizer.forget_role(request.principal, dataset_id)
        return binding_to_proto(doc)

    async def revoke_role(self, caller: Caller, request: access_pb2.RevokeRoleRequest
                          ) -> access_pb2.RevokeRoleResponse:
        errors = FieldErrors()
        _check_principal(request.principal, "principal", errors)
        errors.raise_if_any()
        if request.HasField("dataset"):
            dataset_id = await self._existing_dataset(request.dataset, "dataset")
        else:
            self._require_admin(caller)
            dataset_id = GLOBAL
        doc = await self.store.delete_role(request.principal, dataset_id)
        self.authorizer.forget_role(request.principal, dataset_id)
        if doc is None:
            raise NotFound("role_binding", f"{request.principal} on {dataset_id or 'all datasets'}",
                           field="principal")
        return access_pb2.RevokeRoleResponse(revoked=binding_to_proto(doc))

    @staticmethod
    def _require_admin(caller: Caller) -> None:
        if not caller.admin:
            raise PermissionDenied("roles.manage", "granting or revoking the admin role needs the admin role")

    async def list_roles(self, caller: Caller, request: access_pb2.ListRolesRequest) -> access_pb2.ListRolesResponse:
        errors = FieldErrors()
        if request.principal:
            _check_principal(request.principal, "principal", errors)
        page_size = check_page_size(request.page_size, "page_size", errors)
        errors.raise_if_any()
        dataset_id: str | None = None
        if request.HasField("dataset"):
            dataset_id = await self.authorizer.dataset_of(request.dataset)
            allowed = caller.admin or (dataset_id is not None and (
                await self.store.roles_on(caller.principal, [dataset_id])).get(dataset_id, 0) >= OWNER)
            if not allowed or dataset_id is None:
                raise PermissionDenied(ROLES_LIST.name,
                                       f"permission {ROLES_LIST.name!r} on a dataset needs its owner role")
        elif request.principal != caller.principal and not caller.admin:
            raise PermissionDenied(ROLES_LIST.name,
                                   f"permission {ROLES_LIST.name!r} of other principals needs the admin role")
        scope = query_digest("roles", dataset_id, request.principal)
        after = None
        if request.page_token:
            last_dataset, last_principal = self._pages.decode(request.page_token, scope, [_dataset_key, as_text])
            after = (last_dataset, last_principal)
        cursor = await self.store.list_roles(dataset_id, request.principal or None, after, page_size + 1)
        bindings, token = await collect_page(
            cursor, page_size, binding_to_proto,
            lambda last: self._pages.encode([last["dataset_id"], last["principal"]], scope))
        return access_pb2.ListRolesResponse(bindings=bindings, next_page_token=token)

    # -- blob reads -------------------------------------------------------------

    async def check_blob_access(self, request: access_pb2.CheckBlobAccessRequest
                                ) -> access_pb2.CheckBlobAccessResponse:
        errors = FieldErrors()
        _check_principal(request.principal, "principal", errors)
        if not 1 <= len(request.digests) <= MAX_CHECKED_DIGESTS:
            errors.add("digests", f"must hold 1..{MAX_CHECKED_DIGESTS} digests")
        digests: list[BlobDigest] = []
        for i, digest in enumerate(request.digests):
            try:
                digests.append(checked_digest(digest.hash, digest.size_bytes, f"digests[{i}]"))
            except InvalidArgument as exc:
                errors.violations.extend(exc.violations)
        errors.raise_if_any()
        unique = list(dict.fromkeys(digests))
        denied = [d for d in unique if not d.is_empty]
        roles = await self.store.roles_of(request.principal, MAX_LISTED_ROLES * 10)
        if any(doc["dataset_id"] == GLOBAL for doc in roles):
            denied = []
        elif denied:
            viewable = [doc["dataset_id"] for doc in roles if doc["dataset_id"] != GLOBAL]
            referenced = await self.store.referenced_blob_uris([d.uri for d in denied], viewable) if viewable \
                else set()
            denied = [d for d in denied if d.uri not in referenced]
        return access_pb2.CheckBlobAccessResponse(
            denied_digests=[blob_pb2.Digest(hash=d.hash, size_bytes=d.size) for d in denied])

    # -- start-up ---------------------------------------------------------------

    async def bootstrap_admin_key(self, path: str, write: Any) -> bool:
        """Issues an admin API key (principal ``admin``) when no active key of
        an admin exists; ``write`` stores its token. True when one was issued.
        Replicas starting at once against one database issue one key between
        them: the store grants and inserts in one transaction that the others
        conflict with."""
        issued = self.hasher.issue()
        key = _api_key_document(issued, "admin", "bootstrap admin key", None, "bootstrap")
        binding = {"principal": "admin", "dataset_id": GLOBAL, "role": ADMIN, "create_time": now(),
                   "granted_by": "bootstrap"}
        if not await self.store.insert_bootstrap_admin_key(binding, key, dt.datetime.now(dt.UTC)):
            return False
        write(path, issued.token)
        return True


def _api_key_document(issued: IssuedApiKey, principal: str, description: str, expire_time: dt.datetime | None,
                      created_by: str) -> Document:
    return {"_id": issued.key_id, "principal": principal, "description": description,
            "secret_hash": issued.secret_hash, "create_time": now(), "expire_time": expire_time,
            "revoke_time": None, "created_by": created_by}


def _dataset_key(value: Any) -> str:
    return value if value == GLOBAL else as_id(value)
