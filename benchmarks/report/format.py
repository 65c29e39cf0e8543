"""How numbers and tables look in the benchmark report (shared by targets and markdown)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..common import BASELINE, FLOOR, SHAPES

NAMES = {
    "ours-clause": "ours (clause)",
    "ours-sentence": "ours (sentence)",
    "ours-tokens": "ours (tokens)",
    BASELINE: "baseline",
    FLOOR: "floor (least possible)",
}
SHAPES_LABEL = {s.name: s.label for s in SHAPES}


def num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def cell(summary: dict[str, Any] | None, digits: int = 0) -> str:
    """median (p5–p95) in ms."""
    if not summary or not summary.get("n"):
        return "–"
    med, lo, hi = summary["median"], summary["p5"], summary["p95"]
    return f"{num(med, digits)} ({num(lo, digits)}–{num(hi, digits)})"


def times(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def ran(section: Any) -> bool:
    """The benchmark ran (a skipped one holds only its reason)."""
    return isinstance(section, dict) and "skipped" not in section


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table: the header, its rule, one line a row."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(str(value) for value in row) + " |" for row in rows),
    ]
