"""Validation of catalog requests: names, texts, tags, metadata, mask labels,
field masks and page sizes. Pure functions that add to a ``FieldErrors``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf.message import Message

from framevault.common.errors import FieldErrors
from framevault.metadata.caller_metadata import split_key_path, validate_metadata
from framevault.v1 import dataset_pb2, metadata_pb2

MAX_NAME_CHARS = 128
MAX_DESCRIPTION_BYTES = 4096
MAX_TAG_BYTES = 64
MAX_TAGS = 64
MAX_MASK_LABELS = 4096
MAX_MASK_LABEL_BYTES = 256
# Encoded sizes of a dataset's or version's metadata and of a version's mask
# labels: with the other bounded fields they keep one dataset or version far
# below a list page's byte budget (page_tokens.MAX_PAGE_BYTES).
MAX_META_BYTES = 64 * 1024
MAX_MASK_LABELS_BYTES = 256 * 1024
MAX_STATISTICS_KEYS = 16
NAME_PUNCTUATION = frozenset(" _-.:/()")


def _name_char_ok(ch: str) -> bool:
    return ch in NAME_PUNCTUATION or unicodedata.category(ch)[0] == "L" or unicodedata.category(ch) == "Nd"


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid dataset or version name, or None."""
    if not name:
        return "must not be empty"
    if len(name) > MAX_NAME_CHARS:
        return f"must be at most {MAX_NAME_CHARS} characters"
    if name != name.strip(" "):
        return "must not start or end with a space"
    bad = sorted({ch for ch in name if not _name_char_ok(ch)})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad[:5])
        return f"may hold only letters, digits, space and _-.:/() (found {shown})"
    return None


def check_name(name: str, field: str, errors: FieldErrors) -> None:
    problem = name_problem(name)
    if problem:
        errors.add(field, problem)


def check_name_prefix(prefix: str, field: str, errors: FieldErrors) -> None:
    if len(prefix) > MAX_NAME_CHARS:
        errors.add(field, f"must be at most {MAX_NAME_CHARS} characters")
    elif any(not _name_char_ok(ch) for ch in prefix):
        errors.add(field, "may hold only letters, digits, space and _-.:/()")


def check_description(description: str, field: str, errors: FieldErrors) -> None:
    if len(description.encode()) > MAX_DESCRIPTION_BYTES:
        errors.add(field, f"must be at most {MAX_DESCRIPTION_BYTES} bytes")
    if "\x00" in description:
        errors.add(field, "must not contain NUL")


def check_tags(tags: Sequence[str], field: str, errors: FieldErrors) -> None:
    if len(tags) > MAX_TAGS:
        errors.add(field, f"at most {MAX_TAGS} tags")
        return
    seen: set[str] = set()
    for i, tag in enumerate(tags):
        size = len(tag.encode())
        if not 1 <= size <= MAX_TAG_BYTES:
            errors.add(f"{field}[{i}]", f"tags must be 1..{MAX_TAG_BYTES} bytes")
        elif "\x00" in tag:
            errors.add(f"{field}[{i}]", "tags must not contain NUL")
        elif tag in seen:
            errors.add(f"{field}[{i}]", f"duplicate tag {tag!r}")
        seen.add(tag)


def check_meta(meta: metadata_pb2.Metadata, field: str, errors: FieldErrors) -> None:
    """Dataset and version metadata: bounded in size, then checked entry by entry."""
    if meta.ByteSize() > MAX_META_BYTES:
        errors.add(field, f"must be at most {MAX_META_BYTES} bytes encoded")
        return
    validate_metadata(meta, field, errors)


def check_mask_labels(mask_labels: Sequence[dataset_pb2.MaskLabel], field: str, errors: FieldErrors) -> None:
    if len(mask_labels) > MAX_MASK_LABELS:
        errors.add(field, f"at most {MAX_MASK_LABELS} entries")
        return
    if sum(entry.ByteSize() for entry in mask_labels) > MAX_MASK_LABELS_BYTES:
        errors.add(field, f"must be at most {MAX_MASK_LABELS_BYTES} bytes encoded")
        return
    seen: set[tuple[int, ...]] = set()
    for i, entry in enumerate(mask_labels):
        at = f"{field}[{i}]"
        if len(entry.value) != 3:
            errors.add(f"{at}.value", "must be exactly three integers [r, g, b]")
        else:
            for j, channel in enumerate(entry.value):
                if not 0 <= channel <= 255:
                    errors.add(f"{at}.value[{j}]", "must be in 0..255")
            value = tuple(entry.value)
            if value in seen:
                errors.add(f"{at}.value", f"duplicate value {list(value)}")
            seen.add(value)
        if not entry.labels:
            errors.add(f"{at}.labels", "at least one label is required")
        for j, label in enumerate(entry.labels):
            if not 1 <= len(label.encode()) <= MAX_MASK_LABEL_BYTES:
                errors.add(f"{at}.labels[{j}]", f"labels must be 1..{MAX_MASK_LABEL_BYTES} bytes")


def check_update_mask(paths: Sequence[str], allowed: Iterable[str], field: str, errors: FieldErrors) -> list[str]:
    """The valid, distinct mask paths; unknown ones are reported by index."""
    allowed_set = set(allowed)
    chosen: list[str] = []
    for i, path in enumerate(paths):
        if path not in allowed_set:
            errors.add(f"{field}.paths[{i}]", f"unknown or read-only field {path!r}; allowed: {', '.join(sorted(allowed_set))}")
        elif path not in chosen:
            chosen.append(path)
    return chosen


def fields_to_update(paths: Sequence[str], resource: Message, allowed: Sequence[str], errors: FieldErrors) -> list[str]:
    """The fields an update changes: those named by the mask, or without a
    mask those set in ``resource`` (AIP-134)."""
    if paths:
        return check_update_mask(paths, allowed, "update_mask", errors)
    chosen = [name for name in allowed if _is_set(getattr(resource, name))]
    if not chosen:
        errors.add("update_mask", "nothing to update: name the fields in update_mask")
    return chosen


def _is_set(value: Any) -> bool:
    if isinstance(value, Message):
        return bool(value.ListFields())
    return bool(value)


def check_meta_key_path(path: str, field: str, errors: FieldErrors) -> tuple[str, ...] | None:
    """A frame-metadata dot path split into validated segments."""
    segments, problem = split_key_path(path)
    if problem:
        errors.add(field, problem)
        return None
    return segments
