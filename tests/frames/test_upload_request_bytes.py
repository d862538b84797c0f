"""UploadFrames requests taken apart from their bytes by the frame codec.

The service no longer lets gRPC decode an UploadFramesRequest into messages:
``ReceivedUploadRequest`` hands the bytes to the codec. Every answer must be
the one the request decoded by the protobuf runtime gets: the reference here
is that path (runtime decoding, ``split_repeated``, ``check_frame`` of each
frame), compared on well-formed and on broken bytes; and over a real stream,
raw bytes get INVALID_ARGUMENT naming ``frames[i]...`` or ``items[i]`` with
stream-wide indexes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf.internal.encoder import _VarintBytes  # type: ignore[attr-defined]

from framevault.common.config import Settings
from framevault.common.errors import FieldViolation, InvalidArgument
from framevault.common.request_decoding import UndecodableRequest, split_repeated, tolerant
from framevault.metadata.frames.upload import (
    FAILED,
    UNCHANGED,
    ReceivedUploadRequest,
    _BatchWriter,
    _Intake,
    _results_response,
    _Segment,
)
from framevault.metadata.frames.validation import (
    MAX_CLIENT_KEY_BYTES,
    FrameLimits,
    check_frame,
    text_problem,
    upload_results_response,
)
from framevault.v1 import frame_pb2, metadata_pb2
from framevault.v1 import metadata_service_pb2 as ms

from .helpers import CREATED, bad_fields, by_id, code_of, image_frame, new_draft, unique

LIMITS = FrameLimits.from_settings(Settings())


def _field(number: int, wire_type: int, payload: bytes | int) -> bytes:
    tag = _VarintBytes(number << 3 | wire_type)
    if wire_type == 0:
        assert isinstance(payload, int)
        return tag + _VarintBytes(payload)
    assert isinstance(payload, bytes)
    return tag + (_VarintBytes(len(payload)) + payload if wire_type == 2 else payload)


def _item(frame: bytes, client_key: bytes = b"") -> bytes:
    """An UploadItem's bytes (field 2 of the request) around ``frame``."""
    body = (_field(1, 2, client_key) if client_key else b"") + _field(2, 2, frame)
    return _field(2, 2, body)


def _options(version_id: str = "v") -> bytes:
    return ms.UploadFramesRequest(options=ms.UploadOptions(version=by_id(version_id))).SerializeToString()


def _frame(index: int, **changes: Any) -> frame_pb2.Frame:
    frame = image_frame(f"f{index}")
    frame.rois.extend([frame_pb2.Roi(labels=["a"], box=frame_pb2.Box2D(w=1, h=1)) for _ in range(3)])
    for name, value in changes.items():
        setattr(frame, name, value)
    return frame


def _deep_list(levels: int) -> bytes:
    """A frame whose metadata nests lists ``levels`` deep (built as bytes: the
    runtime refuses to build messages deeper than it decodes)."""
    value = metadata_pb2.MetadataValue(int_value=1).SerializeToString()
    for _ in range(levels):
        value = _field(6, 2, _field(1, 2, value))  # list_value { values: [value] }
    entry = _field(1, 2, b"deep") + _field(2, 2, value)
    return _frame(0).SerializeToString() + _field(6, 2, _field(1, 2, entry))  # meta { fields { deep: value } }


def _bad_label(index: int, roi: int) -> bytes:
    frame = _frame(index)
    frame.rois[roi].labels[0] = ""
    return frame.SerializeToString()


_VALID = b"".join(_item(_frame(i).SerializeToString(), f"k{i}".encode()) for i in range(3))

CASES: dict[str, bytes] = {
    "valid frames": _options() + _VALID,
    "no options": _VALID,
    "options after the items": _VALID + _options(),
    "a violation deep in frame 17": b"".join(
        _item(_bad_label(i, 2) if i == 17 else _frame(i).SerializeToString()) for i in range(20)),
    "several violations and a bad client key": _item(
        _frame(0, id="", timestamp=-1).SerializeToString() + _field(4, 2, b""), b"k\x00"),
    "client key too long": _item(_frame(0).SerializeToString(), b"k" * (MAX_CLIENT_KEY_BYTES + 1)),
    "an item without a frame": _field(2, 2, _field(1, 2, b"key")),
    "an empty item": _field(2, 2, b""),
    "a frame sent in two parts": _field(2, 2, _field(2, 2, _frame(0).SerializeToString())
                                        + _field(2, 2, _field(3, 0, 7))),
    "a frame field with another wire type": _VALID + _item(_frame(3).SerializeToString() + _field(3, 2, b"xy")),
    "a client key with another wire type": _field(2, 2, _field(1, 0, 5) + _field(2, 2, _frame(0).SerializeToString())),
    "a frame id that is not UTF-8": _VALID + _item(_frame(3).SerializeToString() + _field(1, 2, b"\xff\xfe")),
    "a client key that is not UTF-8": _VALID + _item(_frame(3).SerializeToString(), b"\xff"),
    "an item cut short": _VALID + _field(2, 2, _field(2, 2, _frame(3).SerializeToString())[:-5]),
    "a request cut short": (_options() + _VALID)[:-7],
    "options that are not UTF-8": _field(1, 2, _field(1, 2, _field(1, 2, b"\xff"))) + _VALID,
    "an unknown field": _VALID + _field(9, 0, 1) + _field(10, 2, b"zz"),
    "a group": _VALID + bytes([5 << 3 | 3, 5 << 3 | 4]),
    "a ten-byte varint with high bits": _VALID + _item(
        _frame(3).SerializeToString() + bytes([3 << 3]) + b"\xff" * 9 + b"\x7f"),
    **{f"metadata nested {levels} levels": _item(_deep_list(levels))
       for levels in (19, 20, 45, 46, 47, 48, 49, 50, 51, 98, 99, 100, 101)},
}


