"""The authenticated caller of one call."""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass, field, replace

from framevault.common.errors import Internal
from framevault.v1 import access_pb2

API_KEY = access_pb2.CREDENTIAL_KIND_API_KEY
JWT = access_pb2.CREDENTIAL_KIND_JWT
SERVICE = access_pb2.CREDENTIAL_KIND_SERVICE

# Principals roles are granted to: 1..256 printable ASCII characters without
# spaces, so OIDC subjects such as ``auth0|5f3a`` or e-mail addresses fit.
PRINCIPAL_PATTERN = re.compile(r"[!-~]{1,256}")
JWT_PRINCIPAL_PREFIX = "jwt:"
SERVICE_PRINCIPAL_PREFIX = "service:"


@dataclass(frozen=True)
class Caller:
    # What roles are granted to (``AccessService`` Caller.principal).
    principal: str
    credential_kind: int
    api_key_id: str = ""
    admin: bool = False
    # The service name for service tokens ("metadata", "blob"); empty otherwise.
    service: str = ""
    # Dataset id -> role, when the authenticator looked them up (blob service: from AuthenticateCaller).
    dataset_roles: dict[str, int] = field(default_factory=dict)

    def with_admin(self, admin: bool) -> Caller:
        return replace(self, admin=admin)

    def to_proto(self, roles: list[access_pb2.RoleBinding] | None = None) -> access_pb2.Caller:
        return access_pb2.Caller(principal=self.principal, credential_kind=self.credential_kind,  # type: ignore[arg-type]
                                 api_key_id=self.api_key_id, admin=self.admin, roles=roles or [])

    def describe(self) -> dict[str, str]:
        """Who called, for logs (never a credential)."""
        described = {"principal": self.principal, "credential": access_pb2.CredentialKind.Name(
            self.credential_kind).removeprefix("CREDENTIAL_KIND_").lower()}  # type: ignore[arg-type]
        if self.api_key_id:
            described["api_key_id"] = self.api_key_id
        return described


def service_caller(name: str) -> Caller:
    return Caller(principal=SERVICE_PRINCIPAL_PREFIX + name, credential_kind=SERVICE, service=name)


_current: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("framevault_caller", default=None)


def set_current_caller(caller: Caller) -> None:
    _current.set(caller)


def current_caller() -> Caller:
    """The caller of the call being handled (set by the auth interceptor)."""
    caller = _current.get()
    if caller is None:
        raise Internal("no authenticated caller for this call")
    return caller


def current_caller_or_none() -> Caller | None:
    return _current.get()
