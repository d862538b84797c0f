"""Checks caller metadata before it is stored.

Keys are checked against what MongoDB would treat specially, so stored
metadata can never act as an operator or a path. Conversion between the
proto form and Python values is ``framevault.api.metadata_values``.
"""

from __future__ import annotations

import math

from framevault.api.metadata_values import MAX_DEPTH
from framevault.common.errors import FieldErrors
from framevault.v1 import metadata_pb2

MAX_KEY_BYTES = 256


def key_problem(key: str) -> str | None:
    """Why ``key`` may not be stored, or None when it is fine."""
    if not key:
        return "keys must not be empty"
    if len(key.encode()) > MAX_KEY_BYTES:
        return f"keys must be at most {MAX_KEY_BYTES} bytes"
    if "$" in key:
        return "keys must not contain '$'"
    if "." in key:
        return "keys must not contain '.'"
    if "\x00" in key:
        return "keys must not contain NUL"
    return None


def validate_metadata(meta: metadata_pb2.Metadata, field: str, errors: FieldErrors) -> None:
    """Adds the problems of ``meta`` (the metadata at ``field``) to ``errors``:
    keys, value kinds, finite numbers, nesting depth (MAX_DEPTH)."""
    _validate_members(meta, field, errors, 1)


def _validate_members(meta: metadata_pb2.Metadata, field: str, errors: FieldErrors, depth: int) -> None:
    for key, value in meta.fields.items():
        problem = key_problem(key)
        if problem:
            errors.add(f"{field}.{key}" if key else field, problem)
            continue
        _validate_value(value, f"{field}.{key}", errors, depth)


def _validate_value(value: metadata_pb2.MetadataValue, field: str, errors: FieldErrors, depth: int) -> None:
    """``value`` lies at nesting ``depth`` (1 = a top-level member)."""
    if depth > MAX_DEPTH:
        errors.add(field, f"nested deeper than {MAX_DEPTH} levels (objects and lists count)")
        return
    kind = value.WhichOneof("kind")
    if kind is None:
        errors.add(field, "value has no kind set")
    elif kind == "double_value" and not math.isfinite(value.double_value):
        errors.add(field, "numbers must be finite")
    elif kind == "map_value":
        _validate_members(value.map_value, field, errors, depth + 1)
    elif kind == "list_value":
        for i, item in enumerate(value.list_value.values):
            _validate_value(item, f"{field}[{i}]", errors, depth + 1)
