"""Access data over the life of what it belongs to: role bindings end with
their dataset, and replicas starting together issue one bootstrap admin key."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support import start_metadata_service

from framevault.common.config import Settings
from framevault.metadata.db import Database
from framevault.v1 import access_pb2, dataset_pb2, frame_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import unique


@pytest.fixture
async def db(secure_settings: Settings, secure_metadata: Any) -> AsyncIterator[Database]:
    database = Database(secure_settings)
    yield database
    await database.close()


async def _dataset_with_roles(metadata: Any, access: Any, admin: Any) -> tuple[dataset_pb2.Dataset, list[str]]:
    """A dataset with one frame in its draft and a viewer and an editor."""
    dataset = await metadata.CreateDataset(ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(
        name=unique("roles-end-with-dataset"))), metadata=admin)
    current = await metadata.GetVersion(ms.GetVersionRequest(version=dataset_pb2.VersionRef(
        dataset=dataset_pb2.DatasetRef(id=dataset.id), name="Current")), metadata=admin)
    call = metadata.UploadFrames(metadata=admin)
    await call.write(ms.UploadFramesRequest(options=ms.UploadOptions(version=dataset_pb2.VersionRef(id=current.id))))
    await call.write(ms.UploadFramesRequest(items=[ms.UploadItem(frame=frame_pb2.Frame(
        id="f1", sources=[frame_pb2.Source(uri="https://images.invalid/f1.jpg")]))]))
    await call.done_writing()
    assert [response async for response in call][-1].summary.created == 1
    principals = [unique("viewer"), unique("editor")]
    for principal, role in zip(principals, (access_pb2.ROLE_VIEWER, access_pb2.ROLE_EDITOR), strict=True):
        await access.GrantRole(access_pb2.GrantRoleRequest(principal=principal, role=role,
                                                           dataset=dataset_pb2.DatasetRef(id=dataset.id)),
                               metadata=admin)
    return dataset, principals


async def _roles_of(access: Any, admin: Any, principal: str) -> list[access_pb2.RoleBinding]:
    return list((await access.ListRoles(access_pb2.ListRolesRequest(principal=principal), metadata=admin)).bindings)


async def test_deleting_a_dataset_deletes_its_role_bindings(metadata: Any, access: Any, admin: Any,
                                                            db: Database) -> None:
    dataset, principals = await _dataset_with_roles(metadata, access, admin)
    assert [len(await _roles_of(access, admin, p)) for p in principals] == [1, 1]
    await metadata.DeleteDataset(ms.DeleteDatasetRequest(dataset=dataset_pb2.DatasetRef(id=dataset.id)),
                                 metadata=admin)
    assert [await _roles_of(access, admin, p) for p in principals] == [[], []]
    assert await db.db["role_bindings"].count_documents({"dataset_id": dataset.id}) == 0


async def test_an_interrupted_delete_finished_later_deletes_the_role_bindings(metadata: Any, access: Any,
                                                                              admin: Any, db: Database) -> None:
    dataset, principals = await _dataset_with_roles(metadata, access, admin)
    # As if a delete had stopped after removing the dataset and its versions
    # and left its bindings (as deletes did before bindings went with them).
    await db.versions.delete_many({"dataset_id": dataset.id})
    await db.datasets.delete_one({"_id": dataset.id})
    deleted = await metadata.DeleteDataset(ms.DeleteDatasetRequest(dataset=dataset_pb2.DatasetRef(id=dataset.id)),
                                           metadata=admin)
    assert deleted.deleted_frames == 1
    assert [await _roles_of(access, admin, p) for p in principals] == [[], []]
    # Bindings alone are left-overs too: the same call removes them.
    await db.db["role_bindings"].insert_one({"principal": principals[0], "dataset_id": dataset.id, "role": 1})
    await metadata.DeleteDataset(ms.DeleteDatasetRequest(dataset=dataset_pb2.DatasetRef(id=dataset.id)),
                                 metadata=admin)
    assert await db.db["role_bindings"].count_documents({"dataset_id": dataset.id}) == 0


async def test_replicas_starting_at_once_issue_one_bootstrap_admin_key(secure_settings: Settings,
                                                                        tmp_path: Path) -> None:
    database_name = unique("bootstrap-race").replace("-", "_")
    key_files = [tmp_path / f"replica-{i}.key" for i in range(3)]
    replicas = [dataclasses.replace(secure_settings, mongodb_database=database_name, metadata_address="127.0.0.1:0",
                                    bootstrap_admin_key_file=str(path)) for path in key_files]
    running = await asyncio.gather(*(start_metadata_service(settings) for settings in replicas))
    database = Database(replicas[0])
    try:
        assert all(service.prepared.is_set() for service in running)
        assert sum(path.exists() for path in key_files) == 1
        assert await database.db["api_keys"].count_documents({}) == 1
        assert await database.db["role_bindings"].count_documents({"principal": "admin", "dataset_id": ""}) == 1
    finally:
        await asyncio.gather(*(service.stop(grace=1) for service in running))
        await database.client.drop_database(database_name)
        await database.close()
