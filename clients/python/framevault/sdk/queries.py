"""Query strings of ``DataView.add_query``, brought to the fields the service knows.

Users of the reference product write Lucene-style queries such as
``label.keyword:"Car" AND NOT label.keyword:"occluded"`` for ROIs,
``meta.city:"bremen"`` for frames and ``width:[640 TO *]`` for sources. The
service accepts one Lucene-style query per selection over the fields
``label``, ``confidence``, ``meta.<path>`` and ``source.<field>``. This module
parses each query with ``luqum`` (no hand-rolled parser), renames the fields
people are used to, and ANDs the three queries into one. A query that does not
parse is passed on unchanged so the service reports the error with its
position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from luqum.exceptions import ParseError
from luqum.parser import parser
from luqum.tree import BaseApprox, Item, OpenRange, Range, SearchField, Term

ROI_FIELDS = {
    "label.keyword": "label",
    "labels": "label",
    "labels.keyword": "label",
    "rois.label": "label",
    "rois.labels": "label",
    "rois.label.keyword": "label",
    "rois.confidence": "confidence",
}
SOURCE_FIELD_NAMES = ("width", "height", "content_type", "uri", "id")


def _frame_field(name: str) -> str:
    for prefix in ("metadata.", "meta_data."):
        if name.startswith(prefix):
            return "meta." + name[len(prefix):]
    return name


def _source_field(name: str) -> str:
    for prefix in ("sources.", "src.", "source."):
        if name.startswith(prefix):
            return "source." + name[len(prefix):]
    return "source." + name if name in SOURCE_FIELD_NAMES else name


def _roi_field(name: str) -> str:
    return ROI_FIELDS.get(name, name)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rewrite(node: Item, rename: Callable[[str], str], default_field: str | None) -> Item:
    if isinstance(node, SearchField):
        node.name = rename(node.name)
        return node
    if default_field and isinstance(node, (Term, Range, BaseApprox, OpenRange)):
        head, tail = node.head, node.tail
        node.head = node.tail = ""
        return SearchField(default_field, node, head=head, tail=tail)
    children = node.children
    if children:
        node.children = [_rewrite(child, rename, default_field) for child in children]
    return node


def _normalize(query: str, rename: Callable[[str], str], default_field: str | None) -> str:
    text = query.strip()
    if not text:
        return ""
    try:
        tree = parser.parse(text)
    except (ParseError, ValueError, TypeError):
        return text
    return str(_rewrite(tree, rename, default_field))


def normalize_roi_query(query: str | Sequence[str] | None) -> str:
    """An ROI query: a label, a list of labels (any of them), or a Lucene-style string.

    Bare terms mean labels (``Car AND NOT occluded``); ``label.keyword`` and
    ``rois.label`` become ``label``.
    """
    if query is None:
        return ""
    if not isinstance(query, str):
        labels = [q for q in query if q]
        return " OR ".join(f"label:{_quote(label)}" for label in labels)
    return _normalize(query, _roi_field, "label")


def normalize_frame_query(query: str | None) -> str:
    """A frame query over ``meta.<path>`` (``metadata.<path>`` is accepted too)."""
    return _normalize(query or "", _frame_field, None)


def normalize_source_query(query: str | None) -> str:
    """A source query; ``width``, ``sources.width`` and ``src.width`` become ``source.width``."""
    return _normalize(query or "", _source_field, None)


def combine_queries(*queries: str) -> str:
    """ANDs the non-empty queries, each in parentheses."""
    parts = [q for q in queries if q]
    if len(parts) == 1:
        return parts[0]
    return " AND ".join(f"({q})" for q in parts)
