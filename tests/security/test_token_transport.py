"""How a channel sends its token: as call metadata its interceptors add to every call (no call
credentials), only over TLS or to this machine, replacing an ``authorization`` a call brings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc import aio

from framevault.api.transport import with_token
from framevault.sdk.client import FramevaultClient
from framevault.sdk.settings import ClientSettings
from framevault.v1 import metadata_service_pb2 as ms

LIST_DATASETS = "/framevault.v1.MetadataService/ListDatasets"


class AuthorizationRecorder(aio.ServerInterceptor):
    """Records every ``authorization`` header of each call (no method is served: each is UNIMPLEMENTED)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[str]]] = []

    async def intercept_service(self, continuation, details):  # type: ignore[no-untyped-def]
        self.seen.append((details.method, [value for key, value in details.invocation_metadata or ()
                                           if key == "authorization"]))
        return await continuation(details)


@pytest.fixture()
async def plaintext_recorder() -> AsyncIterator[tuple[AuthorizationRecorder, int]]:
    recording = AuthorizationRecorder()
    server = aio.server(interceptors=[recording])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield recording, port
    await server.stop(0)


async def test_the_channel_token_replaces_an_authorization_a_call_brings(
        plaintext_recorder: tuple[AuthorizationRecorder, int]) -> None:
    recording, port = plaintext_recorder
    settings = ClientSettings(metadata_target=f"127.0.0.1:{port}", blob_target=f"127.0.0.1:{port}",
                              plaintext=True, token="fv_channel_token", unary_attempts=1)
    async with FramevaultClient(settings) as client:
        for metadata in (None, (("authorization", "Bearer fv_other"), ("x-trace", "1"))):
            with pytest.raises(grpc.RpcError) as unimplemented:
                await client.metadata.ListDatasets(ms.ListDatasetsRequest(), metadata=metadata, timeout=5)
            assert unimplemented.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # One header per call, the channel's: a call cannot send another caller's token on it.
    assert recording.seen == [(LIST_DATASETS, ["Bearer fv_channel_token"])] * 2


async def test_blocking_channels_send_the_token_with_every_call(
        plaintext_recorder: tuple[AuthorizationRecorder, int]) -> None:
    recording, port = plaintext_recorder
    target = f"127.0.0.1:{port}"
    tokens = iter(["fv_first", "fv_renewed"])

    def call_twice() -> list[grpc.StatusCode]:
        with with_token(grpc.insecure_channel(target), False, target, lambda: next(tokens)) as channel:
            list_datasets = channel.unary_unary(LIST_DATASETS,
                                                request_serializer=ms.ListDatasetsRequest.SerializeToString)
            codes = []
            for _ in range(2):
                with pytest.raises(grpc.RpcError) as refused:
                    list_datasets(ms.ListDatasetsRequest(), timeout=5)
                codes.append(refused.value.code())
            return codes

    # Blocking calls off the event loop the server answers on.
    assert await asyncio.to_thread(call_twice) == [grpc.StatusCode.UNIMPLEMENTED] * 2
    # A token source is asked on every call (service tokens are renewed before they expire).
    assert recording.seen == [(LIST_DATASETS, ["Bearer fv_first"]), (LIST_DATASETS, ["Bearer fv_renewed"])]


def test_a_blocking_channel_refuses_a_token_in_plaintext_to_another_host() -> None:
    channel = grpc.insecure_channel("metadata.example:50051")
    with pytest.raises(ValueError, match="a token is sent only over TLS or to this machine"):
        with_token(channel, False, "metadata.example:50051", "fv_secret")
    channel.close()
