"""Roles: what a valid caller may see and do, the audit of writes, the blob
reference check, and the settings security needs."""

from __future__ import annotations

import dataclasses
from typing import Any

import grpc
import pytest
import structlog
from google.rpc import error_details_pb2
from support import error_details

from framevault.api.digests import digest_of
from framevault.auth.credentials import ServiceTokenMinter
from framevault.common.config import Settings
from framevault.v1 import access_pb2, blob_pb2, dataset_pb2, frame_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .conftest import World
from .helpers import bearer, issue_key, unique


async def _denied(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, refused.value.details()
    return refused.value


def _answer(exc: grpc.aio.AioRpcError, name: str) -> tuple[Any, ...]:
    """Everything a refusal tells, with the name the caller sent taken out."""
    details = [str(detail) for detail in error_details(exc)]
    return exc.code(), (exc.details() or "").replace(name, "<name>"), [d.replace(name, "<name>") for d in details]


async def test_a_dataset_the_caller_cannot_see_answers_like_a_missing_one(metadata: Any, world: World) -> None:
    outsider = world.callers["owner of another dataset"]
    missing = unique("no-such-dataset")
    for request_of in (lambda name: ms.GetDatasetRequest(dataset=dataset_pb2.DatasetRef(name=name)),
                       lambda name: ms.ListVersionsRequest(dataset=dataset_pb2.DatasetRef(name=name))):
        call = metadata.GetDataset if isinstance(request_of("x"), ms.GetDatasetRequest) else metadata.ListVersions
        hidden = await _denied(call(request_of(world.target.name), metadata=outsider))
        absent = await _denied(call(request_of(missing), metadata=outsider))
        assert _answer(hidden, world.target.name) == _answer(absent, missing)
    # By version id too: a version of a hidden dataset and no version at all.
    hidden = await _denied(metadata.GetVersion(ms.GetVersionRequest(
        version=dataset_pb2.VersionRef(id=world.published.id)), metadata=outsider))
    absent = await _denied(metadata.GetVersion(ms.GetVersionRequest(
        version=dataset_pb2.VersionRef(id="0" * 24)), metadata=outsider))
    assert _answer(hidden, world.published.id) == _answer(absent, "0" * 24)


async def test_a_refusal_names_the_permission_and_the_role_it_needs(metadata: Any, world: World) -> None:
    refused = await _denied(metadata.PublishVersion(ms.PublishVersionRequest(
        version=dataset_pb2.VersionRef(id=world.draft.id)), metadata=world.callers["editor"]))
    info = next(d for d in error_details(refused) if isinstance(d, error_details_pb2.ErrorInfo))
    assert (info.reason, info.metadata["permission"]) == ("PERMISSION_DENIED", "versions.publish")
    assert "owner" in (refused.details() or "")


async def test_list_datasets_shows_only_datasets_the_caller_may_view(metadata: Any, world: World, admin: Any) -> None:
    async def names(credential: Any) -> set[str]:
        seen: set[str] = set()
        token = ""
        while True:
            page = await metadata.ListDatasets(ms.ListDatasetsRequest(page_token=token, name_prefix="secured-"),
                                               metadata=credential)
            seen.update(dataset.name for dataset in page.datasets)
            if not (token := page.next_page_token):
                return seen

    assert await names(world.callers["viewer"]) == {world.target.name}
    assert await names(world.callers["owner of another dataset"]) == {world.other.name}
    assert {world.target.name, world.other.name} <= await names(admin)


async def test_roles_take_effect_and_stop_at_once(metadata: Any, access: Any, admin: Any, world: World) -> None:
    principal = unique("temporary")
    token = bearer((await issue_key(access, admin, principal)).token)
    request = ms.CountFramesRequest(version=dataset_pb2.VersionRef(id=world.published.id))
    await _denied(metadata.CountFrames(request, metadata=token))
    owner = world.callers["owner"]
    granted = await access.GrantRole(access_pb2.GrantRoleRequest(
        principal=principal, role=access_pb2.ROLE_VIEWER, dataset=dataset_pb2.DatasetRef(id=world.target.id)),
        metadata=owner)
    assert (granted.granted_by, granted.dataset_id) == (world.principals["owner"], world.target.id)
    assert (await metadata.CountFrames(request, metadata=token)).count == 2
    listed = await access.ListRoles(access_pb2.ListRolesRequest(dataset=dataset_pb2.DatasetRef(id=world.target.id)),
                                    metadata=owner)
    assert principal in {binding.principal for binding in listed.bindings}
    await access.RevokeRole(access_pb2.RevokeRoleRequest(principal=principal,
                                                         dataset=dataset_pb2.DatasetRef(id=world.target.id)),
                            metadata=owner)
    await _denied(metadata.CountFrames(request, metadata=token))


async def test_only_admins_grant_the_admin_role(access: Any, world: World, admin: Any) -> None:
    request = access_pb2.GrantRoleRequest(principal=world.principals["owner"], role=access_pb2.ROLE_ADMIN)
    refused = await _denied(access.GrantRole(request, metadata=world.callers["owner"]))
    assert "admin" in (refused.details() or "")
    principal = unique("second-admin")
    token = bearer((await issue_key(access, admin, principal)).token)
    await access.GrantRole(access_pb2.GrantRoleRequest(principal=principal, role=access_pb2.ROLE_ADMIN),
                           metadata=admin)
    assert (await access.GetCaller(access_pb2.GetCallerRequest(), metadata=token)).admin
    await access.RevokeRole(access_pb2.RevokeRoleRequest(principal=principal), metadata=admin)
    assert not (await access.GetCaller(access_pb2.GetCallerRequest(), metadata=token)).admin


async def test_grant_role_checks_its_fields(access: Any, world: World) -> None:
    owner = world.callers["owner"]
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await access.GrantRole(access_pb2.GrantRoleRequest(principal="has space", role=access_pb2.ROLE_UNSPECIFIED,
                                                           dataset=dataset_pb2.DatasetRef(id=world.target.id)),
                               metadata=owner)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for d in error_details(bad.value) if isinstance(d, error_details_pb2.BadRequest)
              for v in d.field_violations}
    assert fields == {"principal", "role"}


