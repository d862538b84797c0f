"""Query strings of ``DataView.add_query``, composed into the one query a selection carries.

The service reads the query language of the reference product as well as its
own: ``label.keyword:"Car" AND NOT occluded`` (a term without a field is a
label), ``metadata.city:"bremen"``, ``width:[640 TO *]`` mean the same as
``label:"Car" AND NOT label:occluded``, ``meta.city:"bremen"`` and
``source.width:[640 TO *]``, in every client language. So the SDK sends what
the user wrote; it only turns a list of labels into a query and ANDs the parts.
"""

from __future__ import annotations

from collections.abc import Sequence


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def roi_query_text(query: str | Sequence[str] | None) -> str:
    """An ROI query: a label, a list of labels (any of them), or a Lucene-style string (as written)."""
    if query is None:
        return ""
    if isinstance(query, str):
        return query.strip()
    return " OR ".join(f"label:{_quote(label)}" for label in query if label)


def combine_queries(*queries: str | None) -> str:
    """ANDs the non-empty queries, each in parentheses; a single query is sent unchanged."""
    parts = [q.strip() for q in queries if q and q.strip()]
    if len(parts) == 1:
        return parts[0]
    return " AND ".join(f"({q})" for q in parts)
