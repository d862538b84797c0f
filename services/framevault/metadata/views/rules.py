"""Structured ``FilterRule`` messages → the filter tree, validating every field.

Problems are collected into a ``FieldErrors`` under the caller's field path
(``view.selections[0].rules[2].roi.min_count``) so one response lists them all.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from framevault.api.metadata_values import value_to_python
from framevault.common.errors import FieldErrors
from framevault.metadata.caller_metadata import split_key_path, validate_metadata
from framevault.metadata.views.filters import (
    MATCH_ALL,
    Bound,
    Filter,
    MetaEquals,
    MetaExists,
    MetaRange,
    RoiCount,
    SourceMatch,
    all_of,
)
from framevault.v1 import metadata_pb2, view_pb2

MAX_RULES = 256
MAX_LABELS_PER_RULE = 64
MAX_LABEL_BYTES = 256
MAX_STRING_BYTES = 4096


def rules_to_filter(rules: Any, field: str, errors: FieldErrors) -> Filter:
    """The AND of ``rules`` (a repeated FilterRule); ``field`` is their path."""
    if len(rules) > MAX_RULES:
        errors.add(field, f"at most {MAX_RULES} rules per selection")
        return MATCH_ALL
    parts: list[Filter] = []
    for i, rule in enumerate(rules):
        node = rule_to_filter(rule, f"{field}[{i}]", errors)
        if node is not None:
            parts.append(node)
    return all_of(parts) if parts else MATCH_ALL


def rule_to_filter(rule: view_pb2.FilterRule, field: str, errors: FieldErrors) -> Filter | None:
    kind = rule.WhichOneof("rule")
    if kind == "roi":
        return roi_rule(rule.roi, f"{field}.roi", errors)
    if kind == "meta":
        return meta_rule(rule.meta, f"{field}.meta", errors)
    if kind == "source":
        return source_rule(rule.source, f"{field}.source", errors)
    errors.add(field, "set one of roi, meta or source")
    return None


# --- values shared with the query parser --------------------------------------


def label_problem(label: str) -> str | None:
    if not label:
        return "labels must not be empty"
    if len(label.encode()) > MAX_LABEL_BYTES:
        return f"labels must be at most {MAX_LABEL_BYTES} bytes"
    if "\x00" in label:
        return "labels must not contain NUL"
    return None


def string_problem(value: str) -> str | None:
    if len(value.encode()) > MAX_STRING_BYTES:
        return f"must be at most {MAX_STRING_BYTES} bytes"
    if "\x00" in value:
        return "must not contain NUL"
    return None


def as_float32(value: float) -> float:
    """ROI confidences are float32: bounds are compared at that precision, so
    `0.9` typed in a query equals the stored float32 0.9."""
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def confidence_problem(value: float) -> str | None:
    """Confidences are stored in [0, 1]; a bound outside it (a percentage, an
    overflow) is a mistake, not a filter."""
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        return "must be a finite number in [0, 1]"
    return None


def count_range_problem(low: int, high: int | None) -> str | None:
    if low < 0 or (high is not None and high < 0):
        return "counts must not be negative"
    if high is not None and low > high:
        return "min_count must not exceed max_count"
    return None


# --- ROI ----------------------------------------------------------------------


def roi_rule(rule: view_pb2.RoiRule, field: str, errors: FieldErrors) -> Filter | None:
    before = len(errors.violations)
    if len(rule.labels) > MAX_LABELS_PER_RULE:
        errors.add(f"{field}.labels", f"at most {MAX_LABELS_PER_RULE} labels")
    for i, label in enumerate(rule.labels):
        problem = label_problem(label)
        if problem:
            errors.add(f"{field}.labels[{i}]", problem)
    bounds: dict[str, float] = {}
    for name in ("min_confidence", "max_confidence"):
        if rule.HasField(name):
            value = getattr(rule, name)
            problem = confidence_problem(value)
            if problem:
                errors.add(f"{field}.{name}", problem)
            else:
                bounds[name] = as_float32(value)
    if len(bounds) == 2 and bounds["min_confidence"] > bounds["max_confidence"]:
        errors.add(f"{field}.min_confidence", "must not exceed max_confidence")
    high = rule.max_count if rule.HasField("max_count") else None
    # Unset min_count means 1, except with max_count 0: "no ROI has label Z"
    # is written as labels [Z], max_count 0 (the contract's own example).
    low = rule.min_count if rule.HasField("min_count") else (0 if high == 0 else 1)
    if low < 0:
        errors.add(f"{field}.min_count", "must not be negative")
    if high is not None and high < 0:
        errors.add(f"{field}.max_count", "must not be negative")
    elif high is not None and low > high:
        errors.add(f"{field}.min_count", "must not exceed max_count")
    if len(errors.violations) != before:
        return None
    return RoiCount(
        labels=tuple(dict.fromkeys(rule.labels)),
        min_confidence=Bound(bounds["min_confidence"]) if "min_confidence" in bounds else None,
        max_confidence=Bound(bounds["max_confidence"]) if "max_confidence" in bounds else None,
        min_count=low,
        max_count=high,
    )


# --- metadata -----------------------------------------------------------------


def scalar_kind(value: Any) -> str | None:
    """'number' or 'string' for values a range may compare, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def meta_rule(rule: view_pb2.MetadataRule, field: str, errors: FieldErrors) -> Filter | None:
    path, problem = split_key_path(rule.key)
    if problem:
        errors.add(f"{field}.key", problem)
    condition = rule.WhichOneof("condition")
    if condition is None:
        errors.add(field, "set one of equals, range or exists")
        return None
    if condition == "exists":
        return MetaExists(path, rule.exists) if not problem else None
    if condition == "equals":
        value = _metadata_value(rule.equals, f"{field}.equals", errors)
        if problem or value is _INVALID:
            return None
        return MetaEquals(path, value)
    low, high = _value_range(rule.range, f"{field}.range", errors)
    if problem or low is _INVALID:
        return None
    return MetaRange(path, low, high)