def _pendings(received: ReceivedUploadRequest, first_index: int = 0) -> list[Any]:
    """The request's frames as an upload batch takes them, the first being frame ``first_index`` of the stream."""
    return _BatchWriter.pendings(_Segment(received.items, 0, len(received.items), first_index, 1))


def _outcome(pending: Any) -> tuple[Any, ...]:
    document = None if pending.resolved else pending.items.documents([pending.position], "d", "v", 1)[0]
    error = pending.error.to_status().SerializeToString() if pending.error else None
    return pending.frame_id, pending.outcome, error, document


def _reference(data: bytes) -> tuple[Any, list[tuple[Any, ...]], Any]:
    """What the service answered when gRPC decoded the request into messages."""
    request = tolerant(ms.UploadFramesRequest.FromString)(data)
    header, elements, _ = split_repeated(request, "items")
    outcomes = []
    for index, element in enumerate(elements):
        if isinstance(element, UndecodableRequest):
            error = element.error(f"items[{index}]").to_status().SerializeToString()
            outcomes.append(("", FAILED, error, None))
            continue
        check = check_frame(element.frame, f"frames[{index}]", LIMITS)
        violations = list(check.violations)
        key_problem = text_problem(element.client_key, MAX_CLIENT_KEY_BYTES, required=False)
        if key_problem:
            violations.append(FieldViolation(f"items[{index}].client_key", key_problem))
        if violations:
            outcomes.append((check.frame_id, FAILED, InvalidArgument(violations).to_status().SerializeToString(),
                             None))
            continue
        assert check.prepared is not None
        document = check.prepared.document(dataset_id="d", version_id="v", saved_ms=1).raw
        outcomes.append((check.frame_id, 0, None, document))
    without_items = ms.UploadFramesRequest()
    without_items.CopyFrom(header)
    without_items.ClearField("items")
    return without_items, outcomes, None if isinstance(request, UndecodableRequest) else without_items


@pytest.mark.parametrize("case", CASES)
def test_a_request_taken_apart_by_the_codec_is_answered_as_the_decoded_request(case: str):
    data = CASES[case]
    received = ReceivedUploadRequest(data, LIMITS)
    outcomes = [_outcome(pending) for pending in _pendings(received)]
    header, expected, decoded_header = _reference(data)
    assert received.header == header
    assert received.decoded_header == decoded_header
    assert outcomes == expected


def test_violation_paths_carry_the_stream_index_of_the_frame():
    received = ReceivedUploadRequest(CASES["a violation deep in frame 17"], LIMITS)
    pending = _pendings(received, first_index=100)[17]
    assert pending.outcome == FAILED
    assert [v.field for v in pending.error.violations] == ["frames[117].rois[2].labels[0]"]


def test_the_codec_takes_items_apart_without_decoding_them_as_messages():
    # A frame with a field of another wire type is refused by the codec's
    # decoder: the item is handed back as its bytes, for the runtime to decide.
    received = ReceivedUploadRequest(CASES["a frame field with another wire type"], LIMITS)
    items = received.items
    assert [items.check(position).checked is not None for position in range(4)] == [True, True, True, False]
    assert items.check(3).frame_problem
    assert items.ready == [True, True, True, False]


