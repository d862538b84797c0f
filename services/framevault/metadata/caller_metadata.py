"""Checks caller metadata kept outside frames (datasets', versions', view rules' values) and the
key paths that address metadata, before they are stored or used.

The rules are the frame codec's (services/codec, ``rules.rs``), the ones frame metadata follows:
datasets, versions, views and frames refuse the same keys and values with the same messages. Keys
are checked against what MongoDB would treat specially, so stored metadata can never act as an
operator or a path. Conversion between the proto form and Python values is
``framevault.api.metadata_values``.
"""

from __future__ import annotations

import framevault_codec

from framevault.common.errors import FieldErrors
from framevault.v1 import metadata_pb2

# Why a key may not be stored, or None when it is fine.
key_problem = framevault_codec.key_problem


def validate_metadata(meta: metadata_pb2.Metadata, field: str, errors: FieldErrors) -> None:
    """Adds the problems of ``meta`` (the metadata at ``field``) to ``errors``: keys, value kinds,
    finite numbers, nesting depth; in key order."""
    for path, description in framevault_codec.metadata_violations(meta.SerializeToString(), field):
        errors.add(path, description)


def split_key_path(path: str, max_segments: int) -> tuple[tuple[str, ...], str | None]:
    """The segments of a dotted metadata key path (``env.weather``), or why it is not acceptable."""
    if not path:
        return (), "must not be empty"
    segments = tuple(path.split("."))
    if len(segments) > max_segments:
        return (), f"at most {max_segments} segments"
    for segment in segments:
        problem = key_problem(segment)
        if problem:
            return (), f"segment {segment!r}: {problem}"
    return segments, None
