"""How the benchmarks measure: statistics of samples, ratios, target lines, and the garbage
collector kept out of the measured windows."""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from typing import Any

import numpy as np


def settle_heap() -> None:
    """Collect, then freeze what is alive (imports, warm engines) out of the collector's
    view: otherwise a full collection of this process's ~170k objects (~100 ms on the
    reference machine) lands at random inside measured windows, whichever engine runs."""
    gc.collect()
    gc.freeze()


class GcWatch:
    """Counts the collector's runs and its longest pause while a measurement runs."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.max_pause_ms = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.collections[info["generation"]] += 1
            self.max_pause_ms = max(self.max_pause_ms, (time.perf_counter() - self._started) * 1000)

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, Any]:
        return {"collections": self.collections, "max_pause_ms": round(self.max_pause_ms, 1)}


def summarize(values_s: Sequence[float | None]) -> dict[str, Any]:
    """Milliseconds: median, p5/p95, quartiles, min/max of the given seconds."""
    vals = np.asarray([v for v in values_s if v is not None], dtype=float) * 1000.0
    if vals.size == 0:
        return {"n": 0}
    p5, q1, med, q3, p95 = np.percentile(vals, [5, 25, 50, 75, 95])
    return {
        "n": int(vals.size),
        "median": round(float(med), 1),
        "p5": round(float(p5), 1),
        "p95": round(float(p95), 1),
        "q1": round(float(q1), 1),
        "q3": round(float(q3), 1),
        "min": round(float(vals.min()), 1),
        "max": round(float(vals.max()), 1),
        "mean": round(float(vals.mean()), 1),
    }


def raw_ms(values_s: Sequence[float | None]) -> list[float]:
    """The individual values in milliseconds (kept in the JSON for plots and re-analysis)."""
    return [round(v * 1000.0, 2) for v in values_s if v is not None]


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def target(
    name: str, goal: str, value: str, passed: bool | None, margin: str = "", note: str = ""
) -> dict[str, Any]:
    """One target line: PASS / MISS (by how much) / n/a. Timings are reported, never asserted."""
    status = "n/a" if passed is None else ("PASS" if passed else "MISS")
    return {
        "name": name,
        "goal": goal,
        "value": value,
        "status": status,
        "margin": margin,
        "note": note,
    }
