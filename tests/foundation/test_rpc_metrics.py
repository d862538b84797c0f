"""Every call is counted and timed under its method and status code."""

from __future__ import annotations

import uuid

import grpc
import pytest
from prometheus_client import REGISTRY

from framevault.common.server import RunningService
from framevault.v1 import dataset_pb2
from framevault.v1 import metadata_service_pb2 as ms

SERVICE = "framevault.v1.MetadataService"


def _handled(method: str, code: str) -> float:
    return REGISTRY.get_sample_value("framevault_rpcs_handled_total",
                                     {"grpc_service": SERVICE, "grpc_method": method, "grpc_code": code}) or 0.0


def _timed(method: str) -> float:
    return REGISTRY.get_sample_value("framevault_rpc_duration_seconds_count",
                                     {"grpc_service": SERVICE, "grpc_method": method}) or 0.0


async def test_every_call_is_counted_under_its_method_and_code(metadata_service: RunningService,
                                                               metadata_stub) -> None:
    before = (_handled("ListDatasets", "OK"), _handled("GetDataset", "NOT_FOUND"), _timed("ListDatasets"),
              _timed("GetDataset"))
    for _ in range(3):
        await metadata_stub.ListDatasets(ms.ListDatasetsRequest(page_size=1))
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await metadata_stub.GetDataset(ms.GetDatasetRequest(
                dataset=dataset_pb2.DatasetRef(name=f"missing-{uuid.uuid4().hex}")))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    after = (_handled("ListDatasets", "OK"), _handled("GetDataset", "NOT_FOUND"), _timed("ListDatasets"),
             _timed("GetDataset"))
    assert [b - a for a, b in zip(before, after, strict=True)] == [3, 2, 3, 2]
