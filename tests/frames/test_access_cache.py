"""What authorizing a GetFrame reads from MongoDB, and how long it is remembered.

The metadata service's access control runs here in-process over the real
MongoDB access store of the session database; the store is wrapped only to
count the reads authorization makes. A second store writes as another
replica would, so nothing this process does tells the cache about it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from framevault.auth.access import Access
from framevault.auth.access_control import MetadataAuthenticator, MetadataAuthorizer
from framevault.auth.mongo_store import MongoAccessStore
from framevault.auth.permissions import VIEWER, rule_of
from framevault.auth.principals import Caller
from framevault.common.config import Settings
from framevault.common.errors import PermissionDenied, Unauthenticated
from framevault.metadata.catalog.mongo_store import MongoCatalogStore
from framevault.metadata.catalog.service import Catalog
from framevault.metadata.db import Database
from framevault.v1 import access_pb2, dataset_pb2
from framevault.v1 import metadata_service_pb2 as ms

GET_FRAME = "/framevault.v1.MetadataService/GetFrame"
CACHE_SECONDS = 5
AUTHORIZATION_READS = ("find_api_key", "dataset_of_version", "roles_on")


class CountingStore:
    """The MongoDB access store, counting the reads authorization makes."""

    def __init__(self, inner: MongoAccessStore):
        self._inner = inner
        self.reads: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in AUTHORIZATION_READS:
            return attribute

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.reads[name] += 1
            return await attribute(*args, **kwargs)

        return counted


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Replica:
    """The access control of one metadata process, on a clock the test moves."""

    store: CountingStore
    clock: Clock
    authenticator: MetadataAuthenticator
    authorizer: MetadataAuthorizer

    async def get_frame(self, token: str, version_id: str) -> Caller:
        """Authenticates and authorizes a GetFrame as the interceptor does."""
        caller = await self.authenticator.authenticate(token)
        request = ms.GetFrameRequest(version=dataset_pb2.VersionRef(id=version_id), frame_id="f-1")
        rule = rule_of(GET_FRAME)
        assert rule is not None
        grant = await self.authorizer.authorize(caller, GET_FRAME, rule, request)
        return grant.caller


@dataclass
class World:
    settings: Settings
    other_replica: Access
    dataset_id: str
    version_id: str
    principal: str
    token: str
    key_id: str

    def replica(self) -> Replica:
        store = CountingStore(self.other_replica.store)  # type: ignore[arg-type]
        clock = Clock()
        access: Any = store  # the AccessStore protocol, counted
        return Replica(store, clock, MetadataAuthenticator(self.settings, access, self.other_replica.hasher, clock),
                       MetadataAuthorizer(self.settings, access, clock))

    async def grant(self, role: int = VIEWER) -> None:
        await self.other_replica.store.put_role({"principal": self.principal, "dataset_id": self.dataset_id,
                                                 "role": role, "create_time": None, "granted_by": "test"})


@pytest.fixture
async def world(settings: Settings, frames_db: Database) -> World:
    settings = dataclasses.replace(settings, metadata_access_cache_seconds=CACHE_SECONDS)
    catalog = Catalog(MongoCatalogStore(frames_db), settings)
    dataset = await catalog.datasets.create(ms.CreateDatasetRequest(
        dataset=dataset_pb2.Dataset(name=f"access-cache-{uuid.uuid4().hex[:10]}")))
    draft = await catalog.versions.get(dataset_pb2.VersionRef(
        dataset=dataset_pb2.DatasetRef(id=str(dataset["_id"])), name="Current"))
    other = Access(settings, MongoAccessStore(frames_db))
    principal = f"viewer-{uuid.uuid4().hex[:10]}"
    issued = await other.issue_api_key(principal, "access cache test", None, "test")
    world = World(settings, other, str(dataset["_id"]), str(draft["_id"]), principal, issued.token,
                  issued.api_key.id)
    await world.grant()
    return world


async def test_a_repeated_get_frame_is_authorized_without_reading_the_database(world: World) -> None:
    replica = world.replica()
    assert (await replica.get_frame(world.token, world.version_id)).principal == world.principal
    first = sum(replica.store.reads.values())
    assert first == 3  # the key, the version's dataset, the roles
    for _ in range(3):
        assert (await replica.get_frame(world.token, world.version_id)).principal == world.principal
    assert sum(replica.store.reads.values()) == first


async def test_a_key_revoked_through_another_replica_stops_working_within_the_cache_time(world: World) -> None:
    replica = world.replica()
    await replica.get_frame(world.token, world.version_id)
    await world.other_replica.revoke_api_key(access_pb2.RevokeApiKeyRequest(api_key_id=world.key_id))
    replica.clock.now += CACHE_SECONDS - 1
    await replica.get_frame(world.token, world.version_id)
    replica.clock.now += 1
    with pytest.raises(Unauthenticated) as refused:
        await replica.get_frame(world.token, world.version_id)
    assert refused.value.reason == "CREDENTIAL_REVOKED"
    # A refused key is read again on every call: nothing remembers a refusal.
    reads = replica.store.reads["find_api_key"]
    with pytest.raises(Unauthenticated):
        await replica.get_frame(world.token, world.version_id)
    assert replica.store.reads["find_api_key"] == reads + 1


async def test_a_role_revoked_through_another_replica_stops_working_within_the_cache_time(world: World) -> None:
    replica = world.replica()
    await replica.get_frame(world.token, world.version_id)
    await world.other_replica.store.delete_role(world.principal, world.dataset_id)
    replica.clock.now += CACHE_SECONDS - 1
    await replica.get_frame(world.token, world.version_id)
    replica.clock.now += 1
    with pytest.raises(PermissionDenied):
        await replica.get_frame(world.token, world.version_id)


async def test_a_refusal_is_remembered_no_longer_than_a_grant(world: World) -> None:
    await world.other_replica.store.delete_role(world.principal, world.dataset_id)
    replica = world.replica()
    with pytest.raises(PermissionDenied):
        await replica.get_frame(world.token, world.version_id)
    await world.grant()
    replica.clock.now += CACHE_SECONDS
    assert (await replica.get_frame(world.token, world.version_id)).principal == world.principal


async def test_revocations_through_this_process_take_effect_at_once(world: World) -> None:
    access = world.other_replica
    caller = await access.authenticator.authenticate(world.token)
    request = ms.GetFrameRequest(version=dataset_pb2.VersionRef(id=world.version_id), frame_id="f-1")
    rule = rule_of(GET_FRAME)
    assert rule is not None
    await access.authorizer.authorize(caller, GET_FRAME, rule, request)

    owner = Caller(principal="admin", credential_kind=0, admin=True)
    await access.revoke_role(owner, access_pb2.RevokeRoleRequest(
        principal=world.principal, dataset=dataset_pb2.DatasetRef(id=world.dataset_id)))
    with pytest.raises(PermissionDenied):
        await access.authorizer.authorize(caller, GET_FRAME, rule, request)

    await access.revoke_api_key(access_pb2.RevokeApiKeyRequest(api_key_id=world.key_id))
    with pytest.raises(Unauthenticated) as refused:
        await access.authenticator.authenticate(world.token)
    assert refused.value.reason == "CREDENTIAL_REVOKED"
