"""Annotation geometry: what shapes an ROI may have, how loose user input becomes a
shape, and how a shape is written to and read from the ``framevault.v1.Roi`` message.

Everything here works on plain values and proto messages; the annotation model
(:mod:`framevault.sdk.frames`) builds on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeAlias

from framevault.v1 import frame_pb2

Number: TypeAlias = float | int
Keypoint: TypeAlias = tuple[float, float] | tuple[float, float, int]

# The annotation attributes that hold a geometry, in the order they are looked at.
GEOMETRY_FIELDS = ("box2d_xywh", "poly2d_xy", "ellipse2d_xyrrt", "keypoints", "keypoints_3d", "box3d")
BOX3D_FIELDS = ("x", "y", "z", "size_x", "size_y", "size_z", "qw", "qx", "qy", "qz")
# The annotation geometry attribute of each member of the Roi's ``geometry`` oneof.
GEOMETRY_OF_ONEOF = {"box": "box2d_xywh", "polygon": "poly2d_xy", "ellipse": "ellipse2d_xyrrt",
                     "keypoints": "keypoints", "keypoints_3d": "keypoints_3d", "box_3d": "box3d"}


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite_numbers(values: Sequence[Any], count: int, name: str) -> tuple[float, ...]:
    """Exactly ``count`` finite numbers as floats.

    Raises:
        ValueError: another count, or a NaN or infinity.
    """
    out = tuple(float(v) for v in values)
    if len(out) != count or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} needs {count} finite numbers, got {list(values)!r}")
    return out


def flatten_points(points: Sequence[Any], dims: int, name: str) -> list[float]:
    """Points given flat or as ``dims``-tuples, as one flat coordinate list."""
    flat: list[float] = []
    for item in points:
        if is_number(item):
            flat.append(float(item))
        else:
            coords = list(item)
            if len(coords) != dims:
                raise ValueError(f"{name}: every point needs {dims} coordinates, got {coords!r}")
            flat.extend(float(c) for c in coords)
    if len(flat) % dims:
        raise ValueError(f"{name}: the number of coordinates must be a multiple of {dims}")
    return flat


def normalize_polygon(value: Sequence[Any]) -> list[list[float]]:
    """Polygon parts as flat ``[x1, y1, x2, y2, ...]`` lists.

    Accepts one flat list (one part), a list of ``(x, y)`` points (one part),
    a list of flat lists (several parts) or a list of point lists (several
    parts).

    Raises:
        ValueError: a part with fewer than 3 points or an odd coordinate count.
    """
    items = list(value)
    if not items:
        raise ValueError("poly2d_xy must not be empty")
    if is_number(items[0]):
        parts = [items]
    elif all(not is_number(i) and len(i) == 2 and all(is_number(c) for c in i) for i in items):
        parts = [[c for point in items for c in point]]
    else:
        parts = [
            [c for point in part for c in point] if part and not is_number(list(part)[0]) else list(part)
            for part in items
        ]
    out = []
    for index, part in enumerate(parts):
        coords = [float(c) for c in part]
        if len(coords) < 6 or len(coords) % 2:
            raise ValueError(f"poly2d_xy part {index} needs an even number (>= 6) of coordinates")
        out.append(coords)
    return out


def normalize_keypoints(value: Sequence[Any]) -> list[Keypoint]:
    """2D keypoints as ``(x, y)`` or ``(x, y, visibility)`` tuples (all of one form).

    A flat ``[x1, y1, x2, y2, ...]`` list is accepted too.
    """
    items = list(value)
    if items and is_number(items[0]):
        flat = flatten_points(items, 2, "keypoints")
        return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
    points: list[Keypoint] = []
    widths = {len(list(p)) for p in items}
    if not widths <= {2} and not widths <= {3}:
        raise ValueError("keypoints must all be (x, y) or all be (x, y, visibility)")
    for p in items:
        c = list(p)
        points.append((float(c[0]), float(c[1]), int(c[2])) if len(c) == 3 else (float(c[0]), float(c[1])))
    return points


def normalize_keypoints_3d(value: Sequence[Any]) -> list[tuple[float, float, float]]:
    """3D keypoints as ``(x, y, z)`` tuples; a flat list is accepted too."""
    flat = flatten_points(value, 3, "keypoints_3d")
    return [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]


def normalize_box3d(value: Sequence[Number]) -> tuple[float, ...]:
    """A 3D box as ``(x, y, z, size_x, size_y, size_z, qw, qx, qy, qz)``; six values get the identity rotation."""
    values = list(value)
    if len(values) == 6:
        values += [1.0, 0.0, 0.0, 0.0]
    return finite_numbers(values, 10, "box3d")


def geometry_fields(kind: str, value: Any) -> dict[str, Any]:
    """The ``framevault.v1.Roi`` constructor argument of an annotation's geometry attribute ``kind``
    (one of GEOMETRY_FIELDS): ``{roi field: message as a dict}``. A Roi built from nested dicts in one
    constructor call costs a fraction of building its messages one by one."""
    if kind == "box2d_xywh":
        x, y, w, h = value
        return {"box": {"x": x, "y": y, "w": w, "h": h}}
    if kind == "poly2d_xy":
        return {"polygon": {"parts": [{"xy": part} for part in value]}}
    if kind == "ellipse2d_xyrrt":
        cx, cy, rx, ry, theta = value
        return {"ellipse": {"cx": cx, "cy": cy, "rx": rx, "ry": ry, "theta": theta}}
    if kind == "keypoints":
        points: dict[str, Any] = {"xy": [c for point in value for c in point[:2]]}
        if value and len(value[0]) == 3:
            points["visibility"] = [int(point[2]) for point in value]
        return {"keypoints": points}
    if kind == "keypoints_3d":
        return {"keypoints_3d": {"xyz": [c for point in value for c in point]}}
    if kind == "box3d":
        return {"box_3d": dict(zip(BOX3D_FIELDS, value, strict=True))}
    raise ValueError(f"not a geometry attribute: {kind!r}")


def write_geometry(roi: frame_pb2.Roi, kind: str, value: Any) -> None:
    """Sets the geometry of ``roi`` from an annotation's geometry attribute ``kind`` (one of GEOMETRY_FIELDS)."""
    roi.MergeFrom(frame_pb2.Roi(**geometry_fields(kind, value)))


