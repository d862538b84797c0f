"""What every RPC of both services needs: the one permission table.

Each RPC maps to a ``Permission``: its name (what PERMISSION_DENIED names),
its scope (whom it concerns) and, for dataset scopes, the lowest role that
grants it. Roles per dataset: viewer < editor < owner; the global admin holds
every permission. Service identities (``service:<name>``) hold only the
permissions that list their name: the two services trust each other for what
they need of each other, not more.

For dataset-scoped RPCs of the metadata service the rule also says where the
request names its datasets (``refs``): dataset and version references. A
request that names none resolves to no dataset and needs the admin role, so
authorization fails closed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from framevault.v1 import access_pb2, blob_pb2, metadata_service_pb2

VIEWER = access_pb2.ROLE_VIEWER
EDITOR = access_pb2.ROLE_EDITOR
OWNER = access_pb2.ROLE_OWNER
ADMIN = access_pb2.ROLE_ADMIN
DATASET_ROLES = (VIEWER, EDITOR, OWNER)
ROLE_NAMES: dict[int, str] = {VIEWER: "viewer", EDITOR: "editor", OWNER: "owner", ADMIN: "admin"}

# Service identities (Caller.service of a service token).
METADATA_SERVICE = "metadata"
BLOB_SERVICE = "blob"

ACCESS_SERVICE_NAME = access_pb2.DESCRIPTOR.services_by_name["AccessService"].full_name
METADATA_SERVICE_NAME = metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name
BLOB_SERVICE_NAME = blob_pb2.DESCRIPTOR.services_by_name["BlobService"].full_name

# Services every caller may use without a credential.
OPEN_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                 "grpc.reflection.v1.ServerReflection")


class Scope(enum.Enum):
    # Any authenticated caller.
    AUTHENTICATED = "authenticated"
    # The admin role (or a listed service identity).
    ADMIN = "admin"
    # A listed service identity only.
    SERVICE = "service"
    # At least ``role`` on every dataset the request names (``refs``).
    DATASET = "dataset"
    # At least ``role`` on some dataset (blob uploads: see docs/SECURITY.md).
    ANY_DATASET = "any-dataset"
    # Read access to blobs: some dataset the caller may view references each digest.
    BLOB_REFERENCE = "blob-reference"
    # Authenticated; the handler decides per request (ListRoles: own roles, or a dataset's owner).
    HANDLER = "handler"


# Where a request names its datasets: DatasetRef and VersionRef messages.
Refs = Callable[[Any], Sequence[Any]]


def _no_refs(_: Any) -> Sequence[Any]:
    return ()


@dataclass(frozen=True)
class Permission:
    name: str
    scope: Scope
    # Lowest dataset role granting it (DATASET, ANY_DATASET scopes).
    role: int = 0
    # Service identities that hold it besides admins.
    services: frozenset[str] = frozenset()
    # Audited: every call is logged once as an ``audit`` event.
    writes: bool = False


@dataclass(frozen=True)
class Rule:
    permission: Permission
    refs: Refs = _no_refs


def _p(name: str, scope: Scope, role: int = 0, *, services: Sequence[str] = (), writes: bool = False) -> Permission:
    return Permission(name, scope, role, frozenset(services), writes)


# -- permissions ----------------------------------------------------------------

CALLER_GET = _p("caller.get", Scope.AUTHENTICATED)
API_KEYS_MANAGE = _p("api_keys.manage", Scope.ADMIN, writes=True)
API_KEYS_LIST = _p("api_keys.list", Scope.ADMIN)
ROLES_MANAGE = _p("roles.manage", Scope.DATASET, OWNER, writes=True)
ROLES_LIST = _p("roles.list", Scope.HANDLER)
CALLERS_AUTHENTICATE = _p("callers.authenticate", Scope.SERVICE, services=[BLOB_SERVICE])
BLOBS_CHECK_ACCESS = _p("blobs.check_access", Scope.SERVICE, services=[BLOB_SERVICE])

DATASETS_CREATE = _p("datasets.create", Scope.ADMIN, writes=True)
DATASETS_GET = _p("datasets.get", Scope.DATASET, VIEWER)
DATASETS_LIST = _p("datasets.list", Scope.AUTHENTICATED)
DATASETS_UPDATE = _p("datasets.update", Scope.DATASET, OWNER, writes=True)
DATASETS_DELETE = _p("datasets.delete", Scope.DATASET, OWNER, writes=True)
VERSIONS_READ = _p("versions.read", Scope.DATASET, VIEWER)
VERSIONS_WRITE = _p("versions.write", Scope.DATASET, EDITOR, writes=True)
VERSIONS_PUBLISH = _p("versions.publish", Scope.DATASET, OWNER, writes=True)
FRAMES_READ = _p("frames.read", Scope.DATASET, VIEWER)
FRAMES_WRITE = _p("frames.write", Scope.DATASET, EDITOR, writes=True)
REFERENCES_LIST = _p("blob_references.list", Scope.ADMIN, services=[BLOB_SERVICE])

# The metadata service reads the limits before it stores inline bytes.
BLOBS_CAPABILITIES = _p("blobs.capabilities", Scope.AUTHENTICATED, services=[METADATA_SERVICE])
# Uploading and asking what is missing: editors of some dataset (an existence
# oracle for digests, so not every authenticated caller), and the metadata
# service storing the inline bytes of uploaded frames.
BLOBS_WRITE = _p("blobs.write", Scope.ANY_DATASET, EDITOR, services=[METADATA_SERVICE], writes=True)
BLOBS_FIND_MISSING = _p("blobs.find_missing", Scope.ANY_DATASET, EDITOR, services=[METADATA_SERVICE])
BLOBS_READ = _p("blobs.read", Scope.BLOB_REFERENCE, services=[METADATA_SERVICE])
BLOBS_PREVIEW = _p("blobs.preview", Scope.BLOB_REFERENCE, services=[METADATA_SERVICE], writes=True)
BLOBS_DELETE = _p("blobs.delete", Scope.ADMIN, writes=True)
BLOBS_COLLECT_GARBAGE = _p("blobs.collect_garbage", Scope.ADMIN, services=[METADATA_SERVICE], writes=True)


# -- where requests name datasets ------------------------------------------------


def _field(name: str) -> Refs:
    return lambda request: (getattr(request, name),)


def _fields(*names: str) -> Refs:
    return lambda request: tuple(getattr(request, name) for name in names)


def _create_version_refs(request: metadata_service_pb2.CreateVersionRequest) -> Sequence[Any]:
    return (request.dataset, request.parent) if request.HasField("parent") else (request.dataset,)


def _view_refs(request: Any) -> Sequence[Any]:
    return tuple(selection.version for selection in request.view.selections)


def _selection_refs(request: Any) -> Sequence[Any]:
    return (request.selection.version,)


def _upload_refs(first: Any) -> Sequence[Any]:
    # The metadata service receives UploadFrames requests with their frames
    # still encoded (frames.upload.ReceivedUploadRequest): the rest of the
    # request, once the whole request decodes, is ``decoded_header``.
    header = getattr(first, "decoded_header", first)
    return (header.options.version,) if header is not None and header.HasField("options") else ()


def _grant_refs(request: access_pb2.GrantRoleRequest | access_pb2.RevokeRoleRequest) -> Sequence[Any]:
    return (request.dataset,) if request.HasField("dataset") else ()


def _method(service: str, name: str) -> str:
    return f"/{service}/{name}"


def _table() -> dict[str, Rule]:
    m, a, b = METADATA_SERVICE_NAME, ACCESS_SERVICE_NAME, BLOB_SERVICE_NAME
    version = _field("version")
    rules = {
        # AccessService
        _method(a, "GetCaller"): Rule(CALLER_GET),
        _method(a, "CreateApiKey"): Rule(API_KEYS_MANAGE),
        _method(a, "ListApiKeys"): Rule(API_KEYS_LIST),
        _method(a, "RevokeApiKey"): Rule(API_KEYS_MANAGE),
        _method(a, "GrantRole"): Rule(ROLES_MANAGE, _grant_refs),
        _method(a, "RevokeRole"): Rule(ROLES_MANAGE, _grant_refs),
        _method(a, "ListRoles"): Rule(ROLES_LIST),
        _method(a, "AuthenticateCaller"): Rule(CALLERS_AUTHENTICATE),
        _method(a, "CheckBlobAccess"): Rule(BLOBS_CHECK_ACCESS),
        # MetadataService
        _method(m, "CreateDataset"): Rule(DATASETS_CREATE),
        _method(m, "GetDataset"): Rule(DATASETS_GET, _field("dataset")),
        _method(m, "ListDatasets"): Rule(DATASETS_LIST),
        _method(m, "UpdateDataset"): Rule(DATASETS_UPDATE, _field("dataset_ref")),
        _method(m, "DeleteDataset"): Rule(DATASETS_DELETE, _field("dataset")),
        _method(m, "CreateVersion"): Rule(VERSIONS_WRITE, _create_version_refs),
        _method(m, "GetVersion"): Rule(VERSIONS_READ, version),
        _method(m, "ListVersions"): Rule(VERSIONS_READ, _field("dataset")),
        _method(m, "UpdateVersion"): Rule(VERSIONS_WRITE, _field("version_ref")),
        _method(m, "PublishVersion"): Rule(VERSIONS_PUBLISH, version),
        _method(m, "SnapshotVersion"): Rule(VERSIONS_PUBLISH, version),
        _method(m, "DeleteVersion"): Rule(VERSIONS_WRITE, version),
        _method(m, "DiffVersions"): Rule(VERSIONS_READ, _fields("base", "target")),
        _method(m, "MergeVersions"): Rule(VERSIONS_WRITE, _fields("ours", "theirs")),
        _method(m, "GetVersionStatistics"): Rule(VERSIONS_READ, version),
        _method(m, "GetFrame"): Rule(FRAMES_READ, version),
        _method(m, "UpdateFrame"): Rule(FRAMES_WRITE, version),
        _method(m, "DeleteFrames"): Rule(FRAMES_WRITE, version),
        _method(m, "CountFrames"): Rule(FRAMES_READ, version),
        _method(m, "ListFrames"): Rule(FRAMES_READ, version),
        # A request stream: the rule reads its first message.
        _method(m, "UploadFrames"): Rule(FRAMES_WRITE, _upload_refs),
        _method(m, "IterateFrames"): Rule(FRAMES_READ, _view_refs),
        _method(m, "CountViewFrames"): Rule(FRAMES_READ, _view_refs),
        _method(m, "ListViewFrames"): Rule(FRAMES_READ, _view_refs),
        _method(m, "ListContexts"): Rule(FRAMES_READ, _selection_refs),
        _method(m, "ListContextFrames"): Rule(FRAMES_READ, _selection_refs),
        _method(m, "ListReferencedBlobs"): Rule(REFERENCES_LIST),
        # BlobService (enforced by the blob service; see docs/SECURITY.md)
        _method(b, "GetCapabilities"): Rule(BLOBS_CAPABILITIES),
        _method(b, "FindMissingBlobs"): Rule(BLOBS_FIND_MISSING),
        _method(b, "BatchUpdateBlobs"): Rule(BLOBS_WRITE),
        _method(b, "BatchReadBlobs"): Rule(BLOBS_READ),
        _method(b, "WriteBlob"): Rule(BLOBS_WRITE),
        _method(b, "QueryWriteStatus"): Rule(BLOBS_WRITE),
        _method(b, "StartDirectUpload"): Rule(BLOBS_WRITE),
        _method(b, "CompleteDirectUpload"): Rule(BLOBS_WRITE),
        _method(b, "ReadBlob"): Rule(BLOBS_READ),
        _method(b, "GetDownloadUrl"): Rule(BLOBS_READ),
        _method(b, "CreatePreview"): Rule(BLOBS_PREVIEW),
        _method(b, "DeleteBlobs"): Rule(BLOBS_DELETE),
        _method(b, "CollectGarbage"): Rule(BLOBS_COLLECT_GARBAGE),
    }
    return rules


# Full method name (``/framevault.v1.MetadataService/GetDataset``) -> rule.
RULES: dict[str, Rule] = _table()


def is_open(method: str) -> bool:
    """Health and reflection: answered without a credential."""
    return method.split("/")[1] in OPEN_SERVICES if method.count("/") == 2 else False


def rule_of(method: str) -> Rule | None:
    return RULES.get(method)