async def test_every_write_is_audited_once_with_caller_rpc_and_resources(metadata: Any, world: World) -> None:
    editor = world.callers["editor"]
    with structlog.testing.capture_logs() as logs:
        created = await metadata.CreateVersion(ms.CreateVersionRequest(
            dataset=dataset_pb2.DatasetRef(id=world.target.id), parent=dataset_pb2.VersionRef(id=world.published.id),
            version=dataset_pb2.Version(name=unique("audited"))), metadata=editor)
        await _denied(metadata.DeleteDataset(ms.DeleteDatasetRequest(
            dataset=dataset_pb2.DatasetRef(id=world.target.id)), metadata=editor))
        await metadata.GetDataset(ms.GetDatasetRequest(dataset=dataset_pb2.DatasetRef(id=world.target.id)),
                                  metadata=editor)
    audits = [entry for entry in logs if entry["event"] == "audit"]
    assert [(a["rpc"], a["outcome"]) for a in audits] == [
        ("/framevault.v1.MetadataService/CreateVersion", "OK"),
        ("/framevault.v1.MetadataService/DeleteDataset", "PERMISSION_DENIED"),
    ]
    for entry in audits:
        assert entry["caller"]["principal"] == world.principals["editor"]
        assert entry["resources"] == [f"dataset:{world.target.id}"]
        assert editor[0][1].removeprefix("Bearer ") not in str(entry)
    assert created.dataset_id == world.target.id


