"""The read direction of the frame codec: ``frame_from_document`` gives, for
every stored revision document, the Frame the Python decoding gave
(``reference_decoding``), compared by deterministic encoding (map order and
the bits of every float, negative zero and NaN included): documents of any
frame as the codec stores it, hand-written documents of earlier layouts, and
documents read back from MongoDB."""

from __future__ import annotations

from typing import Any

import bson
import framevault_codec
import pytest
from bson import Int64
from bson.raw_bson import RawBSONDocument
from fuzz.strategies import MessageStrategies, Pools
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support import frame_to_document

from framevault.metadata.db import Database
from framevault.v1 import frame_pb2, metadata_pb2

from .reference_decoding import reference_frame
from .test_frame_codec import REALISTIC_DOCUMENT, realistic_frame

FRAMES = MessageStrategies(Pools([b"inline bytes"], st.just(""))).message(frame_pb2.Frame.DESCRIPTOR)


def decoded(document: bytes, version_id: str) -> bytes:
    frame = frame_pb2.Frame.FromString(framevault_codec.frame_from_document(document, version_id))
    return frame.SerializeToString(deterministic=True)


def expected(document: bytes, version_id: str) -> bytes:
    return reference_frame(bson.decode(document), version_id=version_id).SerializeToString(deterministic=True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(FRAMES, st.sampled_from(["v1", "v-child", ""]))
def test_any_frame_as_stored_decodes_as_the_python_decoding_did(frame: frame_pb2.Frame, version_id: str):
    try:
        document = framevault_codec.encode_document(frame.SerializeToString(), "ds", "v1", 1_700_000_000_000)
    except ValueError:
        assume(False)  # nested past the protobuf decoder's limit: never stored
        raise
    # A metadata key with NUL is refused on upload (it cannot be a BSON key): never stored.
    assume(not any(_nul_keys(meta) for meta in [frame.meta, *(s.meta for s in frame.sources),
                                                 *(r.meta for r in frame.rois)]))
    assert decoded(document, version_id) == expected(document, version_id)


def _nul_keys(meta: metadata_pb2.Metadata) -> bool:
    for key, value in meta.fields.items():
        if "\x00" in key or _nul_keys_in(value):
            return True
    return False


def _nul_keys_in(value: metadata_pb2.MetadataValue) -> bool:
    kind = value.WhichOneof("kind")
    if kind == "map_value":
        return _nul_keys(value.map_value)
    if kind == "list_value":
        return any(_nul_keys_in(item) for item in value.list_value.values)
    return False


# Documents as earlier services wrote them, and the edges of each field: every
# optional part missing, empty or null, int32 where int64 is written now, ints
# in geometry, fields the frame does not carry.
EARLIER_DOCUMENTS: list[dict[str, Any]] = [
    {},
    {"_id": bson.ObjectId(), "dataset_id": "ds", "version_id": "v0", "frame_id": "f", "context_id": "c",
     "timestamp": 5, "sources": [{"uri": "s3://b/k"}]},
    {"frame_id": "f", "timestamp": Int64(2**62), "saved": 7, "num_frames": Int64(3), "etag": ""},
    {"frame_id": "f", "timestamp": -1, "sources": [], "rois": [], "meta": {}, "blob": b""},
    {"frame_id": "f", "sources": None, "rois": None, "meta": None, "blob": None, "etag": None, "saved": None},
    {"frame_id": "f", "shuffle_key": Int64(12), "unknown_later_field": {"x": [1, 2]}},
    {"frame_id": "é/ünïcode ✓", "context_id": "ctx\u0000nul", "blob": bson.Binary(b"\x00\xff", 0)},
    {"sources": [{}, {"id": "", "uri": "", "width": 0, "height": -3, "timestamp": Int64(-(2**63))},
                 {"meta": {}}, {"meta": None}, {"preview": {}}, {"preview": None},
                 {"preview": {"uri": "u", "content_type": "image/png", "timestamp": 3, "inline_content": b"p"}},
                 {"masks": []}, {"masks": [{}, {"id": "m"}, {"uri": "u", "timestamp": Int64(9)}]},
                 {"inline_content": b"raw", "content_type": "text/plain"},
                 {"meta": {"a": {"b": {"c": [1, [2, [3, {}]]]}}, "": "empty key", "$x.y": None}}]},
    {"rois": [{}, {"labels": []}, {"labels": ["", "a"], "id": "r", "confidence": 0.0},
              {"confidence": 1e-50}, {"confidence": 3.4e38}, {"confidence": None},
              {"polygon": []}, {"polygon": [[], [1, 2, 3], [0.5, Int64(4)]]},
              {"box": [1, 2, 3, 4]}, {"box": [-0.0, 0.0, float("nan"), float("inf")]},
              {"ellipse": [1.0, 2.0, 3.0, 4.0, -5.5]},
              {"keypoints": []}, {"keypoints": [1.0, 2.0], "visibility": [0, 1, -2]},
              {"keypoints": [1.0], "visibility": None}, {"keypoints_3d": [1, 2, 3.25]},
              {"box_3d": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]},
              {"box": [1, 2, 3, 4], "polygon": [[1, 2]]},  # two geometries: the first looked for wins
              {"visibility": [1]},  # visibility without keypoints is no geometry
              {"sources": ["a", ""], "meta": {"k": 1}}, {"meta": {}},
              {"mask": {"id": "", "value": []}}, {"mask": {"id": "m", "value": [1, -1, 2**31 - 1]}},
              {"label_ids": [1, 2]}]},  # label ids are never stored, and not read back
    {"meta": {"null": None, "t": True, "f": False, "i": 0, "neg": -(2**31), "i64": Int64(-(2**63)),
              "big": Int64(2**63 - 1), "d": -0.0, "nan": float("nan"), "inf": float("-inf"), "s": "",
              "list": [], "map": {}, "nested": {"l": [None, True, 1.5, "x", [[]], {"k": {}}]}}},
]