def test_results_are_encoded_as_the_protobuf_runtime_encodes_them():
    status = InvalidArgument([FieldViolation("frames[1].id", "required")]).to_status()
    expected = ms.UploadFramesResponse()
    results = expected.results.results
    results.add(index=0, frame_id="a", outcome=CREATED, attempts=1)
    results.add(index=1, client_key="k1", outcome=FAILED, attempts=1).error.CopyFrom(status)
    results.add(index=2**40, client_key="ключ", frame_id="é", outcome=UNCHANGED, attempts=3)
    encoded = upload_results_response([0, 1, 2**40], ["", "k1", "ключ"], ["a", "", "é"], [CREATED, FAILED, UNCHANGED],
                                      [1, 1, 3], [None, status.SerializeToString(), None])
    assert encoded == expected.SerializeToString()
    # A batch of frames the codec refused, answered from their pendings.
    pendings = _pendings(ReceivedUploadRequest(CASES["several violations and a bad client key"], LIMITS), 7)
    expected = ms.UploadFramesResponse()
    assert pendings[0].frame_id  # derived from the source URI
    expected.results.results.add(index=7, frame_id=pendings[0].frame_id, outcome=FAILED, attempts=1,
                                 client_key="k\x00").error.CopyFrom(pendings[0].error.to_status())
    assert _results_response(pendings) == expected.SerializeToString()
    assert upload_results_response([], [], [], [], [], []) == ms.UploadFramesResponse(
        results=ms.UploadResults()).SerializeToString()


async def test_a_batch_takes_part_of_a_request_and_the_next_batch_the_rest():
    data = b"".join(_item(_frame(i).SerializeToString()) for i in range(5))

    async def later_requests() -> AsyncIterator[ReceivedUploadRequest]:
        for _ in range(2):
            yield ReceivedUploadRequest(data, LIMITS)

    intake = _Intake(later_requests(), window=10, byte_budget=1 << 30)
    await intake.read(ReceivedUploadRequest(_options(), LIMITS))  # everything arrived before the first batch
    batches = []
    while (batch := await intake.next_batch(3)) is not None:
        batches.append([[(p.index, p.frame_id) for p in _BatchWriter.pendings(segment)] for segment in batch])
        intake.answered(batch)
    assert batches == [
        [[(0, "f0"), (1, "f1"), (2, "f2")]],
        [[(3, "f3"), (4, "f4")], [(5, "f0")]],
        [[(6, "f1"), (7, "f2"), (8, "f3")]],
        [[(9, "f4")]],
    ]


async def _raw_upload(metadata_channel: Any, requests: list[bytes]) -> list[ms.FrameResult]:
    call = metadata_channel.stream_stream(
        "/framevault.v1.MetadataService/UploadFrames",
        request_serializer=lambda data: data, response_deserializer=ms.UploadFramesResponse.FromString)()
    for request in requests:
        await call.write(request)
    await call.done_writing()
    results: list[ms.FrameResult] = []
    async for response in call:
        results.extend(response.results.results)
    return results


@pytest.mark.usefixtures("frames_db")
async def test_raw_request_bytes_get_field_paths_with_stream_indexes(metadata_stub, metadata_channel):
    draft = await new_draft(metadata_stub)
    prefix = unique("raw")

    def good(i: int) -> bytes:
        return _item(image_frame(f"{prefix}-{i}").SerializeToString(), f"k{i}".encode())

    def bad_label(i: int) -> bytes:
        frame = image_frame(f"{prefix}-{i}")
        frame.rois.extend([frame_pb2.Roi(labels=["a"], box=frame_pb2.Box2D(w=1, h=1)) for _ in range(2)])
        frame.rois[2].labels[0] = ""
        return _item(frame.SerializeToString(), f"k{i}".encode())

    first = b"".join(
        bad_label(i) if i == 17 else
        _item(image_frame(f"{prefix}-{i}").SerializeToString() + _field(3, 2, b"xy")) if i == 3 else
        _item(image_frame(f"{prefix}-{i}").SerializeToString(), b"\xff") if i == 5 else
        good(i) for i in range(20))
    second = good(20) + bad_label(21) + _field(2, 2, b"\x0a")  # the last item is cut short
    results = await _raw_upload(metadata_channel, [_options(draft.id), first, second])

    assert [r.index for r in results] == list(range(23))
    failed = {r.index: (code_of(r.error).name, bad_fields(r.error)) for r in results if r.outcome == FAILED}
    assert failed == {
        3: ("INVALID_ARGUMENT", ["frames[3]"]),
        5: ("INVALID_ARGUMENT", ["items[5]"]),
        17: ("INVALID_ARGUMENT", ["frames[17].rois[2].labels[0]"]),
        21: ("INVALID_ARGUMENT", ["frames[21].rois[2].labels[0]"]),
        22: ("INVALID_ARGUMENT", ["items[22]"]),
    }
    assert "does not decode as framevault.v1.Frame" in results[3].error.message
    assert {r.outcome for r in results if r.index not in failed} == {CREATED}
    assert results[20].frame_id == f"{prefix}-20" and results[20].client_key == "k20"
