"""Request bytes that do not decode are INVALID_ARGUMENT naming the field, on
every kind of RPC of both services; in an upload stream only the frames that
do not decode fail, and the stream goes on."""

from __future__ import annotations

import grpc
import pytest
from frames.helpers import CREATED, FAILED, bad_fields, by_id, get_frame, image_frame, new_draft
from google.protobuf.message import DecodeError
from grpc import aio
from support import violated_fields

from framevault.v1 import metadata_pb2, view_pb2
from framevault.v1 import metadata_service_pb2 as ms

METADATA = "/framevault.v1.MetadataService/"
BLOB = "/framevault.v1.BlobService/"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _nested(levels: int) -> bytes:
    """Field 1 inside field 1 ... ``levels`` deep."""
    data = b""
    for _ in range(levels):
        data = b"\x0a" + _varint(len(data)) + data
    return data


UNDECODABLE = {
    "truncated-tag": b"\x80",
    "length-past-the-end": b"\x0a\x05ab",
    "wire-type-7": b"\x07",
    "nested-past-the-decoder-limit": _nested(150),
}
# Field 2 of UploadFramesRequest (items) and GetFrameRequest (frame_id).
INVALID_UTF8_IN_FIELD_2 = b"\x12\x02\xc3\x28"


def _deep_value(maps: int) -> metadata_pb2.MetadataValue:
    value = metadata_pb2.MetadataValue(string_value="x")
    for _ in range(maps):
        outer = metadata_pb2.MetadataValue()
        outer.map_value.fields["a"].CopyFrom(value)
        value = outer
    return value


async def _call(channel: aio.Channel, method: str, kind: str, data: bytes) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        if kind == "unary_unary":
            await channel.unary_unary(method)(data, timeout=30)
        elif kind == "unary_stream":
            async for _ in channel.unary_stream(method)(data, timeout=30):
                pass
        else:
            await channel.stream_unary(method)(iter([data]), timeout=30)
    return caught.value


RPCS = [
    ("metadata", METADATA + "GetFrame", "unary_unary"),
    ("metadata", METADATA + "CreateDataset", "unary_unary"),
    ("metadata", METADATA + "CountViewFrames", "unary_unary"),
    ("metadata", METADATA + "IterateFrames", "unary_stream"),
    ("blob", BLOB + "FindMissingBlobs", "unary_unary"),
    ("blob", BLOB + "GetDownloadUrl", "unary_unary"),
    ("blob", BLOB + "ReadBlob", "unary_stream"),
    ("blob", BLOB + "WriteBlob", "stream_unary"),
]


@pytest.mark.parametrize("bytes_name", list(UNDECODABLE))
@pytest.mark.parametrize(("service", "method", "kind"), RPCS)
async def test_undecodable_requests_are_invalid_argument_naming_a_field(
    metadata_channel: aio.Channel, blob_channel: aio.Channel, service: str, method: str, kind: str,
    bytes_name: str,
) -> None:
    channel = metadata_channel if service == "metadata" else blob_channel
    error = await _call(channel, method, kind, UNDECODABLE[bytes_name])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    fields = violated_fields(error)
    assert len(fields) == 1 and fields[0], fields
    assert "does not decode" in (error.details() or "")
    assert "<class" not in (error.details() or "")


def _field(data: bytes, message: type, name: str) -> bytes:
    """``data`` as the length-delimited field ``name`` of ``message``."""
    number = message.DESCRIPTOR.fields_by_name[name].number
    return _varint(number << 3 | 2) + _varint(len(data)) + data


async def test_the_field_that_does_not_decode_is_named(metadata_channel: aio.Channel, metadata_stub) -> None:
    error = await _call(metadata_channel, METADATA + "GetFrame", "unary_unary", INVALID_UTF8_IN_FIELD_2)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["frame_id"]
    assert "UTF-8" in (error.details() or "")

    # A view rule value nested 32 objects deep: past the decoder's limit.
    rule = _field(_field(_deep_value(32).SerializeToString(), view_pb2.MetadataRule, "equals")
                  + _field(b"k", view_pb2.MetadataRule, "key"), view_pb2.FilterRule, "meta")
    view = _field(_field(rule, view_pb2.ViewSelection, "rules"), view_pb2.View, "selections")
    data = _field(view, ms.CountViewFramesRequest, "view")
    with pytest.raises(DecodeError):
        ms.CountViewFramesRequest.FromString(data)
    error = await _call(metadata_channel, METADATA + "CountViewFrames", "unary_unary", data)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["view"]
    assert "nested deeper" in (error.details() or "")
    # The service still answers.
    assert (await metadata_stub.ListDatasets(ms.ListDatasetsRequest(page_size=1))) is not None


async def test_upload_fails_only_the_frames_that_do_not_decode(metadata_channel: aio.Channel,
                                                               metadata_stub) -> None:
    draft = await new_draft(metadata_stub)
    deep = image_frame("deep")
    # 32 object levels: a frame decodes, an upload message holding it does not.
    deep.meta.fields["k"].CopyFrom(_deep_value(32))
    # Built from parts: one message nesting the deep frame does not decode as a whole.
    deep_message = b"".join(
        ms.UploadFramesRequest(items=[ms.UploadItem(client_key=key, frame=frame)]).SerializeToString()
        for key, frame in (("good-1", image_frame("good-1")), ("deep", deep), ("good-2", image_frame("good-2"))))
    with pytest.raises(DecodeError):
        ms.UploadFramesRequest.FromString(deep_message)
    messages = [
        ms.UploadFramesRequest(options=ms.UploadOptions(version=by_id(draft.id))).SerializeToString(),
        deep_message,                     # results 0, 1, 2
        INVALID_UTF8_IN_FIELD_2,          # 3: one item that does not decode
        UNDECODABLE["truncated-tag"],     # 4: a message that does not decode at all
        ms.UploadFramesRequest(items=[ms.UploadItem(client_key="good-3", frame=image_frame("good-3"))]
                               ).SerializeToString(),  # 5
    ]
    call = metadata_channel.stream_stream(METADATA + "UploadFrames")(timeout=60)
    for message in messages:
        await call.write(message)
    await call.done_writing()
    responses = [ms.UploadFramesResponse.FromString(raw) async for raw in call]

    results = [r for response in responses if response.HasField("results") for r in response.results.results]
    assert [r.index for r in results] == list(range(6))
    assert [r.outcome for r in results] == [CREATED, FAILED, CREATED, FAILED, FAILED, CREATED]
    for result in results:
        if result.outcome == FAILED:
            assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert bad_fields(results[1].error)[0].startswith("frames[1].meta.k")
    assert bad_fields(results[3].error) == ["items[3]"]
    assert bad_fields(results[4].error) == ["items[4]"]
    summary = responses[-1].summary
    assert (summary.created, summary.failed) == (3, 3)
    for frame_id in ("good-1", "good-2", "good-3"):
        assert (await get_frame(metadata_stub, draft.id, frame_id)).id == frame_id