def read_geometry(roi: frame_pb2.Roi) -> tuple[str, Any] | None:
    """The annotation geometry attribute and value of ``roi``'s geometry, or None when it has none."""
    # Repeated proto fields are read by slicing ([:] gives a list), several times faster than list().
    kind = roi.WhichOneof("geometry")
    if kind == "box":
        box = roi.box
        return "box2d_xywh", (box.x, box.y, box.w, box.h)
    if kind == "polygon":
        return "poly2d_xy", [part.xy[:] for part in roi.polygon.parts]
    if kind == "ellipse":
        e = roi.ellipse
        return "ellipse2d_xyrrt", (e.cx, e.cy, e.rx, e.ry, e.theta)
    if kind == "keypoints":
        xy = roi.keypoints.xy[:]
        pairs = [(xy[i], xy[i + 1]) for i in range(0, len(xy) - 1, 2)]
        visibility = roi.keypoints.visibility[:]
        if visibility and len(visibility) == len(pairs):
            return "keypoints", [(x, y, v) for (x, y), v in zip(pairs, visibility, strict=True)]
        return "keypoints", pairs
    if kind == "keypoints_3d":
        xyz = roi.keypoints_3d.xyz[:]
        return "keypoints_3d", [(xyz[i], xyz[i + 1], xyz[i + 2]) for i in range(0, len(xyz) - 2, 3)]
    if kind == "box_3d":
        box_3d = roi.box_3d
        return "box3d", tuple(getattr(box_3d, name) for name in BOX3D_FIELDS)
    return None