async def test_blobs_are_readable_only_through_a_viewable_dataset(
        metadata: Any, access: Any, admin: Any, world: World, blob_stub: Any, secure_settings: Settings) -> None:
    referenced, unreferenced = unique("referenced").encode(), unique("unreferenced").encode()
    await blob_stub.BatchUpdateBlobs(blob_pb2.BatchUpdateBlobsRequest(requests=[
        blob_pb2.BatchUpdateBlobsRequest.Request(digest=blob_pb2.Digest(hash=d.hash, size_bytes=d.size), data=data)
        for data in (referenced, unreferenced) for d in [digest_of(data)]]))
    call = metadata.UploadFrames(metadata=admin)
    await call.write(ms.UploadFramesRequest(options=ms.UploadOptions(version=dataset_pb2.VersionRef(
        id=world.draft.id))))
    await call.write(ms.UploadFramesRequest(items=[ms.UploadItem(frame=frame_pb2.Frame(
        id=unique("with-blob"), sources=[frame_pb2.Source(uri=digest_of(referenced).uri)]))]))
    await call.done_writing()
    results = [response async for response in call]
    assert results[-1].summary.created == 1, results
    blob = ServiceTokenMinter(secure_settings, "blob", "metadata").call_metadata()
    digests = [blob_pb2.Digest(hash=d.hash, size_bytes=d.size) for d in map(digest_of, (referenced, unreferenced))]

    async def denied_for(principal: str) -> list[str]:
        answer = await access.CheckBlobAccess(access_pb2.CheckBlobAccessRequest(principal=principal, digests=digests),
                                              metadata=blob)
        return [d.hash for d in answer.denied_digests]

    assert await denied_for(world.principals["viewer"]) == [digests[1].hash]
    assert await denied_for(world.principals["owner of another dataset"]) == [d.hash for d in digests]
    assert await denied_for("admin") == []


def test_security_on_refuses_to_start_without_a_secret(secure_settings: Settings) -> None:
    from framevault.metadata.app import build_service

    for name, env in (("api_key_pepper", "FRAMEVAULT_API_KEY_PEPPER"),
                      ("service_token_secret", "FRAMEVAULT_SERVICE_TOKEN_SECRET")):
        with pytest.raises(SystemExit, match=env):
            build_service(dataclasses.replace(secure_settings, **{name: ""}))
    default_cursor_secret = Settings().view_cursor_secret
    with pytest.raises(SystemExit, match="FRAMEVAULT_VIEW_CURSOR_SECRET"):
        build_service(dataclasses.replace(secure_settings, view_cursor_secret=default_cursor_secret))
    with pytest.raises(SystemExit, match="FRAMEVAULT_JWT_LEEWAY_SECONDS"):
        build_service(dataclasses.replace(secure_settings, jwt_leeway_seconds=3600))
    with pytest.raises(SystemExit, match="FRAMEVAULT_JWT_ALGORITHMS"):
        build_service(dataclasses.replace(secure_settings, jwt_algorithms="HS256"))
    with pytest.raises(SystemExit, match="FRAMEVAULT_SECURITY_MODE"):
        build_service(dataclasses.replace(secure_settings, security_mode="maybe"))


async def test_a_restart_issues_no_second_bootstrap_key(secure_settings: Settings, admin_token: str,
                                                         tmp_path: Any) -> None:
    from framevault.common.server import RunningService
    from framevault.metadata.app import build_service

    second_file = tmp_path / "second.key"
    settings = dataclasses.replace(secure_settings, metadata_address="127.0.0.1:0",
                                   bootstrap_admin_key_file=str(second_file))
    running = RunningService(build_service(settings), settings)
    await running.start()
    try:
        assert running.prepared.is_set()
        assert not second_file.exists()
    finally:
        await running.stop(grace=1)


async def test_check_blob_access_names_bad_digests(access: Any, secure_settings: Settings) -> None:
    blob = ServiceTokenMinter(secure_settings, "blob", "metadata").call_metadata()
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await access.CheckBlobAccess(access_pb2.CheckBlobAccessRequest(principal="admin", digests=[
            blob_pb2.Digest(hash="a" * 64, size_bytes=1), blob_pb2.Digest(hash="XYZ", size_bytes=-1)]),
            metadata=blob)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for d in error_details(bad.value) if isinstance(d, error_details_pb2.BadRequest)
            for v in d.field_violations} == {"digests[1].hash"}