_INVALID: Any = object()


def _metadata_value(value: metadata_pb2.MetadataValue, field: str, errors: FieldErrors) -> Any:
    # Validate like stored metadata (kinds set, finite numbers, keys of nested
    # maps safe), so a sub-document compared for equality is plain data.
    wrapper = metadata_pb2.Metadata()
    wrapper.fields["v"].CopyFrom(value)
    local = FieldErrors()
    validate_metadata(wrapper, "", local)
    for violation in local.violations:
        errors.add(field + violation.field.removeprefix(".v"), violation.description)
    if local:
        return _INVALID
    return value_to_python(value)


def _value_range(rule: view_pb2.ValueRange, field: str, errors: FieldErrors) -> tuple[Any, Any]:
    before = len(errors.violations)
    bounds: dict[str, Bound] = {}
    for name, exclusive in (("min", rule.min_exclusive), ("max", rule.max_exclusive)):
        if not rule.HasField(name):
            continue
        value = _metadata_value(getattr(rule, name), f"{field}.{name}", errors)
        if value is _INVALID:
            continue
        if scalar_kind(value) is None:
            errors.add(f"{field}.{name}", "range bounds must be numbers or strings")
            continue
        bounds[name] = Bound(value, inclusive=not exclusive)
    if not rule.HasField("min") and not rule.HasField("max"):
        errors.add(field, "set min, max or both")
    if len(bounds) == 2 and scalar_kind(bounds["min"].value) != scalar_kind(bounds["max"].value):
        errors.add(field, "min and max must both be numbers or both be strings")
    if len(errors.violations) != before:
        return _INVALID, _INVALID
    return bounds.get("min"), bounds.get("max")


# --- sources ------------------------------------------------------------------


def source_rule(rule: view_pb2.SourceRule, field: str, errors: FieldErrors) -> Filter | None:
    before = len(errors.violations)
    sizes: dict[str, tuple[int | None, int | None]] = {}
    for name in ("width", "height"):
        size = getattr(rule, name)
        low = size.min if size.HasField("min") else None
        high = size.max if size.HasField("max") else None
        for bound_name, bound in (("min", low), ("max", high)):
            if bound is not None and bound < 0:
                errors.add(f"{field}.{name}.{bound_name}", "must not be negative")
        if low is not None and high is not None and low > high:
            errors.add(f"{field}.{name}.min", "must not exceed max")
        sizes[name] = low, high
    for name in ("content_type", "uri_prefix", "source_id"):
        problem = string_problem(getattr(rule, name))
        if problem:
            errors.add(f"{field}.{name}", problem)
    if len(errors.violations) != before:
        return None
    return SourceMatch(
        min_width=sizes["width"][0],
        max_width=sizes["width"][1],
        min_height=sizes["height"][0],
        max_height=sizes["height"][1],
        content_type=rule.content_type or None,
        uri_prefix=rule.uri_prefix or None,
        source_id=rule.source_id or None,
    )
