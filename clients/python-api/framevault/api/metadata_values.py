"""Converts metadata between the proto form and plain Python values.

Types survive exactly: int stays int, float stays float (the reason the
contract does not use google.protobuf.Struct).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from framevault.v1 import metadata_pb2

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

JsonValue = None | bool | int | float | str | list[Any] | dict[str, Any]


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
    # The stubs do not know that message fields also accept their dict form.
    return metadata_pb2.Metadata(fields=metadata_fields(values))  # type: ignore[arg-type]


def metadata_fields(values: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """``values`` as the ``fields`` argument of a ``Metadata`` constructor.

    A message built from nested dicts in one constructor call costs a fraction
    of building it field by field, which matters for every frame read.
    """
    return {key: _value_fields(value) for key, value in (values or {}).items()}


def python_to_value(value: Any) -> metadata_pb2.MetadataValue:
    return metadata_pb2.MetadataValue(**_value_fields(value))


def _value_fields(value: Any) -> dict[str, Any]:
    if value is None:
        return {"null_value": struct_pb2.NullValue.NULL_VALUE}
    if isinstance(value, bool):
        return {"bool_value": value}
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"integer {value} does not fit in int64")
        return {"int_value": value}
    if isinstance(value, float):
        return {"double_value": value}
    if isinstance(value, str):
        return {"string_value": value}
    if isinstance(value, (list, tuple)):
        return {"list_value": {"values": [_value_fields(v) for v in value]}}
    if isinstance(value, dict):
        return {"map_value": {"fields": metadata_fields(value)}}
    raise TypeError(f"metadata values must be JSON-like, not {type(value).__name__}")
