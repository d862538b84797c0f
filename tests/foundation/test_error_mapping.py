"""Domain errors become rich statuses in exactly one place: the interceptor."""

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc import aio
from support import error_details, violated_fields

from framevault.common.errors import FieldViolation, InvalidArgument, NotFound
from framevault.common.interceptors import ErrorMappingInterceptor
from framevault.common.request_decoding import UndecodableRequest, accepts_undecodable
from framevault.v1 import metadata_service_pb2 as ms

FAILURES = {
    "/test.Svc/Invalid": InvalidArgument([FieldViolation("frames[3].rois[0].confidence", "must be in [0, 1]")]),
    "/test.Svc/Missing": NotFound("dataset", "cars", field="dataset.name"),
    "/test.Svc/Bug": ValueError("secret internal detail"),
    # Errors that echo huge caller input: names, keys, many violations.
    "/test.Svc/HugeInvalid": InvalidArgument(
        [FieldViolation(f"dataset.meta.{'é' * 20_000}", f"bad key {'x' * 20_000}")] * 500),
    "/test.Svc/HugeMissing": NotFound("dataset", "y" * 400_000, field="dataset.name"),
}


async def _echo_frame_id(request, context):
    return request.frame_id.encode()


@accepts_undecodable
async def _count_undecodable(requests, context):
    kinds = [type(r).__name__ async for r in requests]
    yield ",".join(kinds).encode()


class _Handlers(grpc.GenericRpcHandler):
    def service(self, handler_call_details):
        if handler_call_details.method == "/test.Svc/Typed":
            return grpc.unary_unary_rpc_method_handler(
                _echo_frame_id, request_deserializer=ms.GetFrameRequest.FromString)
        if handler_call_details.method == "/test.Svc/TypedStream":
            return grpc.stream_stream_rpc_method_handler(
                _count_undecodable, request_deserializer=ms.GetFrameRequest.FromString)
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


async def test_undecodable_request_is_invalid_argument_before_the_handler(channel):
    assert await channel.unary_unary("/test.Svc/Typed")(ms.GetFrameRequest(frame_id="f").SerializeToString()) == b"f"
    with pytest.raises(aio.AioRpcError) as caught:
        await channel.unary_unary("/test.Svc/Typed")(b"\x12\x02\xc3\x28")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["frame_id"]


async def test_handlers_that_accept_undecodable_items_receive_them(channel):
    call = channel.stream_stream("/test.Svc/TypedStream")(iter([b"", b"\x80", b""]))
    assert [answer async for answer in call] == [
        f"GetFrameRequest,{UndecodableRequest.__name__},GetFrameRequest".encode()]


@pytest.mark.parametrize("method", ["/test.Svc/HugeInvalid", "/test.Svc/HugeMissing"])
async def test_errors_echoing_huge_input_still_reach_the_client(channel, method):
    """The status trailer stays under the 8 KiB clients accept, so the caller
    sees our code and the field, not RESOURCE_EXHAUSTED."""
    with pytest.raises(aio.AioRpcError) as caught:
        await channel.unary_unary(method)(b"")
    expected = grpc.StatusCode.INVALID_ARGUMENT if "Invalid" in method else grpc.StatusCode.NOT_FOUND
    assert caught.value.code() == expected
    fields = violated_fields(caught.value)
    assert fields and all(f.startswith("dataset.") for f in fields)
    trailer = dict(caught.value.trailing_metadata() or ())
    assert len(trailer["grpc-status-details-bin"]) < 4096
