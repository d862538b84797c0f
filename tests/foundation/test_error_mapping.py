"""Domain errors become rich statuses in exactly one place: the interceptor."""

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc import aio
from support import error_details, violated_fields

from framevault.common.errors import FieldViolation, InvalidArgument, NotFound
from framevault.common.interceptors import ErrorMappingInterceptor

FAILURES = {
    "/test.Svc/Invalid": InvalidArgument([FieldViolation("frames[3].rois[0].confidence", "must be in [0, 1]")]),
    "/test.Svc/Missing": NotFound("dataset", "cars", field="dataset.name"),
    "/test.Svc/Bug": ValueError("secret internal detail"),
}


class _Handlers(grpc.GenericRpcHandler):
    def service(self, handler_call_details):
        error = FAILURES.get(handler_call_details.method)
        if error is None:
            return None

        async def unary(request, context):
            raise error

        async def stream(request, context):
            raise error
            yield b""  # pragma: no cover

        if handler_call_details.method.endswith("Missing"):
            return grpc.unary_stream_rpc_method_handler(stream)
        return grpc.unary_unary_rpc_method_handler(unary)


@pytest.fixture
async def channel():
    server = aio.server(interceptors=[ErrorMappingInterceptor()])
    server.add_generic_rpc_handlers([_Handlers()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ch
    await server.stop(0)


async def test_invalid_argument_names_the_field(channel):
    with pytest.raises(aio.AioRpcError) as caught:
        await channel.unary_unary("/test.Svc/Invalid")(b"")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["frames[3].rois[0].confidence"]
    infos = [d for d in error_details(caught.value) if isinstance(d, error_details_pb2.ErrorInfo)]
    assert infos and infos[0].domain == "framevault.dev"


async def test_not_found_from_a_stream_carries_resource_info(channel):
    with pytest.raises(aio.AioRpcError) as caught:
        async for _ in channel.unary_stream("/test.Svc/Missing")(b""):
            pass
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    resources = [d for d in error_details(caught.value) if isinstance(d, error_details_pb2.ResourceInfo)]
    assert resources[0].resource_type == "dataset" and resources[0].resource_name == "cars"


async def test_unexpected_exception_is_internal_without_details_leaking(channel):
    with pytest.raises(aio.AioRpcError) as caught:
        await channel.unary_unary("/test.Svc/Bug")(b"")
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (caught.value.details() or "")
