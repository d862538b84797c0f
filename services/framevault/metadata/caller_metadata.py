"""Checks caller metadata kept outside frames (datasets', versions', view rules' values) and the
key paths that address metadata, before they are stored or used.

The rules are the frame codec's (services/codec, ``rules.rs``), the ones frame metadata follows:
datasets, versions, views and frames refuse the same keys and values with the same messages, and
every key path a caller writes (view rules, queries and orders, statistics keys, update masks) has
the same limits. Keys are checked against what MongoDB would treat specially, so stored metadata
can never act as an operator or a path. Conversion between the proto form and Python values is
``framevault.api.metadata_values``.
"""

from __future__ import annotations

import framevault_codec

from framevault.common.errors import FieldErrors
from framevault.v1 import metadata_pb2

# Why a key may not be stored, or None when it is fine.
key_problem = framevault_codec.key_problem
# (segments, None) of a dotted key path (``env.weather``), or ((), why it addresses no metadata
# value): at most MAX_META_DEPTH segments, each a key that may be stored.
split_key_path = framevault_codec.split_key_path
# Nesting depth of a metadata value: a top-level value is depth 1, every object or list around
# it adds one.
MAX_META_DEPTH = framevault_codec.MAX_META_DEPTH


def validate_metadata(meta: metadata_pb2.Metadata, field: str, errors: FieldErrors) -> None:
    """Adds the problems of ``meta`` (the metadata at ``field``) to ``errors``: keys, value kinds,
    finite numbers, nesting depth; in key order."""
    for path, description in framevault_codec.metadata_violations(meta.SerializeToString(), field):
        errors.add(path, description)