@pytest.mark.parametrize("document", EARLIER_DOCUMENTS, ids=range(len(EARLIER_DOCUMENTS)))
@pytest.mark.parametrize("version_id", ["v1", ""])
def test_documents_of_earlier_layouts_decode_as_the_python_decoding_did(document: dict[str, Any], version_id: str):
    raw = bson.encode(document)
    assert decoded(raw, version_id) == expected(raw, version_id)


def test_the_realistic_document_decodes_to_its_frame_with_the_fields_the_service_sets():
    frame = frame_pb2.Frame.FromString(framevault_codec.frame_from_document(bson.encode(REALISTIC_DOCUMENT), "v2"))
    written = realistic_frame()
    for roi in written.rois:
        roi.ClearField("label_ids")  # output only: never stored
    written.num_frames, written.etag, written.saved = 1, REALISTIC_DOCUMENT["etag"], 1_700_000_000_000
    written.dataset_id, written.version_id, written.saved_in_version = "ds", "v2", "v1"
    assert frame.SerializeToString(deterministic=True) == written.SerializeToString(deterministic=True)


@pytest.mark.parametrize("document", [
    b"", b"\x05\x00\x00\x00", b"\x06\x00\x00\x00\x00\x00",
    bson.encode({"frame_id": 5}), bson.encode({"timestamp": 1.5}), bson.encode({"num_frames": Int64(2**40)}),
    bson.encode({"sources": [{"colour": "red"}]}), bson.encode({"sources": [{"preview": {"id": "p"}}]}),
    bson.encode({"rois": [{"box": [1, 2, 3]}]}), bson.encode({"rois": [{"mask": {"id": "m"}}]}),
    bson.encode({"meta": {"when": bson.ObjectId()}}), bson.encode({"blob": "text"}),
])
def test_documents_that_are_no_revision_are_refused(document: bytes):
    with pytest.raises(ValueError):
        framevault_codec.frame_from_document(document, "v1")


async def test_documents_read_back_from_mongodb_decode_as_the_python_decoding_did(frames_db: Database):
    documents = [frame_to_document(realistic_frame(), dataset_id="ds", version_id="v1", saved_ms=5), *EARLIER_DOCUMENTS]
    collection = frames_db.db.get_collection("frame_decoding_check")
    await collection.drop()
    try:
        await collection.insert_many([dict(d) for d in documents])
        raw = collection.with_options(codec_options=collection.codec_options.with_options(
            document_class=RawBSONDocument))
        stored = await raw.find({}, sort=[("_id", 1)]).to_list(length=None)
        assert len(stored) == len(documents)
        for document in stored:
            assert decoded(document.raw, "v9") == expected(document.raw, "v9")
    finally:
        await collection.drop()
