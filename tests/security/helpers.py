"""Credentials and names for the security tests."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from framevault.v1 import access_pb2, access_pb2_grpc

ISSUER = "https://issuer.framevault.test"
AUDIENCE = "framevault-test"
KEY_ID = "test-key-1"


@dataclass
class JwtIssuer:
    """Signs JWTs as the configured issuer (and as a stranger, for refusals)."""

    private_key: Any
    stranger_key: Any
    jwks_url: str

    def token(self, subject: str, *, audience: str = AUDIENCE, issuer: str = ISSUER, expires_in: int = 600,
              not_before_in: int = 0, key: Any = None, kid: str = KEY_ID) -> str:
        now = int(time.time())
        claims = {"iss": issuer, "aud": audience, "sub": subject, "iat": now, "exp": now + expires_in,
                  "nbf": now + not_before_in}
        return jwt.encode(claims, key or self.private_key, algorithm="RS256", headers={"kid": kid})


def jwks_document(public_key: Any) -> bytes:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public_key))
    jwk.update({"kid": KEY_ID, "alg": "RS256", "use": "sig"})
    return json.dumps({"keys": [jwk]}).encode()


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def issue_key(access: access_pb2_grpc.AccessServiceStub, admin: Any, principal: str,
                    **fields: Any) -> access_pb2.CreateApiKeyResponse:
    return await access.CreateApiKey(access_pb2.CreateApiKeyRequest(
        api_key=access_pb2.ApiKey(principal=principal, **fields)), metadata=admin)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
