"""Every RPC the metadata service serves x every kind of caller.

Each case is a request against dataset D (or none) shaped so that a caller
who holds the permission gets a known, harmless answer (often a precondition
failure such as publishing a published version), and a caller who does not
gets UNAUTHENTICATED (no or an invalid credential) or PERMISSION_DENIED
naming the permission. After every refusal the stored documents of both
datasets, the API keys and the role bindings are exactly as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from pymongo import MongoClient
from support import error_details

from framevault.auth import permissions as perm
from framevault.common.config import Settings
from framevault.v1 import access_pb2, blob_pb2, dataset_pb2, frame_pb2, view_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .conftest import CALLER_KINDS, World
from .helpers import unique

OK = grpc.StatusCode.OK
ABORTED = grpc.StatusCode.ABORTED
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
NOT_FOUND = grpc.StatusCode.NOT_FOUND

# Who holds a permission, by the caller kinds of the matrix.
DATASET_VIEWERS = {"viewer", "editor", "owner", "admin"}
DATASET_EDITORS = {"editor", "owner", "admin"}
DATASET_OWNERS = {"owner", "admin"}
ADMINS = {"admin"}
EVERYONE = {"viewer", "editor", "owner", "admin", "owner of another dataset"}
NOBODY: set[str] = set()

Stubs = Any
Call = Callable[[Stubs, World, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Case:
    rpc: str
    call: Call
    permission: str
    allowed: set[str]
    # The code a caller holding the permission gets.
    allowed_code: grpc.StatusCode = OK


def _d(world: World) -> dataset_pb2.DatasetRef:
    return dataset_pb2.DatasetRef(name=world.target.name)


def _p(world: World) -> dataset_pb2.VersionRef:
    return dataset_pb2.VersionRef(id=world.published.id)


def _draft(world: World) -> dataset_pb2.VersionRef:
    return dataset_pb2.VersionRef(dataset=dataset_pb2.DatasetRef(id=world.target.id), name=world.draft.name)


def _view(world: World) -> view_pb2.View:
    return view_pb2.View(selections=[view_pb2.ViewSelection(version=_p(world))])


async def _drain(stream: Any) -> list[Any]:
    return [item async for item in stream]


async def _upload(s: Stubs, w: World, md: Any) -> Any:
    call = s.metadata.UploadFrames(metadata=md)
    await call.write(ms.UploadFramesRequest(options=ms.UploadOptions(version=_p(w))))
    await call.write(ms.UploadFramesRequest(items=[ms.UploadItem(frame=frame_pb2.Frame(id="late"))]))
    await call.done_writing()
    return await _drain(call)


def _stale(mask: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=[mask])


CASES = [
    # AccessService
    Case("AccessService/GetCaller", lambda s, w, md: s.access.GetCaller(access_pb2.GetCallerRequest(), metadata=md),
         perm.CALLER_GET.name, EVERYONE),
    Case("AccessService/CreateApiKey", lambda s, w, md: s.access.CreateApiKey(access_pb2.CreateApiKeyRequest(
        api_key=access_pb2.ApiKey(principal=unique("made"))), metadata=md), perm.API_KEYS_MANAGE.name, ADMINS),
    Case("AccessService/ListApiKeys", lambda s, w, md: s.access.ListApiKeys(access_pb2.ListApiKeysRequest(),
                                                                            metadata=md),
         perm.API_KEYS_LIST.name, ADMINS),
    Case("AccessService/RevokeApiKey", lambda s, w, md: s.access.RevokeApiKey(access_pb2.RevokeApiKeyRequest(
        api_key_id="0000000000000000"), metadata=md), perm.API_KEYS_MANAGE.name, ADMINS, NOT_FOUND),
    Case("AccessService/GrantRole", lambda s, w, md: s.access.GrantRole(access_pb2.GrantRoleRequest(
        principal=unique("grantee"), role=access_pb2.ROLE_VIEWER, dataset=_d(w)), metadata=md),
         perm.ROLES_MANAGE.name, DATASET_OWNERS),
    Case("AccessService/RevokeRole", lambda s, w, md: s.access.RevokeRole(access_pb2.RevokeRoleRequest(
        principal="nobody-holds-this", dataset=_d(w)), metadata=md), perm.ROLES_MANAGE.name, DATASET_OWNERS,
         NOT_FOUND),
    Case("AccessService/ListRoles", lambda s, w, md: s.access.ListRoles(access_pb2.ListRolesRequest(dataset=_d(w)),
                                                                        metadata=md),
         perm.ROLES_LIST.name, DATASET_OWNERS),
    Case("AccessService/AuthenticateCaller", lambda s, w, md: s.access.AuthenticateCaller(
        access_pb2.AuthenticateCallerRequest(token="anything"), metadata=md), perm.CALLERS_AUTHENTICATE.name, NOBODY),
    Case("AccessService/CheckBlobAccess", lambda s, w, md: s.access.CheckBlobAccess(access_pb2.CheckBlobAccessRequest(
        principal="admin", digests=[blob_pb2.Digest(hash="a" * 64, size_bytes=1)]), metadata=md),
         perm.BLOBS_CHECK_ACCESS.name, NOBODY),
    # MetadataService
    Case("MetadataService/CreateDataset", lambda s, w, md: s.metadata.CreateDataset(ms.CreateDatasetRequest(
        dataset=dataset_pb2.Dataset(name=unique("made"))), metadata=md), perm.DATASETS_CREATE.name, ADMINS),
    Case("MetadataService/GetDataset", lambda s, w, md: s.metadata.GetDataset(ms.GetDatasetRequest(dataset=_d(w)),
                                                                              metadata=md),
         perm.DATASETS_GET.name, DATASET_VIEWERS),
    Case("MetadataService/ListDatasets", lambda s, w, md: s.metadata.ListDatasets(ms.ListDatasetsRequest(),
                                                                                  metadata=md),
         perm.DATASETS_LIST.name, EVERYONE),
    Case("MetadataService/UpdateDataset", lambda s, w, md: s.metadata.UpdateDataset(ms.UpdateDatasetRequest(
        dataset_ref=_d(w), dataset=dataset_pb2.Dataset(description="changed"), update_mask=_stale("description"),
        etag="stale"), metadata=md), perm.DATASETS_UPDATE.name, DATASET_OWNERS, ABORTED),
    Case("MetadataService/DeleteDataset", lambda s, w, md: s.metadata.DeleteDataset(ms.DeleteDatasetRequest(
        dataset=_d(w)), metadata=md), perm.DATASETS_DELETE.name, DATASET_OWNERS, FAILED_PRECONDITION),
    Case("MetadataService/CreateVersion", lambda s, w, md: s.metadata.CreateVersion(ms.CreateVersionRequest(
        dataset=_d(w), parent=_p(w), version=dataset_pb2.Version(name=unique("child"))), metadata=md),
         perm.VERSIONS_WRITE.name, DATASET_EDITORS),
    Case("MetadataService/GetVersion", lambda s, w, md: s.metadata.GetVersion(ms.GetVersionRequest(version=_p(w)),
                                                                              metadata=md),
         perm.VERSIONS_READ.name, DATASET_VIEWERS),
    Case("MetadataService/ListVersions", lambda s, w, md: s.metadata.ListVersions(ms.ListVersionsRequest(
        dataset=_d(w)), metadata=md), perm.VERSIONS_READ.name, DATASET_VIEWERS),
    Case("MetadataService/UpdateVersion", lambda s, w, md: s.metadata.UpdateVersion(ms.UpdateVersionRequest(
        version_ref=_p(w), version=dataset_pb2.Version(description="changed"), update_mask=_stale("description"),
        etag="stale"), metadata=md), perm.VERSIONS_WRITE.name, DATASET_EDITORS, ABORTED),
    Case("MetadataService/PublishVersion", lambda s, w, md: s.metadata.PublishVersion(ms.PublishVersionRequest(
        version=_p(w)), metadata=md), perm.VERSIONS_PUBLISH.name, DATASET_OWNERS, FAILED_PRECONDITION),
    Case("MetadataService/SnapshotVersion", lambda s, w, md: s.metadata.SnapshotVersion(ms.SnapshotVersionRequest(
        version=_p(w)), metadata=md), perm.VERSIONS_PUBLISH.name, DATASET_OWNERS, FAILED_PRECONDITION),
    Case("MetadataService/DeleteVersion", lambda s, w, md: s.metadata.DeleteVersion(ms.DeleteVersionRequest(
        version=_p(w)), metadata=md), perm.VERSIONS_WRITE.name, DATASET_EDITORS, FAILED_PRECONDITION),
    Case("MetadataService/DiffVersions", lambda s, w, md: _drain(s.metadata.DiffVersions(ms.DiffVersionsRequest(
        base=_p(w), target=_draft(w)), metadata=md)), perm.VERSIONS_READ.name, DATASET_VIEWERS),
    Case("MetadataService/MergeVersions", lambda s, w, md: s.metadata.MergeVersions(ms.MergeVersionsRequest(
        ours=_p(w), theirs=_draft(w), version=dataset_pb2.Version(name=unique("merged"))), metadata=md),
         perm.VERSIONS_WRITE.name, DATASET_EDITORS, FAILED_PRECONDITION),
    Case("MetadataService/GetVersionStatistics", lambda s, w, md: s.metadata.GetVersionStatistics(
        ms.GetVersionStatisticsRequest(version=_p(w)), metadata=md), perm.VERSIONS_READ.name, DATASET_VIEWERS),
    Case("MetadataService/GetFrame", lambda s, w, md: s.metadata.GetFrame(ms.GetFrameRequest(
        version=_p(w), frame_id=w.frame_id), metadata=md), perm.FRAMES_READ.name, DATASET_VIEWERS),
    Case("MetadataService/UpdateFrame", lambda s, w, md: s.metadata.UpdateFrame(ms.UpdateFrameRequest(
        version=_p(w), frame=frame_pb2.Frame(id=w.frame_id, context_id="changed"), update_mask=_stale("context_id")),
        metadata=md), perm.FRAMES_WRITE.name, DATASET_EDITORS, FAILED_PRECONDITION),
    Case("MetadataService/DeleteFrames", lambda s, w, md: s.metadata.DeleteFrames(ms.DeleteFramesRequest(
        version=_p(w), frame_ids=[w.frame_id]), metadata=md), perm.FRAMES_WRITE.name, DATASET_EDITORS,
         FAILED_PRECONDITION),
    Case("MetadataService/CountFrames", lambda s, w, md: s.metadata.CountFrames(ms.CountFramesRequest(
        version=_p(w)), metadata=md), perm.FRAMES_READ.name, DATASET_VIEWERS),
    Case("MetadataService/ListFrames", lambda s, w, md: s.metadata.ListFrames(ms.ListFramesRequest(
        version=_p(w)), metadata=md), perm.FRAMES_READ.name, DATASET_VIEWERS),
    Case("MetadataService/UploadFrames", _upload, perm.FRAMES_WRITE.name, DATASET_EDITORS, FAILED_PRECONDITION),
    Case("MetadataService/IterateFrames", lambda s, w, md: _drain(s.metadata.IterateFrames(ms.IterateFramesRequest(
        view=_view(w)), metadata=md)), perm.FRAMES_READ.name, DATASET_VIEWERS),
    Case("MetadataService/CountViewFrames", lambda s, w, md: s.metadata.CountViewFrames(ms.CountViewFramesRequest(
        view=_view(w)), metadata=md), perm.FRAMES_READ.name, DATASET_VIEWERS),
    Case("MetadataService/ListViewFrames", lambda s, w, md: s.metadata.ListViewFrames(ms.ListViewFramesRequest(
        view=_view(w)), metadata=md), perm.FRAMES_READ.name, DATASET_VIEWERS),
    Case("MetadataService/ListContexts", lambda s, w, md: s.metadata.ListContexts(ms.ListContextsRequest(
        selection=view_pb2.ViewSelection(version=_p(w))), metadata=md), perm.FRAMES_READ.name, DATASET_VIEWERS),
    Case("MetadataService/ListContextFrames", lambda s, w, md: s.metadata.ListContextFrames(
        ms.ListContextFramesRequest(selection=view_pb2.ViewSelection(version=_p(w)),
                                    context_id=f"https://images.invalid/{w.frame_id}.jpg"), metadata=md),
         perm.FRAMES_READ.name, DATASET_VIEWERS),
    Case("MetadataService/ListReferencedBlobs", lambda s, w, md: _drain(s.metadata.ListReferencedBlobs(
        ms.ListReferencedBlobsRequest(), metadata=md)), perm.REFERENCES_LIST.name, ADMINS),
]


def test_the_matrix_covers_every_rpc_of_the_metadata_process() -> None:
    served = {f"/framevault.v1.{case.rpc}" for case in CASES}
    expected = {method for method in perm.RULES
                if method.split("/")[1] in (perm.METADATA_SERVICE_NAME, perm.ACCESS_SERVICE_NAME)}
    assert served == expected
    for case in CASES:
        assert perm.RULES[f"/framevault.v1.{case.rpc}"].permission.name == case.permission, case.rpc


@dataclass
class Stubs_:
    metadata: Any
    access: Any


def stored_state(settings: Settings, world: World) -> dict[str, list[Any]]:
    """Every stored document of both datasets, and all keys and role bindings."""
    ids = [world.target.id, world.other.id]
    uri = settings.mongodb_uri
    with MongoClient(getattr(uri, "get_secret_value", lambda: uri)(), tz_aware=True) as client:
        db = client[settings.mongodb_database]
        return {
            "datasets": list(db.datasets.find({"_id": {"$in": ids}}).sort("_id")),
            "versions": list(db.versions.find({"dataset_id": {"$in": ids}}).sort("_id")),
            "frames": list(db.frames.find({"dataset_id": {"$in": ids}}).sort("_id")),
            "api_keys": list(db.api_keys.find().sort("_id")),
            "role_bindings": list(db.role_bindings.find().sort("_id")),
        }


def _permission_of(exc: grpc.aio.AioRpcError) -> str | None:
    for detail in error_details(exc):
        if isinstance(detail, error_details_pb2.ErrorInfo):
            return detail.metadata.get("permission")
    return None


@pytest.mark.parametrize("kind", CALLER_KINDS)
@pytest.mark.parametrize("case", CASES, ids=[case.rpc.split("/")[1] for case in CASES])
async def test_rpc_by_caller(case: Case, kind: str, world: World, metadata: Any, access: Any,
                             secure_settings: Settings) -> None:
    stubs = Stubs_(metadata, access)
    credential = world.callers[kind]
    if kind in case.allowed:
        try:
            await case.call(stubs, world, credential)
            code = OK
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
        assert code == case.allowed_code, f"{case.rpc} by {kind}"
        return
    before = stored_state(secure_settings, world)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await case.call(stubs, world, credential)
    if kind in ("anonymous", "invalid token"):
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused.value.details()
    else:
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, refused.value.details()
        assert _permission_of(refused.value) == case.permission
        assert case.permission in (refused.value.details() or "")
    assert stored_state(secure_settings, world) == before
