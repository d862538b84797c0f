"""Rows of the result table: values, targets, verdicts, and how they are printed."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Target:
    """What a row should reach: ``subject`` (``ratio`` or ``service``) ``op`` ``value``; ``op`` "report" = none."""

    subject: str
    op: str
    value: float = 0.0
    unit: str = ""

    def text(self) -> str:
        if self.op == "report":
            return "report"
        subject = "ratio" if self.subject == "ratio" else "value"
        return f"{subject} {self.op} {self.value:g}{self.unit}"

    def verdict(self, service: float | None, ratio: float | None) -> str:
        if self.op == "report":
            return "report"
        measured = ratio if self.subject == "ratio" else service
        if measured is None:
            return "n/a"
        if self.op == ">=":
            return "pass" if measured >= self.value else "miss"
        if self.op == "<=":
            return "pass" if measured <= self.value else "miss"
        return "pass" if measured == self.value else "miss"


REPORT_ONLY = Target("ratio", "report")


@dataclass
class Row:
    id: str
    what: str
    unit: str
    service: float | None
    raw: float | None
    target: Target
    conditions: str
    # Ratio service ÷ raw unless a row defines it otherwise (stated in ``what``).
    ratio: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    verdict: str = ""

    def __post_init__(self) -> None:
        if self.ratio is None and self.service is not None and self.raw:
            self.ratio = self.service / self.raw
        if not self.verdict:
            self.verdict = self.target.verdict(self.service, self.ratio)


def failed_row(row_id: str, what: str, error: BaseException, conditions: str = "") -> Row:
    return Row(row_id, what, "", None, None, REPORT_ONLY, conditions, verdict="error",
               details={"error": f"{type(error).__name__}: {error}"[:2000]})


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if abs(value) >= 100 or value == int(value):
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def format_table(rows: list[Row]) -> str:
    header = ("id", "what", "service", "raw baseline", "ratio", "target", "result")
    lines = [(r.id, r.what, _number(r.service, r.unit), _number(r.raw, r.unit),
              "—" if r.ratio is None else f"{r.ratio:.2f}", r.target.text(), r.verdict) for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]

    def render(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [render(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [render(line) for line in lines]
    return "\n".join(out)


def format_conditions(rows: list[Row]) -> str:
    out = []
    first_with: dict[str, str] = {}
    for row in rows:
        text = row.conditions
        if text and text in first_with:
            text = f"as {first_with[text]}"
        elif text:
            first_with[text] = row.id
        if row.verdict == "error":
            text = f"{text} ERROR: {row.details.get('error', '')}".strip()
        out.append(f"- {row.id}: {text}")
    return "\n".join(out)


def write_json(path: Path, run: dict[str, Any], rows: list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**run, "rows": [asdict(r) for r in rows]}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
