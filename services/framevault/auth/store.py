"""What access control stores and reads: API keys, role bindings, and the
few catalog facts authorization needs (which dataset a reference names, which
datasets reference a blob). ``mongo_store.MongoAccessStore`` implements it.

Documents:
- API key ``{_id: key id, principal, description, secret_hash, create_time,
  expire_time?, revoke_time?, created_by}``; the secret itself is never stored.
- role binding ``{principal, dataset_id ("" for the admin role), role,
  create_time, granted_by}``, unique per (principal, dataset_id).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

Document = dict[str, Any]

# dataset_id of the admin role's binding.
GLOBAL = ""


class AccessStore(Protocol):
    async def prepare(self) -> None:
        """Creates the indexes (idempotent)."""

    # -- API keys
    async def insert_api_key(self, key: Document) -> None: ...

    async def find_api_key(self, key_id: str) -> Document | None: ...

    async def list_api_keys(self, principal: str, include_revoked: bool,
                            after: tuple[dt.datetime, str] | None, limit: int) -> Any:
        """A cursor over keys, newest first, after the (create_time, id) key."""

    async def revoke_api_key(self, key_id: str, when: dt.datetime) -> Document | None:
        """The key after revoking it (unchanged when already revoked); None when unknown."""

    async def insert_bootstrap_admin_key(self, binding: Document, key: Document, now: dt.datetime) -> bool:
        """Grants ``binding`` (the admin role) and inserts ``key`` at once,
        unless an active key of an admin exists at ``now``; True when it
        inserted. Of concurrent calls, at most one inserts."""

    # -- role bindings
    async def put_role(self, binding: Document) -> Document:
        """Grants (replacing the principal's role on that dataset); the stored
        binding. NotFound when the dataset is gone (DeleteDataset deletes its
        bindings with it)."""

    async def delete_role(self, principal: str, dataset_id: str) -> Document | None: ...

    async def roles_on(self, principal: str, dataset_ids: Sequence[str]) -> dict[str, int]:
        """dataset id -> role of the principal, for those of ``dataset_ids`` it has one on."""

    async def roles_of(self, principal: str, limit: int) -> list[Document]:
        """The principal's bindings (the admin one included)."""

    async def list_roles(self, dataset_id: str | None, principal: str | None,
                         after: tuple[str, str] | None, limit: int) -> Any:
        """A cursor over bindings by (dataset_id, principal), after that key."""

    # -- catalog facts
    async def dataset_id_by_name(self, name: str) -> str | None: ...

    async def dataset_exists(self, dataset_id: str) -> bool: ...

    async def dataset_of_version(self, version_id: str) -> str | None: ...

    async def referenced_blob_uris(self, uris: Sequence[str], dataset_ids: Sequence[str] | None) -> set[str]:
        """Those of ``uris`` some frame revision of the datasets references (any dataset when None)."""
