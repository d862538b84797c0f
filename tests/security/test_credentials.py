"""Credentials: what authenticates, and UNAUTHENTICATED for everything else."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support import error_details

from framevault.auth.credentials import ServiceTokenMinter
from framevault.common.config import Settings
from framevault.v1 import access_pb2, dataset_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .conftest import World
from .helpers import JwtIssuer, bearer, issue_key, unique


def _reason(exc: grpc.aio.AioRpcError) -> str:
    return next(d.reason for d in error_details(exc) if isinstance(d, error_details_pb2.ErrorInfo))


async def _refused(access: Any, metadata: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await access.GetCaller(access_pb2.GetCallerRequest(), metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused.value.details()
    return refused.value


async def test_a_call_without_credential_is_unauthenticated(access: Any) -> None:
    refused = await _refused(access, ())
    assert _reason(refused) == "CREDENTIAL_MISSING"
    assert "authorization: Bearer" in (refused.details() or "")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer two words", "token-alone"])
async def test_a_malformed_authorization_header_is_unauthenticated(access: Any, header: str) -> None:
    assert _reason(await _refused(access, (("authorization", header),))) == "CREDENTIAL_MALFORMED"


@pytest.mark.parametrize("token", ["fv_short_secret", "fv_0123456789abcdef_" + "A" * 42, "not-a-jwt"])
async def test_malformed_tokens_are_unauthenticated(access: Any, token: str) -> None:
    assert _reason(await _refused(access, bearer(token))) == "CREDENTIAL_MALFORMED"


async def test_an_unknown_key_and_a_wrong_secret_get_the_same_answer(access: Any, admin: Any) -> None:
    issued = await issue_key(access, admin, unique("guessed"))
    wrong_secret = issued.token[: -1] + ("B" if issued.token[-1] != "B" else "C")
    unknown = "fv_" + "f" * 16 + "_" + issued.token.split("_", 2)[2]
    wrong = await _refused(access, bearer(wrong_secret))
    missing = await _refused(access, bearer(unknown))
    assert (wrong.details(), _reason(wrong)) == (missing.details(), _reason(missing))
    assert issued.token not in (wrong.details() or "")


async def test_a_revoked_key_is_unauthenticated_at_once(access: Any, admin: Any) -> None:
    issued = await issue_key(access, admin, unique("revoked"))
    caller = await access.GetCaller(access_pb2.GetCallerRequest(), metadata=bearer(issued.token))
    assert caller.api_key_id == issued.api_key.id
    revoked = await access.RevokeApiKey(access_pb2.RevokeApiKeyRequest(api_key_id=issued.api_key.id), metadata=admin)
    assert revoked.HasField("revoke_time")
    assert _reason(await _refused(access, bearer(issued.token))) == "CREDENTIAL_REVOKED"


async def test_a_key_is_shown_once_and_stored_only_as_a_hash(access: Any, admin: Any, secure_settings: Settings
                                                             ) -> None:
    from pymongo import MongoClient

    principal = unique("shown-once")
    issued = await issue_key(access, admin, principal, description="ci")
    listed = await access.ListApiKeys(access_pb2.ListApiKeysRequest(principal=principal), metadata=admin)
    assert [key.id for key in listed.api_keys] == [issued.api_key.id]
    assert issued.token.split("_", 2)[2] not in str(listed)
    uri = secure_settings.mongodb_uri
    with MongoClient(getattr(uri, "get_secret_value", lambda: uri)()) as client:
        stored = client[secure_settings.mongodb_database].api_keys.find_one({"_id": issued.api_key.id})
    assert stored is not None
    secret = issued.token.split("_", 2)[2]
    assert secret not in str(stored) and stored["secret_hash"].startswith("$argon2id$")


async def test_a_valid_jwt_authenticates_its_subject(access: Any, issuer: JwtIssuer) -> None:
    caller = await access.GetCaller(access_pb2.GetCallerRequest(), metadata=bearer(issuer.token("alice")))
    assert (caller.principal, caller.credential_kind, caller.admin) == (
        "jwt:alice", access_pb2.CREDENTIAL_KIND_JWT, False)


@pytest.mark.parametrize(("variant", "reason"), [
    ({"expires_in": -60}, "CREDENTIAL_EXPIRED"),
    ({"not_before_in": 600}, "CREDENTIAL_NOT_YET_VALID"),
    ({"audience": "someone-else"}, "CREDENTIAL_WRONG_AUDIENCE"),
    ({"issuer": "https://other.issuer.test"}, "CREDENTIAL_WRONG_ISSUER"),
    ({"stranger": True}, "CREDENTIAL_INVALID"),
    ({"kid": "unknown-key"}, "CREDENTIAL_INVALID"),
])
async def test_bad_jwts_are_unauthenticated(access: Any, issuer: JwtIssuer, variant: dict[str, Any],
                                            reason: str) -> None:
    options = dict(variant)
    if options.pop("stranger", False):
        options["key"] = issuer.stranger_key
    token = issuer.token("mallory", **options)
    refused = await _refused(access, bearer(token))
    assert _reason(refused) == reason
    assert token not in (refused.details() or "")


async def test_jwt_leeway_is_bounded(access: Any, issuer: JwtIssuer) -> None:
    # Not valid for 2 more seconds: inside the 5 s leeway; 60 s is beyond it.
    assert (await access.GetCaller(access_pb2.GetCallerRequest(),
                                   metadata=bearer(issuer.token("early", not_before_in=2)))).principal == "jwt:early"
    assert _reason(await _refused(access, bearer(issuer.token("early", not_before_in=60)))) \
        == "CREDENTIAL_NOT_YET_VALID"


async def test_a_jwt_caller_gets_the_roles_granted_to_its_principal(
        access: Any, metadata: Any, admin: Any, world: World, issuer: JwtIssuer) -> None:
    subject = unique("oidc-user")
    token = bearer(issuer.token(subject))
    ref = ms.GetDatasetRequest(dataset=dataset_pb2.DatasetRef(id=world.target.id))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await metadata.GetDataset(ref, metadata=token)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await access.GrantRole(access_pb2.GrantRoleRequest(principal=f"jwt:{subject}", role=access_pb2.ROLE_VIEWER,
                                                       dataset=dataset_pb2.DatasetRef(id=world.target.id)),
                           metadata=admin)
    assert (await metadata.GetDataset(ref, metadata=token)).id == world.target.id


async def test_service_tokens_hold_only_what_the_table_lists(access: Any, metadata: Any, world: World,
                                                             secure_settings: Settings) -> None:
    blob = ServiceTokenMinter(secure_settings, "blob", "metadata").call_metadata()
    caller = await access.AuthenticateCaller(access_pb2.AuthenticateCallerRequest(
        token=world.callers["viewer"][0][1].removeprefix("Bearer ")), metadata=blob)
    assert caller.principal == world.principals["viewer"]
    assert [(role.dataset_id, role.role) for role in caller.roles] == [(world.target.id, access_pb2.ROLE_VIEWER)]
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await metadata.GetDataset(ms.GetDatasetRequest(dataset=dataset_pb2.DatasetRef(id=world.target.id)),
                                  metadata=blob)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # A token for the blob service is not accepted by the metadata service.
    misaddressed = ServiceTokenMinter(secure_settings, "blob", "blob").call_metadata()
    assert _reason(await _refused(access, misaddressed)) == "CREDENTIAL_WRONG_AUDIENCE"
    other_secret = dataclasses.replace(secure_settings, service_token_secret="another-secret")
    forged = ServiceTokenMinter(other_secret, "blob", "metadata").call_metadata()
    assert _reason(await _refused(access, forged)) == "CREDENTIAL_INVALID"


async def test_authenticate_caller_refuses_an_invalid_checked_token(access: Any, secure_settings: Settings) -> None:
    blob = ServiceTokenMinter(secure_settings, "blob", "metadata").call_metadata()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await access.AuthenticateCaller(access_pb2.AuthenticateCallerRequest(token="fv_bad"), metadata=blob)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert _reason(refused.value) == "CHECKED_TOKEN_INVALID"


async def test_health_needs_no_credential(secure_channel: Any) -> None:
    health = health_pb2_grpc.HealthStub(secure_channel)
    response = await health.Check(health_pb2.HealthCheckRequest(service="liveness"))
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_key_past_its_expiry_is_unauthenticated(access: Any, admin: Any, secure_settings: Settings) -> None:
    from google.protobuf import timestamp_pb2
    from pymongo import MongoClient

    expire_time = timestamp_pb2.Timestamp(seconds=int(time.time()) + 3600)
    issued = await issue_key(access, admin, unique("expiring"), expire_time=expire_time)
    # The hour passes: the stored expiry is moved into the past. Before the key's first use: a key
    # in use is remembered with the expiry it had (metadata_access_cache_seconds), and the clock,
    # not the stored document, moves past it.
    uri = secure_settings.mongodb_uri
    with MongoClient(getattr(uri, "get_secret_value", lambda: uri)()) as client:
        client[secure_settings.mongodb_database].api_keys.update_one(
            {"_id": issued.api_key.id}, {"$set": {"expire_time": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}})
    assert _reason(await _refused(access, bearer(issued.token))) == "CREDENTIAL_EXPIRED"


async def test_a_key_cannot_be_issued_already_expired(access: Any, admin: Any) -> None:
    from google.protobuf import timestamp_pb2

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await issue_key(access, admin, unique("late"), expire_time=timestamp_pb2.Timestamp(seconds=1))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for d in error_details(bad.value) if isinstance(d, error_details_pb2.BadRequest)
            for v in d.field_violations] == ["api_key.expire_time"]


async def test_api_keys_page_newest_first(access: Any, admin: Any) -> None:
    principal = unique("paged")
    issued = [(await issue_key(access, admin, principal)).api_key.id for _ in range(3)]
    first = await access.ListApiKeys(access_pb2.ListApiKeysRequest(principal=principal, page_size=2), metadata=admin)
    second = await access.ListApiKeys(access_pb2.ListApiKeysRequest(principal=principal, page_size=2,
                                                                    page_token=first.next_page_token), metadata=admin)
    assert not second.next_page_token
    assert sorted(key.id for key in [*first.api_keys, *second.api_keys]) == sorted(issued)
    times = [key.create_time.ToDatetime() for key in [*first.api_keys, *second.api_keys]]
    assert times == sorted(times, reverse=True)
    with pytest.raises(grpc.aio.AioRpcError) as replayed:
        await access.ListApiKeys(access_pb2.ListApiKeysRequest(page_token=first.next_page_token), metadata=admin)
    assert replayed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_oidc_subject_with_punctuation_is_a_principal(access: Any, issuer: JwtIssuer) -> None:
    caller = await access.GetCaller(access_pb2.GetCallerRequest(), metadata=bearer(issuer.token("auth0|5f3a")))
    assert caller.principal == "jwt:auth0|5f3a"
    assert _reason(await _refused(access, bearer(issuer.token("has space")))) == "CREDENTIAL_INVALID"
