"""The one filter language of views, and its translation to MongoDB.

Structured ``FilterRule`` messages (``rules.py``) and Lucene-style query
strings (``query.py``) both become this small tree; only ``to_mongo`` knows
MongoDB. Every caller-supplied string ends up as a *value* here: operator names
are fixed by the node types, and the only caller-influenced field paths are
``meta.<key>...`` whose segments were checked with ``split_key_path`` before a
node was built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Number = int | float
Scalar = None | bool | int | float | str


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Negation:
    part: Filter


@dataclass(frozen=True)
class Bound:
    value: Any
    inclusive: bool = True


@dataclass(frozen=True)
class RoiCount:
    """The number of ROIs carrying every label of ``labels`` with a confidence
    within the bounds lies in ``[min_count, max_count]`` (None = unbounded).

    ROIs without a confidence (ground truth) never meet a confidence bound.
    """

    labels: tuple[str, ...] = ()
    min_confidence: Bound | None = None
    max_confidence: Bound | None = None
    min_count: int = 1
    max_count: int | None = None


@dataclass(frozen=True)
class MetaEquals:
    path: tuple[str, ...]
    value: Any


@dataclass(frozen=True)
class MetaRange:
    path: tuple[str, ...]
    low: Bound | None
    high: Bound | None


@dataclass(frozen=True)
class MetaExists:
    path: tuple[str, ...]
    exists: bool


@dataclass(frozen=True)
class SourceMatch:
    """Some single source of the frame meets every set condition.

    Unknown sizes are stored as absent, so they never meet a size bound.
    """

    min_width: int | None = None
    max_width: int | None = None
    min_height: int | None = None
    max_height: int | None = None
    content_type: str | None = None
    uri: str | None = None
    uri_prefix: str | None = None
    source_id: str | None = None


Filter = AllOf | AnyOf | Negation | RoiCount | MetaEquals | MetaRange | MetaExists | SourceMatch

MATCH_ALL = AllOf(())


def all_of(parts: list[Filter]) -> Filter:
    flat: list[Filter] = []
    for part in parts:
        flat.extend(part.parts if isinstance(part, AllOf) else (part,))
    return flat[0] if len(flat) == 1 else AllOf(tuple(flat))


def depth(node: Filter) -> int:
    if isinstance(node, (AllOf, AnyOf)):
        return 1 + max((depth(p) for p in node.parts), default=0)
    if isinstance(node, Negation):
        return 1 + depth(node.part)
    return 1


# --- MongoDB ------------------------------------------------------------------


def to_mongo(node: Filter) -> dict[str, Any]:
    """The MongoDB query document of ``node`` (``{}`` matches everything)."""
    if isinstance(node, AllOf):
        parts = [q for q in (to_mongo(p) for p in node.parts) if q]
        if not parts:
            return {}
        return parts[0] if len(parts) == 1 else {"$and": parts}
    if isinstance(node, AnyOf):
        parts = [to_mongo(p) for p in node.parts]
        if not parts:
            return _MATCH_NOTHING
        if any(not q for q in parts):
            return {}
        return {"$or": parts}
    if isinstance(node, Negation):
        inner = to_mongo(node.part)
        return _MATCH_NOTHING if not inner else {"$nor": [inner]}
    if isinstance(node, RoiCount):
        return _roi_count(node)
    if isinstance(node, MetaEquals):
        return {_meta_field(node.path): _equals(node.value)}
    if isinstance(node, MetaRange):
        return {_meta_field(node.path): _range(node.low, node.high)}
    if isinstance(node, MetaExists):
        return {_meta_field(node.path): {"$exists": node.exists}}
    if isinstance(node, SourceMatch):
        return _source_match(node)
    raise TypeError(f"not a filter node: {node!r}")


# An impossible predicate: ``_id`` always exists.
_MATCH_NOTHING: dict[str, Any] = {"_id": {"$exists": False}}


def _meta_field(path: tuple[str, ...]) -> str:
    # Segments were validated by split_key_path: no '$', no '.', no NUL.
    return "meta." + ".".join(path)


def _equals(value: Any) -> dict[str, Any]:
    if value is None:
        # ``$eq: null`` would also match a missing key; equality means present.
        return {"$type": "null"}
    # ``$eq`` keeps a caller-built sub-document a literal value, never operators.
    return {"$eq": value}


def _range(low: Bound | None, high: Bound | None) -> dict[str, Any]:
    condition: dict[str, Any] = {}
    if low is not None:
        condition["$gte" if low.inclusive else "$gt"] = low.value
    if high is not None:
        condition["$lte" if high.inclusive else "$lt"] = high.value
    return condition


def _roi_element(rule: RoiCount) -> dict[str, Any]:
    """The per-ROI condition in query language (for ``$elemMatch``)."""
    element: dict[str, Any] = {}
    if len(rule.labels) == 1:
        element["labels"] = {"$eq": rule.labels[0]}
    elif rule.labels:
        element["labels"] = {"$all": list(rule.labels)}
    confidence = _range(rule.min_confidence, rule.max_confidence)
    if confidence:
        element["confidence"] = confidence
    return element


def _roi_element_expression(rule: RoiCount) -> dict[str, Any]:
    """The same per-ROI condition in aggregation-expression language (``$$roi``).

    Labels are wrapped in ``$literal``: inside an expression a string starting
    with ``$`` would otherwise be read as a field path.
    """
    conditions: list[Any] = []
    if rule.labels:
        conditions.append({"$setIsSubset": [{"$literal": list(rule.labels)}, {"$ifNull": ["$$roi.labels", []]}]})
    if rule.min_confidence is not None or rule.max_confidence is not None:
        # In expressions a missing confidence compares below every number
        # (``$lte`` would hold); require a number as the query language does.
        conditions.append({"$isNumber": "$$roi.confidence"})
        for bound, inclusive_op, exclusive_op in (
            (rule.min_confidence, "$gte", "$gt"),
            (rule.max_confidence, "$lte", "$lt"),
        ):
            if bound is not None:
                op = inclusive_op if bound.inclusive else exclusive_op
                conditions.append({op: ["$$roi.confidence", {"$literal": bound.value}]})
    if not conditions:
        return {"$literal": True}
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def _roi_count(rule: RoiCount) -> dict[str, Any]:
    element = _roi_element(rule)
    low, high = rule.min_count, rule.max_count
    if high is not None and low > high:
        return _MATCH_NOTHING
    if low <= 0 and high is None:
        return {}
    any_matching: dict[str, Any] = {"rois": {"$elemMatch": element}} if element else {"rois.0": {"$exists": True}}
    if low == 1 and high is None:
        return any_matching
    if low <= 0 and high == 0:
        return {"$nor": [any_matching]}
    matching = {
        "$size": {
            "$filter": {
                "input": {"$ifNull": ["$rois", []]},
                "as": "roi",
                "cond": _roi_element_expression(rule),
            }
        }
    }
    bounds: list[Any] = []
    if low > 0:
        bounds.append({"$gte": [matching, low]})
    if high is not None:
        bounds.append({"$lte": [matching, high]})
    counted = {"$expr": bounds[0] if len(bounds) == 1 else {"$and": bounds}}
    # The cheap $elemMatch first: frames without any matching ROI are
    # rejected before the expression runs.
    return {"$and": [any_matching, counted]} if low > 0 else counted


def _source_match(rule: SourceMatch) -> dict[str, Any]:
    element: dict[str, Any] = {}
    width = _range(
        Bound(rule.min_width) if rule.min_width is not None else None,
        Bound(rule.max_width) if rule.max_width is not None else None,
    )
    if width:
        element["width"] = width
    height = _range(
        Bound(rule.min_height) if rule.min_height is not None else None,
        Bound(rule.max_height) if rule.max_height is not None else None,
    )
    if height:
        element["height"] = height
    if rule.content_type is not None:
        element["content_type"] = {"$eq": rule.content_type}
    if rule.source_id is not None:
        element["id"] = {"$eq": rule.source_id}
    uri: dict[str, Any] = {}
    if rule.uri is not None:
        uri["$eq"] = rule.uri
    if rule.uri_prefix is not None:
        # The prefix is escaped: it is matched literally, never as a pattern.
        uri["$regex"] = "^" + re.escape(rule.uri_prefix)
    if uri:
        element["uri"] = uri
    if not element:
        return {"sources.0": {"$exists": True}}
    return {"sources": {"$elemMatch": element}}
