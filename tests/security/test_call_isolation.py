"""One guarded handler serves every call of a method: each call is still
authenticated and authorized on its own credential, and its caller is its own."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from support import channel_to, start_metadata_service

from framevault.common.config import Settings
from framevault.v1 import access_pb2, dataset_pb2, metadata_service_pb2_grpc
from framevault.v1 import metadata_service_pb2 as ms

from .conftest import World


async def _code_of(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_concurrent_calls_of_one_method_each_see_their_own_caller(access: Any, world: World) -> None:
    kinds = ["viewer", "editor", "owner", "admin", "owner of another dataset"] * 4
    callers = await asyncio.gather(*(access.GetCaller(access_pb2.GetCallerRequest(), metadata=world.callers[kind])
                                     for kind in kinds))
    assert [caller.principal for caller in callers] == [world.principals[kind] for kind in kinds]
    assert [caller.admin for caller in callers] == [kind == "admin" for kind in kinds]


async def test_a_refused_credential_between_granted_ones_is_refused_alone(metadata: Any, world: World) -> None:
    request = ms.GetFrameRequest(version=dataset_pb2.VersionRef(id=world.published.id), frame_id=world.frame_id)
    expected = {"viewer": grpc.StatusCode.OK, "anonymous": grpc.StatusCode.UNAUTHENTICATED,
                "invalid token": grpc.StatusCode.UNAUTHENTICATED,
                "owner of another dataset": grpc.StatusCode.PERMISSION_DENIED, "admin": grpc.StatusCode.OK}
    kinds = list(expected) * 3
    codes = await asyncio.gather(*(_code_of(metadata.GetFrame(request, metadata=world.callers[kind]))
                                   for kind in kinds))
    assert codes == [expected[kind] for kind in kinds]
    # And one after another, the granted caller first and last.
    for kind in ("viewer", "anonymous", "owner of another dataset", "viewer"):
        assert await _code_of(metadata.GetFrame(request, metadata=world.callers[kind])) == expected[kind]


@pytest.mark.parametrize("first", ["anonymous", "viewer"])
async def test_the_first_call_of_a_method_does_not_decide_for_later_ones(secure_settings: Settings, world: World,
                                                                         first: str) -> None:
    # A service of its own: its guarded handlers are built by the calls below.
    running = await start_metadata_service(secure_settings)
    try:
        async with channel_to(running.port, anonymous=True) as channel:
            metadata = metadata_service_pb2_grpc.MetadataServiceStub(channel)
            request = ms.GetFrameRequest(version=dataset_pb2.VersionRef(id=world.published.id),
                                         frame_id=world.frame_id)
            then = "viewer" if first == "anonymous" else "anonymous"
            codes = [await _code_of(metadata.GetFrame(request, metadata=world.callers[kind]))
                     for kind in (first, then, first)]
    finally:
        await running.stop(grace=1)
    by_kind = {"viewer": grpc.StatusCode.OK, "anonymous": grpc.StatusCode.UNAUTHENTICATED}
    assert codes == [by_kind[first], by_kind[then], by_kind[first]]
