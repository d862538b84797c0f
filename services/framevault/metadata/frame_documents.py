"""Frames as MongoDB documents, and back.

One document is one *revision* of a frame: the content a version wrote. The
layout (see STORAGE.md) keeps caller metadata as a native sub-document so
filters can address ``meta.<key>`` directly; keys were validated before they
get here. Documents are written by the frame codec (``framevault_codec``,
services/codec), which validates a frame and encodes its document in one
pass (``frames.validation``), and reads them back into frames
(``encoded_frame``): stored BSON in, Frame protobuf bytes out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import bson
import framevault_codec
from bson.raw_bson import RawBSONDocument

from framevault.v1 import frame_pb2

# A stable, uniformly spread non-negative int63 per frame id (the first 63
# bits of its SHA-256): random order and sharding are derived from it, so
# they need no state.
shuffle_key = framevault_codec.shuffle_key


# The fields of an EncodedRevision known without decoding it.
_KNOWN_FIELDS = frozenset(("frame_id", "etag", "dataset_id", "version_id"))


class EncodedRevision(RawBSONDocument):
    """A revision document as the frame codec encoded it, inserted as its
    bytes. The fields the write rules read are known without decoding it."""

    __slots__ = ("dataset_id", "etag", "frame_id", "version_id")

    def __init__(self, data: bytes, *, frame_id: str, etag: str, dataset_id: str, version_id: str):
        super().__init__(data)
        self.frame_id, self.etag, self.dataset_id, self.version_id = frame_id, etag, dataset_id, version_id

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key) if key in _KNOWN_FIELDS else super().__getitem__(key)

    def written_for(self, dataset_id: str, version_id: str) -> bool:
        """Whether the document is already that of ``version_id`` of ``dataset_id``."""
        return self.dataset_id == dataset_id and self.version_id == version_id

    def as_dict(self) -> dict[str, Any]:
        return bson.decode(self.raw)


def now_ms() -> int:
    """The ``saved`` time of a revision written now (epoch milliseconds)."""
    return time.time_ns() // 1_000_000


# (context_id, timestamp, frame_id): a revision's place in sequential order.
SequentialKey = tuple[str, int, str]


def sequential_key(document: dict[str, Any]) -> SequentialKey:
    return document["context_id"], int(document["timestamp"]), document["frame_id"]


class StoredRevision(RawBSONDocument):
    """A revision document as a cursor read it, kept as its BSON bytes (the
    document class of reads that send frames): its frame is encoded from those
    bytes by the frame codec (``encoded_frame``), and the fields that place a
    frame in sequential order are read from them without decoding the rest."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        index = _ORDER_FIELDS.get(key)
        if index is not None:
            value = framevault_codec.revision_keys(_bson_bytes(self))[index]
            if value is not None:
                return value
        return super().__getitem__(key)


# The members of framevault_codec.revision_keys.
_ORDER_FIELDS = {"frame_id": 0, "context_id": 1, "timestamp": 2}


def encoded_frame(doc: Mapping[str, Any], *, version_id: str) -> bytes:
    """The frame of a stored revision document as read in ``version_id``
    (which may have inherited it), as Frame protobuf bytes: what a response
    carries, without building the frame in Python. ``doc`` is best read as
    its BSON (``StoredRevision``, any RawBSONDocument); a decoded document is
    encoded again first."""
    raw = _bson_bytes(doc) if isinstance(doc, RawBSONDocument) else bson.encode(doc)
    return framevault_codec.frame_from_document(raw, version_id)


def _bson_bytes(doc: RawBSONDocument) -> bytes:
    # A cursor hands some documents over as views into its reply.
    raw = doc.raw
    return raw if type(raw) is bytes else bytes(raw)


def document_to_frame(doc: Mapping[str, Any], *, version_id: str) -> frame_pb2.Frame:
    """The frame as read in ``version_id`` (which may have inherited it)."""
    return frame_pb2.Frame.FromString(encoded_frame(doc, version_id=version_id))
