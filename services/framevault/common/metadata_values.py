"""Converts caller metadata between the proto form and plain Python values.

Types survive exactly: int stays int, float stays float (the reason the
contract does not use google.protobuf.Struct). Keys are checked against what
MongoDB would treat specially, so stored metadata can never act as an
operator or a path.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import struct_pb2

from framevault.common.errors import FieldErrors
from framevault.v1 import metadata_pb2

MAX_KEY_BYTES = 256
MAX_DEPTH = 32
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

JsonValue = None | bool | int | float | str | list[Any] | dict[str, Any]


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


def validate_metadata(meta: metadata_pb2.Metadata, field: str, errors: FieldErrors, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        errors.add(field, f"nesting deeper than {MAX_DEPTH}")
        return
    for key, value in meta.fields.items():
        problem = key_problem(key)
        if problem:
            errors.add(f"{field}.{key}" if key else field, problem)
            continue
        _validate_value(value, f"{field}.{key}", errors, depth + 1)


def _validate_value(value: metadata_pb2.MetadataValue, field: str, errors: FieldErrors, depth: int) -> None:
    kind = value.WhichOneof("kind")
    if kind is None:
        errors.add(field, "value has no kind set")
    elif kind == "double_value" and not math.isfinite(value.double_value):
        errors.add(field, "numbers must be finite")
    elif kind == "map_value":
        validate_metadata(value.map_value, field, errors, depth)
    elif kind == "list_value":
        if depth > MAX_DEPTH:
            errors.add(field, f"nesting deeper than {MAX_DEPTH}")
            return
        for i, item in enumerate(value.list_value.values):
            _validate_value(item, f"{field}[{i}]", errors, depth + 1)


def metadata_to_dict(meta: metadata_pb2.Metadata) -> dict[str, Any]:
    return {key: value_to_python(value) for key, value in meta.fields.items()}


def value_to_python(value: metadata_pb2.MetadataValue) -> JsonValue:
    kind = value.WhichOneof("kind")
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "string_value":
        return value.string_value
    if kind == "list_value":
        return [value_to_python(v) for v in value.list_value.values]
    if kind == "map_value":
        return metadata_to_dict(value.map_value)
    return None


def dict_to_metadata(values: dict[str, Any] | None) -> metadata_pb2.Metadata:
    meta = metadata_pb2.Metadata()
    for key, value in (values or {}).items():
        meta.fields[key].CopyFrom(python_to_value(value))
    return meta


def python_to_value(value: Any) -> metadata_pb2.MetadataValue:
    out = metadata_pb2.MetadataValue()
    if value is None:
        # The protobuf stubs type enum fields by their wrapper class.
        out.null_value = struct_pb2.NullValue.NULL_VALUE  # type: ignore[assignment]
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"integer {value} does not fit in int64")
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, (list, tuple)):
        out.list_value.values.extend(python_to_value(v) for v in value)
    elif isinstance(value, dict):
        out.map_value.CopyFrom(dict_to_metadata(value))
    else:
        raise TypeError(f"metadata values must be JSON-like, not {type(value).__name__}")
    return out
