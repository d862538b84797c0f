"""The realistic frames every row measures, and the sizes the flags accept.

A frame here is what an annotated driving dataset looks like: one camera
source with a preview and a semantic mask, four ROIs (8-point polygons with
two labels and a confidence each) and five metadata keys. As a MongoDB
document (``frame_document``) it weighs about 1.4 KB.

Frames are a pure function of ``(prefix, index)``, so a client process and
the raw baseline build exactly the same content without passing data around.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import bson
import framevault_codec

from framevault.v1 import frame_pb2, metadata_pb2

# Frames per context (one video clip): 10 s at 30 fps.
FRAMES_PER_CONTEXT = 300
FRAME_INTERVAL_MS = 33
ROIS_PER_FRAME = 4
POLYGON_POINTS = 8

_LABELS = ("car", "pedestrian", "truck", "cyclist", "bus", "traffic_light", "sign", "van")
_ATTRIBUTES = ("occluded", "truncated", "moving", "parked")
_CITIES = ("bremen", "hamburg", "berlin", "munich", "cologne")
_WEATHER = ("clear", "rain", "fog", "snow")


def frame_id(prefix: str, index: int) -> str:
    return f"{prefix}-{index:08d}"


def _value(**kind: Any) -> metadata_pb2.MetadataValue:
    return metadata_pb2.MetadataValue(**kind)


def make_frame(prefix: str, index: int, revision: int = 0) -> frame_pb2.Frame:
    """Frame number ``index`` of a dataset whose ids start with ``prefix``.

    A later ``revision`` of the same frame has the same id and shape and a
    different speed in its metadata.
    """
    clip, position = divmod(index, FRAMES_PER_CONTEXT)
    stem = f"s3://drives/{prefix}/c{clip:05d}/{position:04d}"
    timestamp = position * FRAME_INTERVAL_MS
    source = frame_pb2.Source(
        id="default",
        uri=f"{stem}.jpg",
        content_type="image/jpeg",
        width=1920,
        height=1080,
        timestamp=timestamp,
        preview=frame_pb2.Preview(uri=f"{stem}_p.jpg", content_type="image/jpeg"),
        masks=[frame_pb2.Mask(id="semantic", uri=f"{stem}_m.png", content_type="image/png")],
    )
    rois = []
    for n in range(ROIS_PER_FRAME):
        seed = index * ROIS_PER_FRAME + n
        x0, y0 = float(seed * 37 % 1700), float(seed * 53 % 900)
        ring = []
        for p in range(POLYGON_POINTS):
            ring += [x0 + (p * 13 % 120) + 0.25, y0 + (p * 29 % 90) + 0.5]
        rois.append(frame_pb2.Roi(
            labels=[_LABELS[seed % len(_LABELS)], _ATTRIBUTES[seed % len(_ATTRIBUTES)]],
            confidence=0.5 + (seed % 50) / 100,
            polygon=frame_pb2.Polygon2D(parts=[frame_pb2.PolygonPart(xy=ring)]),
        ))
    meta = metadata_pb2.Metadata(fields={
        "city": _value(string_value=_CITIES[clip % len(_CITIES)]),
        "weather": _value(string_value=_WEATHER[clip % len(_WEATHER)]),
        "frame_index": _value(int_value=index),
        "speed_kmh": _value(double_value=30.0 + index % 70 / 3 + revision),
        "daytime": _value(bool_value=clip % 3 != 0),
    })
    return frame_pb2.Frame(
        id=frame_id(prefix, index),
        context_id=f"{prefix}/c{clip:05d}",
        timestamp=timestamp,
        sources=[source],
        rois=rois,
        meta=meta,
    )


def frames(prefix: str, count: int, start: int = 0, revision: int = 0) -> Iterator[frame_pb2.Frame]:
    for index in range(start, start + count):
        yield make_frame(prefix, index, revision)


def frame_document(frame: frame_pb2.Frame, *, dataset_id: str, version_id: str) -> dict[str, Any]:
    """Exactly the revision document the metadata service stores for ``frame`` (its frame codec
    encodes it), for seeding the raw baselines."""
    return bson.decode(framevault_codec.encode_document(frame.SerializeToString(), dataset_id, version_id,
                                                        1_764_000_000_000))


def document_bytes(frame: frame_pb2.Frame) -> int:
    """Size of the frame as a stored MongoDB document (with its ObjectId)."""
    doc = frame_document(frame, dataset_id="0" * 24, version_id="0" * 24)
    doc["_id"] = bson.ObjectId()
    return len(bson.encode(doc))


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)
_COUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")


def parse_bytes(text: str) -> int:
    """``1MiB``, ``64MiB``, ``1GiB``, ``512KiB``, ``1048576`` -> bytes (binary units)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 1MiB, 64MiB, 1GiB)")
    number, unit = float(match.group(1)), match.group(2).upper()
    return int(number * 1024 ** " KMGT".index(unit or " "))


def parse_count(text: str) -> int:
    """``10000``, ``10k``, ``1M`` -> a count (decimal units)."""
    match = _COUNT.match(text)
    if not match:
        raise ValueError(f"not a count: {text!r} (use e.g. 10000, 100k, 1M)")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * {"": 1, "k": 1_000, "m": 1_000_000}[unit])


def format_bytes(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"


def format_count(count: int) -> str:
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}M"
    if count >= 1_000 and count % 1_000 == 0:
        return f"{count // 1_000}k"
    return str(count)
