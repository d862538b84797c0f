"""A MongoDB outage after start answers the same retryable code on every RPC
family: catalog, frames, views and the upload stream's per-frame results
(STORAGE.md, "Errors")."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc import aio
from pymongo.uri_parser import parse_uri
from support import channel_to, error_details, status_details

from framevault.common.config import Settings
from framevault.common.server import RunningService
from framevault.metadata.app import build_service
from framevault.v1 import dataset_pb2, frame_pb2, metadata_service_pb2_grpc, view_pb2
from framevault.v1 import metadata_service_pb2 as ms


class DatabaseLink:
    """A TCP relay in front of mongod: the service reaches the database
    through it until ``cut`` closes it and every connection through it, after
    which the port refuses connections like a database that is gone."""

    def __init__(self, host: str, port: int):
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def open(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self._target)
        self._writers |= {client_writer, server_writer}
        pumps = [asyncio.create_task(self._pump(client_reader, server_writer)),
                 asyncio.create_task(self._pump(server_reader, client_writer))]
        self._pumps.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for writer in (client_writer, server_writer):
            writer.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in self._writers:
            writer.close()
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)


@pytest.fixture
async def link(settings: Settings) -> AsyncIterator[tuple[DatabaseLink, int]]:
    host, port = parse_uri(settings.mongodb_uri.get_secret_value())["nodelist"][0]
    relay = DatabaseLink(host, port)
    relay_port = await relay.open()
    try:
        yield relay, relay_port
    finally:
        await relay.cut()


def _retry_delay_ms(details: list[object]) -> int | None:
    for detail in details:
        if isinstance(detail, error_details_pb2.RetryInfo):
            return detail.retry_delay.ToMilliseconds()
    return None


async def _failure(call: Callable[[], Awaitable[Any]]) -> tuple[grpc.StatusCode, int | None]:
    with pytest.raises(aio.AioRpcError) as caught:
        await call()
    return caught.value.code(), _retry_delay_ms(error_details(caught.value))


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def test_a_database_outage_is_unavailable_on_every_rpc_family(
        settings: Settings, blob_service: RunningService, link: tuple[DatabaseLink, int]) -> None:
    relay, relay_port = link
    through_link = dataclasses.replace(
        settings, mongodb_uri=f"mongodb://127.0.0.1:{relay_port}/?directConnection=true", mongodb_timeout_ms=300,
        blob_target=f"127.0.0.1:{blob_service.port}", metadata_address="127.0.0.1:0")
    service = RunningService(build_service(through_link), through_link)
    await service.start()
    try:
        async with channel_to(service.port) as channel:
            stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
            name = f"outage-{uuid.uuid4().hex[:8]}"
            dataset = await stub.CreateDataset(ms.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=name)))
            draft = (await stub.ListVersions(ms.ListVersionsRequest(dataset=dataset_pb2.DatasetRef(id=dataset.id)))
                     ).versions[0]
            version = dataset_pb2.VersionRef(id=draft.id)

            # An upload stream that started while the database answered.
            requests: asyncio.Queue[ms.UploadFramesRequest | None] = asyncio.Queue()

            async def request_stream() -> AsyncIterator[ms.UploadFramesRequest]:
                while (request := await requests.get()) is not None:
                    yield request

            uploading = stub.UploadFrames(request_stream())
            await requests.put(ms.UploadFramesRequest(options=ms.UploadOptions(version=version, upload_retries=0)))
            started = await uploading.read()
            assert started.HasField("started")

            await relay.cut()

            frame = frame_pb2.Frame(id="f1", context_id="c", timestamp=1, sources=[frame_pb2.Source(
                uri="https://images.invalid/f1.jpg", content_type="image/jpeg", width=4, height=4)])
            await requests.put(ms.UploadFramesRequest(items=[ms.UploadItem(frame=frame)]))
            answer = await uploading.read()
            [result] = answer.results.results
            assert result.outcome == ms.FrameResult.OUTCOME_FAILED
            answers = {"UploadFrames per frame": (grpc.StatusCode(
                next(c for c in grpc.StatusCode if c.value[0] == result.error.code)),
                _retry_delay_ms(status_details(result.error)))}
            await requests.put(None)
            uploading.cancel()

            view = view_pb2.View(selections=[view_pb2.ViewSelection(version=version)])
            calls: dict[str, Callable[[], Awaitable[Any]]] = {
                "GetDataset": lambda: stub.GetDataset(ms.GetDatasetRequest(dataset=dataset_pb2.DatasetRef(name=name))),
                "ListDatasets": lambda: stub.ListDatasets(ms.ListDatasetsRequest()),
                "GetVersion": lambda: stub.GetVersion(ms.GetVersionRequest(version=version)),
                "PublishVersion": lambda: stub.PublishVersion(ms.PublishVersionRequest(version=version)),
                "GetFrame": lambda: stub.GetFrame(ms.GetFrameRequest(version=version, frame_id="f1")),
                "ListFrames": lambda: stub.ListFrames(ms.ListFramesRequest(version=version)),
                "CountFrames": lambda: stub.CountFrames(ms.CountFramesRequest(version=version)),
                "IterateFrames": lambda: _drain(stub.IterateFrames(ms.IterateFramesRequest(view=view))),
                "CountViewFrames": lambda: stub.CountViewFrames(ms.CountViewFramesRequest(view=view)),
            }
            for rpc, call in calls.items():
                answers[rpc] = await _failure(call)

            assert answers == dict.fromkeys(answers, (grpc.StatusCode.UNAVAILABLE, 500))
    finally:
        await service.stop(grace=0)
