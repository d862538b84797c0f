"""The metadata service's authentication and authorization, on its own store.

Authentication: API keys against the stored hash (expiry checked on every
call), service tokens by their HMAC, JWTs by the configured keys; the caller's
roles (the admin role and those on the datasets a call names) are read in one
query when the call is authorized.

What authorization reads is remembered for ``metadata_access_cache_seconds``
(docs/SECURITY.md, "Caching on the metadata service"), so a client's every
call does not cost several MongoDB reads: API key documents that can grant
(not revoked; refusals are never remembered), the dataset of a version (it
never changes), and a principal's role on a dataset, its absence included (a
refusal for that reason is remembered exactly as long as a grant would be).
Grants and revocations made through this process are forgotten at once; those
made through another replica take effect here within that time.

Authorization (``permissions.RULES``): dataset references in the request are
resolved to dataset ids (a name through the datasets, a version id through
the versions), and the caller's role on each is read. A reference the caller
has no role on is refused with the same PERMISSION_DENIED whether the
dataset exists or not, so nobody learns of datasets they may not see.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any

from framevault.auth.credentials import (
    API_KEY_PREFIX,
    SERVICE_TOKEN_PREFIX,
    ApiKeyHasher,
    JwtVerifier,
    ServiceTokenVerifier,
)
from framevault.auth.expiring_cache import ExpiringCache
from framevault.auth.interceptor import Grant
from framevault.auth.permissions import METADATA_SERVICE, ROLE_NAMES, Rule, Scope
from framevault.auth.principals import API_KEY, Caller
from framevault.auth.store import GLOBAL, AccessStore, Document
from framevault.common.config import Settings
from framevault.common.errors import PermissionDenied, Unauthenticated
from framevault.v1 import dataset_pb2, metadata_service_pb2

LIST_DATASETS = "/framevault.v1.MetadataService/ListDatasets"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class MetadataAuthenticator:
    def __init__(self, settings: Settings, store: AccessStore, hasher: ApiKeyHasher,
                 clock: Callable[[], float] = time.monotonic):
        self._store = store
        self._hasher = hasher
        self._services = ServiceTokenVerifier(settings, METADATA_SERVICE)
        self._jwts = JwtVerifier(settings)
        # Key id -> its stored document, only while it is not revoked.
        self._keys: ExpiringCache[str, Document] = ExpiringCache(
            settings.metadata_access_cache_seconds, settings.metadata_access_cache_entries, clock)

    async def authenticate(self, token: str) -> Caller:
        """The caller a bearer token names; UNAUTHENTICATED when the token is
        not valid. Its roles, the admin role included, are read when the call
        is authorized (one query with the roles the call needs)."""
        if token.startswith(SERVICE_TOKEN_PREFIX):
            return self._services.verify(token)
        if token.startswith(API_KEY_PREFIX):
            return await self._api_key_caller(token)
        return await self._jwts.verify(token)

    async def _api_key_caller(self, token: str) -> Caller:
        key_id, secret = ApiKeyHasher.parse(token)
        key = self._keys.get(key_id)
        if key is None:
            key = await self._store.find_api_key(key_id)
            if key is not None and key.get("revoke_time") is None:
                self._keys.put(key_id, key)
        # One answer for an unknown key and a wrong secret.
        if key is None or not await self._hasher.verify(key_id, secret, key["secret_hash"]):
            raise Unauthenticated("API key is not valid", reason="CREDENTIAL_INVALID")
        if key.get("revoke_time") is not None:
            raise Unauthenticated("API key was revoked", reason="CREDENTIAL_REVOKED")
        expire_time = key.get("expire_time")
        if expire_time is not None and _aware(expire_time) <= _utcnow():
            raise Unauthenticated("API key has expired", reason="CREDENTIAL_EXPIRED")
        return Caller(principal=key["principal"], credential_kind=API_KEY, api_key_id=key_id)

    def forget_api_key(self, key_id: str) -> None:
        """Reads the key from the database on its next use (it was revoked here)."""
        self._keys.forget(key_id)


def _ref_text(ref: Any) -> str:
    """How a refused reference is named back: as the caller spelled it."""
    if isinstance(ref, dataset_pb2.DatasetRef):
        which = ref.WhichOneof("ref")
        return f"dataset {getattr(ref, which)!r}" if which else "dataset (unset)"
    which = ref.WhichOneof("ref")
    if ref.HasField("dataset"):
        return _ref_text(ref.dataset)
    return f"version {getattr(ref, which)!r}" if which else "version (unset)"


class MetadataAuthorizer:
    def __init__(self, settings: Settings, store: AccessStore, clock: Callable[[], float] = time.monotonic):
        self._store = store
        ttl, entries = settings.metadata_access_cache_seconds, settings.metadata_access_cache_entries
        # Version id -> its dataset id (a version never moves; unknown ids are not remembered).
        self._version_datasets: ExpiringCache[str, str] = ExpiringCache(ttl, entries, clock)
        # (principal, dataset id or GLOBAL) -> its role there, 0 for none.
        self._roles: ExpiringCache[tuple[str, str], int] = ExpiringCache(ttl, entries, clock)

    async def dataset_of(self, ref: Any) -> str | None:
        """The id of the dataset a DatasetRef or VersionRef names; None when it
        names none (unset, or nothing of that name or id)."""
        if isinstance(ref, dataset_pb2.DatasetRef):
            which = ref.WhichOneof("ref")
            if which == "id" and ref.id:
                return ref.id
            if which == "name" and ref.name:
                return await self._store.dataset_id_by_name(ref.name)
            return None
        if ref.HasField("dataset"):
            return await self.dataset_of(ref.dataset)
        if ref.WhichOneof("ref") == "id" and ref.id:
            dataset_id = self._version_datasets.get(ref.id)
            if dataset_id is None:
                dataset_id = await self._store.dataset_of_version(ref.id)
                if dataset_id is not None:
                    self._version_datasets.put(ref.id, dataset_id)
            return dataset_id
        return None

    async def roles_on(self, principal: str, dataset_ids: Sequence[str]) -> dict[str, int]:
        """``AccessStore.roles_on``, answered from what was read recently where it can be."""
        roles: dict[str, int] = {}
        unknown: list[str] = []
        for dataset_id in dataset_ids:
            role = self._roles.get((principal, dataset_id))
            if role is None:
                unknown.append(dataset_id)
            elif role:
                roles[dataset_id] = role
        if unknown:
            read = await self._store.roles_on(principal, unknown)
            for dataset_id in unknown:
                role = read.get(dataset_id, 0)
                self._roles.put((principal, dataset_id), role)
                if role:
                    roles[dataset_id] = role
        return roles

    def forget_role(self, principal: str, dataset_id: str) -> None:
        """Reads the principal's role on the dataset (GLOBAL: the admin role)
        again on its next call (it was granted or revoked here)."""
        self._roles.forget((principal, dataset_id))

    async def authorize(self, caller: Caller, method: str, rule: Rule, request: Any) -> Grant:
        permission = rule.permission
        scope = permission.scope
        if caller.service:
            if caller.service in permission.services:
                return Grant(caller)
            raise PermissionDenied(permission.name,
                                   f"permission {permission.name!r} denied to service {caller.service!r}")
        if scope is Scope.SERVICE:
            raise PermissionDenied(permission.name, f"permission {permission.name!r} is for framevault services")
        refs = list(rule.refs(request)) if scope is Scope.DATASET and request is not None else []
        resolved: list[tuple[Any, str | None]] = [(ref, await self.dataset_of(ref)) for ref in refs]
        ids = sorted({dataset_id for _, dataset_id in resolved if dataset_id})
        roles = await self.roles_on(caller.principal, [GLOBAL, *ids])
        caller = caller.with_admin(GLOBAL in roles)
        if scope in (Scope.AUTHENTICATED, Scope.HANDLER):
            return Grant(caller, response_filter=self._list_filter(caller) if method == LIST_DATASETS else None)
        if scope is Scope.ADMIN:
            if caller.admin:
                return Grant(caller)
            raise PermissionDenied(permission.name, f"permission {permission.name!r} needs the admin role")
        if scope is Scope.DATASET:
            return self._dataset_grant(caller, rule, resolved, roles)
        raise PermissionDenied(permission.name, f"permission {permission.name!r} is not served here")

    @staticmethod
    def _dataset_grant(caller: Caller, rule: Rule, resolved: list[tuple[Any, str | None]],
                       roles: dict[str, int]) -> Grant:
        permission = rule.permission
        resources = sorted({f"dataset:{dataset_id}" for _, dataset_id in resolved if dataset_id})
        if caller.admin:
            return Grant(caller, resources)
        if not resolved:
            raise PermissionDenied(permission.name,
                                   f"permission {permission.name!r} without a dataset needs the admin role")
        for ref, dataset_id in resolved:
            if dataset_id is None or roles.get(dataset_id, 0) < permission.role:
                raise PermissionDenied(
                    permission.name,
                    f"permission {permission.name!r} (role {ROLE_NAMES[permission.role]} or above) "
                    f"denied on {_ref_text(ref)}")
        return Grant(caller, resources)

    def _list_filter(self, caller: Caller) -> Any:
        if caller.admin:
            return None
        store = self._store

        async def viewable_only(response: metadata_service_pb2.ListDatasetsResponse
                                ) -> metadata_service_pb2.ListDatasetsResponse:
            # Pages may hold fewer datasets than page_size (the contract allows it);
            # next_page_token still continues after the last dataset read.
            ids = [dataset.id for dataset in response.datasets]
            roles = await store.roles_on(caller.principal, ids) if ids else {}
            kept = [dataset for dataset in response.datasets if dataset.id in roles]
            del response.datasets[:]
            response.datasets.extend(kept)
            return response

        return viewable_only

    async def with_admin_role(self, caller: Caller) -> Caller:
        return caller.with_admin(GLOBAL in await self.roles_on(caller.principal, [GLOBAL]))
