"""Lucene-style query strings → the filter tree (parsing by ``luqum``).

The grammar is Lucene's; this module only decides what a parsed tree means.
Field names select the node type (never a MongoDB path, except the validated
``meta.<key>`` segments); terms only ever become values. Every error carries
the position (0-based character offset) where it was found. The accepted
language is described in ``views/README.md``.

The field names of the reference product (``label.keyword``, ``rois.label``,
``metadata.<key>``, ``sources.width``, bare ``width``, ...) are read as the
names they stand for while translating, and a term without a field is a label
(as in the reference product's ROI queries). The query is never rewritten, so
every client language gets the same language and every position refers to the
string the caller sent.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from luqum import tree
from luqum.exceptions import ParseError
from luqum.thread import parse as luqum_parse

from framevault.api.metadata_values import INT64_MAX, INT64_MIN
from framevault.metadata.caller_metadata import split_key_path
from framevault.metadata.views.filters import (
    AnyOf,
    Bound,
    Filter,
    MetaEquals,
    MetaExists,
    MetaRange,
    Negation,
    RoiCount,
    SourceMatch,
    all_of,
    depth,
)
from framevault.metadata.views.rules import (
    as_float32,
    confidence_problem,
    count_range_problem,
    label_problem,
    string_problem,
)

MAX_QUERY_CHARS = 8192
MAX_DEPTH = 32

# ASCII digits only: ``int()`` would also read other scripts' digits.
_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_POSITION = re.compile(r"position (\d+)")
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_MODIFIER = re.compile(r"(?<!\\)[~^]")


class QueryError(ValueError):
    """A query that cannot be used; ``position`` is a 0-based offset."""

    def __init__(self, position: int, message: str):
        super().__init__(f"at position {position}: {message}")
        self.position = position
        self.message = message


def parse_query(text: str) -> Filter:
    """The filter tree of a query string; raises QueryError."""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(MAX_QUERY_CHARS, f"queries are limited to {MAX_QUERY_CHARS} characters")
    if not text.strip():
        raise QueryError(0, "empty query")
    try:
        parsed = luqum_parse(text)
    except ParseError as exc:
        found = _POSITION.search(str(exc))
        position = int(found.group(1)) if found else len(text)
        raise QueryError(position, _describe_parse_error(str(exc))) from None
    except (ValueError, ArithmeticError):
        # luqum converts the number after ``~`` and ``^`` while parsing.
        found = _MODIFIER.search(text)
        position = found.start() if found else 0
        raise QueryError(position, "syntax error: malformed ~ or ^ modifier") from None
    node = _Translator(text).expression(parsed, 0)
    if depth(node) > MAX_DEPTH:
        raise QueryError(0, f"nesting deeper than {MAX_DEPTH} levels")
    return node


def _describe_parse_error(message: str) -> str:
    message = message.removeprefix("Syntax error in input : ").rstrip("!")
    # The position is reported separately.
    message = re.sub(r" at (the end|position \d+)$", "", message)
    return f"syntax error: {' '.join(message.split())}"


# --- fields -------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """Where a term is evaluated: the top level, inside ``roi:(...)`` or
    ``source:(...)``, or under a field applied to a group (``label:(a OR b)``)."""

    kind: str = "top"  # "top" | "roi" | "source"
    field: str | None = None
    field_position: int = 0


TOP = _Scope()
_SOURCE_FIELDS = ("width", "height", "content_type", "uri", "id")
_ROI_FIELDS = ("label", "confidence", "count")
# The reference product's spellings: its ROI, frame and source queries each
# had their own field names.
_ROI_ALIASES = {
    "label.keyword": "label",
    "labels": "label",
    "labels.keyword": "label",
    "rois.label": "label",
    "rois.labels": "label",
    "rois.label.keyword": "label",
    "rois.confidence": "confidence",
}
_META_PREFIXES = ("metadata.", "meta_data.")
_SOURCE_PREFIXES = ("sources.", "src.")
_FIELD_HELP = (
    "label, confidence, roi:(...), meta.<key>, _exists_, source.width, source.height, "
    "source.content_type, source.uri, source.id, source:(...)"
)


def canonical_field(name: str, kind: str = "top") -> str:
    """The field ``name`` stands for in a scope (``kind`` as in ``_Scope``):
    the reference product's spellings become this language's names; other
    names are returned as they are."""
    if kind == "source":
        return name
    if name in _ROI_ALIASES:
        return _ROI_ALIASES[name]
    if kind == "roi":
        return name
    for prefix in _META_PREFIXES:
        if name.startswith(prefix):
            return "meta." + name.removeprefix(prefix)
    for prefix in _SOURCE_PREFIXES:
        if name.startswith(prefix):
            return "source." + name.removeprefix(prefix)
    return "source." + name if name in _SOURCE_FIELDS else name


def _unescape(text: str) -> str:
    return _ESCAPED.sub(r"\1", text)


def _position(item: tree.Item) -> int:
    return item.pos if item.pos is not None else 0


class _Translator:
    def __init__(self, text: str):
        self.text = text

    # -- boolean structure --

    def expression(self, item: tree.Item, level: int, scope: _Scope = TOP) -> Filter:
        if level > MAX_DEPTH:
            raise QueryError(_position(item), f"nesting deeper than {MAX_DEPTH} levels")
        if isinstance(item, tree.AndOperation):
            return all_of([self.expression(op, level + 1, scope) for op in item.operands])
        if isinstance(item, tree.OrOperation):
            return AnyOf(tuple(self.expression(op, level + 1, scope) for op in item.operands))
        if isinstance(item, (tree.Not, tree.Prohibit)):
            return Negation(self.expression(item.a, level + 1, scope))
        if isinstance(item, tree.Plus):
            return self.expression(item.a, level + 1, scope)
        if isinstance(item, tree.UnknownOperation):
            second = item.operands[1]
            raise QueryError(_position(second), "missing operator between terms: write AND or OR")
        if isinstance(item, (tree.Group, tree.FieldGroup)):
            return self.expression(item.expr, level + 1, scope)
        if isinstance(item, tree.SearchField):
            return self.search_field(item, level, scope)
        if isinstance(item, (tree.Fuzzy, tree.Proximity, tree.Boost, tree.Regex)):
            raise QueryError(_position(item), f"{type(item).__name__.lower()} queries are not supported")
        if isinstance(item, (tree.Term, tree.Range, tree.From, tree.To)):
            if scope.field is None:
                # A term without a field is a label.
                scope = _Scope(scope.kind, "label", _position(item))
            return self.term(scope, item)
        raise QueryError(_position(item), f"unsupported syntax {str(item)!r}")

    def search_field(self, item: tree.SearchField, level: int, scope: _Scope) -> Filter:
        name = _unescape(item.name)
        position = _position(item)
        if scope.field is not None:
            raise QueryError(position, f"field {name!r} inside the group of field {scope.field!r}")
        if scope.kind == "top" and name in ("roi", "source"):
            if not isinstance(item.expr, tree.FieldGroup):
                raise QueryError(position, f"{name} takes a group of conditions on one {name}, e.g. {name}:(...)")
            return self.element_group(name, item.expr, level)
        if scope.kind == "top" and name == "_exists_":
            return self.exists(item.expr)
        field_scope = _Scope(scope.kind, self.qualified(name, scope, position), position)
        if isinstance(item.expr, tree.FieldGroup):
            return self.expression(item.expr.expr, level + 1, field_scope)
        return self.term(field_scope, item.expr)

    def qualified(self, written: str, scope: _Scope, position: int) -> str:
        """The full name of the field ``written`` (as the caller spelled it)."""
        name = canonical_field(written, scope.kind)
        if scope.kind == "roi":
            if name not in _ROI_FIELDS:
                raise QueryError(position, f"unknown field {written!r} in roi:(...) (fields: {', '.join(_ROI_FIELDS)})")
            return f"roi.{name}"
        if scope.kind == "source":
            if name not in _SOURCE_FIELDS:
                raise QueryError(
                    position, f"unknown field {written!r} in source:(...) (fields: {', '.join(_SOURCE_FIELDS)})"
                )
            return f"source.{name}"
        if name in ("label", "confidence"):
            return name
        if name.startswith("source.") and name.removeprefix("source.") in _SOURCE_FIELDS:
            return name
        if name.startswith("meta."):
            self.meta_path(name, position, written)
            return name
        raise QueryError(position, f"unknown field {written!r} (fields: {_FIELD_HELP})")

    def meta_path(self, name: str, position: int, written: str | None = None) -> tuple[str, ...]:
        path, problem = split_key_path(name.removeprefix("meta."))
        if problem:
            raise QueryError(position, f"field {written or name!r}: {problem}")
        return path

    # -- roi:(...) and source:(...) --

    def element_group(self, kind: str, group: tree.FieldGroup, level: int) -> Filter:
        """Conditions that must hold on one and the same ROI or source: an AND
        of terms (no OR or NOT: those would not say which element)."""
        terms: list[tuple[str, tree.Item, int]] = []
        self._collect_conjunction(kind, group.expr, terms, level + 1)
        if kind == "roi":
            return self.roi_group(terms)
        return self.source_group(terms)

    def _collect_conjunction(self, kind: str, item: tree.Item, out: list[tuple[str, tree.Item, int]],
                             level: int) -> None:
        if level > MAX_DEPTH:
            raise QueryError(_position(item), f"nesting deeper than {MAX_DEPTH} levels")
        if isinstance(item, tree.AndOperation):
            for operand in item.operands:
                self._collect_conjunction(kind, operand, out, level + 1)
        elif isinstance(item, tree.Group):
            self._collect_conjunction(kind, item.expr, out, level + 1)
        elif isinstance(item, tree.SearchField) and not isinstance(item.expr, tree.FieldGroup):
            qualified = self.qualified(_unescape(item.name), _Scope(kind), _position(item))
            out.append((qualified.partition(".")[2], item.expr, _position(item)))
        else:
            raise QueryError(
                _position(item), f"inside {kind}:(...) only field:value terms joined by AND are allowed"
            )

    def roi_group(self, terms: list[tuple[str, tree.Item, int]]) -> Filter:
        labels: list[str] = []
        low_conf: Bound | None = None
        high_conf: Bound | None = None
        count: tuple[int, int | None] | None = None
        for name, value, position in terms:
            if name == "label":
                labels.append(self.label(value))
            elif name == "confidence":
                low, high = self.number_bounds(value, confidence=True)
                low_conf = _tighter(low_conf, low, lower=True)
                high_conf = _tighter(high_conf, high, lower=False)
            else:
                if count is not None:
                    raise QueryError(position, "count may appear once per roi:(...)")
                count = self.count_range(value)
        low_count, high_count = count if count is not None else (1, None)
        return RoiCount(tuple(dict.fromkeys(labels)), low_conf, high_conf, low_count, high_count)

    def source_group(self, terms: list[tuple[str, tree.Item, int]]) -> Filter:
        condition: dict[str, Any] = {}
        for name, value, position in terms:
            single = self.source_condition(name, value)
            for key, bound in single.items():
                if key in condition and condition[key] != bound:
                    raise QueryError(position, f"source.{name} given twice in one source:(...)")
                condition[key] = bound
        return SourceMatch(**condition)

    # -- single terms --

    def term(self, scope: _Scope, value: tree.Item) -> Filter:
        if isinstance(value, (tree.Fuzzy, tree.Proximity, tree.Boost, tree.Regex)):
            raise QueryError(_position(value), f"{type(value).__name__.lower()} queries are not supported")
        field = scope.field or ""
        if field == "label":
            return RoiCount(labels=(self.label(value),))
        if field == "confidence":
            low, high = self.number_bounds(value, confidence=True)
            return RoiCount(min_confidence=low, max_confidence=high)
        if field.startswith("source."):
            return SourceMatch(**self.source_condition(field.removeprefix("source."), value))
        if field.startswith("meta."):
            return self.meta_term(self.meta_path(field, scope.field_position), value)
        if field.startswith("roi."):
            # A field group inside roi:(...) such as roi:(label:(a OR b)).
            raise QueryError(_position(value), "inside roi:(...) only field:value terms joined by AND are allowed")
        raise QueryError(_position(value), f"unknown field {field!r}")

    def label(self, value: tree.Item) -> str:
        label = self.text_value(value, "label")
        problem = label_problem(label)
        if problem:
            raise QueryError(_position(value), problem)
        return label

    def text_value(self, value: tree.Item, what: str) -> str:
        if isinstance(value, tree.Phrase):
            return _unescape(value.value[1:-1])
        if isinstance(value, tree.Word):
            if value.has_wildcard():
                raise QueryError(_position(value), f"wildcards are not supported for {what}")
            return _unescape(value.value)
        raise QueryError(_position(value), f"{what} takes a single value")

    def meta_term(self, path: tuple[str, ...], value: tree.Item) -> Filter:
        if isinstance(value, tree.Word) and value.value == "*":
            return MetaExists(path, True)
        if isinstance(value, (tree.Range, tree.From, tree.To)):
            low, high = self.bounds(value, self.scalar)
            kinds = {_kind(b.value) for b in (low, high) if b is not None}
            if len(kinds) > 1:
                raise QueryError(_position(value), "range bounds must both be numbers or both be strings")
            if None in kinds:
                raise QueryError(_position(value), "range bounds must be numbers or strings")
            return MetaRange(path, low, high)
        return MetaEquals(path, self.scalar(value))

    def exists(self, value: tree.Item) -> Filter:
        if not isinstance(value, tree.Word) or value.has_wildcard():
            raise QueryError(_position(value), "_exists_ takes a field name, e.g. _exists_:meta.city")
        written = _unescape(value.value)
        name = canonical_field(written)
        if not name.startswith("meta."):
            raise QueryError(_position(value), "_exists_ applies to meta.<key> fields")
        return MetaExists(self.meta_path(name, _position(value), written), True)

    def scalar(self, value: tree.Item) -> Any:
        """A quoted value is a string; a bare word is a number, true, false,
        null, or else a string."""
        number = _literal_number(value)
        if number is not None:
            return self.stored_number(value, number)
        if isinstance(value, tree.Phrase):
            return self.checked_string(value, _unescape(value.value[1:-1]))
        if not isinstance(value, tree.Word):
            raise QueryError(_position(value), "expected a single value")
        if value.has_wildcard():
            raise QueryError(_position(value), "wildcards are only supported as field:* (exists) and in source.uri")
        text = _unescape(value.value)
        keywords: dict[str, Any] = {"true": True, "false": False, "null": None}
        if text in keywords:
            return keywords[text]
        return self.checked_string(value, text)

    def checked_string(self, value: tree.Item, text: str) -> str:
        problem = string_problem(text)
        if problem:
            raise QueryError(_position(value), f"value {problem}")
        return text

    def number(self, value: tree.Item) -> int | float:
        """A number as written: integers of any size, decimals possibly infinite
        (``1e400``); the caller checks the range its field allows."""
        number = _literal_number(value)
        if number is None:
            raise QueryError(_position(value), f"expected a number, not {str(value).strip()!r}")
        return number

    def stored_number(self, value: tree.Item, number: int | float) -> int | float:
        """``number`` as metadata can hold it: a 64-bit integer or a finite
        double (larger integers compare as doubles)."""
        if isinstance(number, int) and INT64_MIN <= number <= INT64_MAX:
            return number
        try:
            as_double = float(number)
        except OverflowError:
            as_double = math.inf
        if not math.isfinite(as_double):
            raise QueryError(_position(value), "number out of range: numbers must fit a double (about ±1.8e308)")
        return as_double

    def bounds(self, value: tree.Item, convert: Any) -> tuple[Bound | None, Bound | None]:
        """The bounds of ``[a TO b]``, ``{a TO b}``, ``>a``, ``<=b``, or of a
        single value (both bounds equal); ``*`` leaves a side open."""

        def bound(item: tree.Item, inclusive: bool) -> Bound | None:
            if isinstance(item, tree.Word) and item.value == "*":
                return None
            return Bound(convert(item), inclusive)

        if isinstance(value, tree.Range):
            return bound(value.low, value.include_low), bound(value.high, value.include_high)
        if isinstance(value, tree.From):
            return bound(value.a, value.include), None
        if isinstance(value, tree.To):
            return None, bound(value.a, value.include)
        single = Bound(convert(value))
        return single, single

    def number_bounds(self, value: tree.Item, *, confidence: bool = False) -> tuple[Bound | None, Bound | None]:
        low, high = self.bounds(value, self.number)
        if confidence:
            for bound in (low, high):
                problem = confidence_problem(bound.value) if bound else None
                if problem:
                    raise QueryError(_position(value), f"confidence {problem}")
            low = Bound(as_float32(low.value), low.inclusive) if low else None
            high = Bound(as_float32(high.value), high.inclusive) if high else None
        return low, high

    def int_bounds(self, value: tree.Item) -> tuple[int | None, int | None]:
        """Integer bounds as an inclusive range of 64-bit integers."""
        low, high = self.bounds(value, self.integer)
        low_value = None if low is None else low.value + (0 if low.inclusive else 1)
        high_value = None if high is None else high.value - (0 if high.inclusive else 1)
        for bound in (low_value, high_value):
            if bound is not None and not INT64_MIN <= bound <= INT64_MAX:
                raise QueryError(_position(value), f"bound out of range: must lie in {INT64_MIN}..{INT64_MAX}")
        return low_value, high_value

    def integer(self, value: tree.Item) -> int:
        number = self.number(value)
        if not isinstance(number, int):
            raise QueryError(_position(value), f"expected a whole number, not {number!r}")
        return number

    def count_range(self, value: tree.Item) -> tuple[int, int | None]:
        low, high = self.int_bounds(value)
        low_count = 0 if low is None else low
        problem = count_range_problem(low_count, high)
        if problem:
            raise QueryError(_position(value), problem)
        return low_count, high

    def source_condition(self, name: str, value: tree.Item) -> dict[str, Any]:
        if name in ("width", "height"):
            low, high = self.int_bounds(value)
            if (low is not None and low < 0) or (high is not None and high < 0):
                raise QueryError(_position(value), f"{name} must not be negative")
            if low is not None and high is not None and low > high:
                raise QueryError(_position(value), f"{name} range is empty")
            return {k: v for k, v in ((f"min_{name}", low), (f"max_{name}", high)) if v is not None}
        if name == "uri":
            return self.uri_condition(value)
        text = self.checked_string(value, self.text_value(value, f"source.{name}"))
        return {"content_type" if name == "content_type" else "source_id": text}

    def uri_condition(self, value: tree.Item) -> dict[str, Any]:
        """Exact URI, or a prefix when the value ends with an unescaped ``*``."""
        if not isinstance(value, (tree.Word, tree.Phrase)):
            raise QueryError(_position(value), "source.uri takes a single value")
        raw = value.value[1:-1] if isinstance(value, tree.Phrase) else value.value
        prefix = raw.endswith("*") and not raw.endswith("\\*")
        body = raw[:-1] if prefix else raw
        if re.search(r"(?<!\\)[*?]", body):
            raise QueryError(_position(value), "source.uri supports one trailing * (a prefix), no other wildcards")
        text = self.checked_string(value, _unescape(body))
        return {"uri_prefix": text} if prefix else {"uri": text}


def _literal_number(value: tree.Item) -> int | float | None:
    """The number a bare word spells, or None; ``-3`` inside a range bound,
    which the grammar reads as a negation, is a number too."""
    if isinstance(value, tree.Prohibit) and isinstance(value.a, tree.Word):
        number = _number(_unescape(value.a.value))
        return None if number is None else -number
    if isinstance(value, tree.Word):
        return _number(_unescape(value.value))
    return None


def _number(text: str) -> int | float | None:
    """Integers exactly (any size), decimals as doubles (``inf`` when too
    large); words such as "nan" or "inf" are not numbers."""
    if _INT.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    return None


def _kind(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    return "number" if isinstance(value, (int, float)) else "string" if isinstance(value, str) else None


def _tighter(current: Bound | None, new: Bound | None, *, lower: bool) -> Bound | None:
    if new is None:
        return current
    if current is None:
        return new
    if current.value == new.value:
        return Bound(new.value, current.inclusive and new.inclusive)
    if lower:
        return new if new.value > current.value else current
    return new if new.value < current.value else current

