"""Smoke test of ``python -m benchmarks``: a tiny run in a subprocess (its own emulator
process too). Asserts structure only (files written, every section present, audio integrity
true), never timings: those are measured by the benchmarks, not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.common import SHAPES

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("corpus", "ttfa", "e2e", "barge_in", "scale")
TINY = [
    "--quick",
    "--turns=1",
    "--cold-turns=1",
    "--e2e-turns=0",  # AgentSession + Silero: covered by `python -m benchmarks --quick` in CI
    "--barge-turns=2",
    "--levels=1,3",
    "--scale-samples=1",
    "--mem-streams=3",
]


@pytest.mark.timeout(110)
def test_benchmarks_run_and_write_a_complete_report(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", *TINY, f"--out={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]

    results = json.loads((tmp_path / "latest.json").read_text())
    markdown = (tmp_path / "latest.md").read_text()
    assert "## Targets" in markdown and "## 5. Audio integrity" in markdown
    for name in results["meta"]["plots"]:
        assert (tmp_path / name).stat().st_size > 0

    for section in SECTIONS:
        assert section in results, section
    assert results["e2e"] == {"skipped": "e2e_turns=0 (smoke setting)"}
    for section in ("ttfa", "barge_in", "scale"):
        integrity = results[section]["integrity"]
        assert integrity["checked"] > 0 and integrity["all_ok"], (section, integrity)

    shapes = results["ttfa"]["shapes"]
    assert list(shapes) == [shape.name for shape in SHAPES]
    assert {s["group"] for s in shapes.values()} == {"early", "long", "short"}
    assert set(results["ttfa"]["per_shape"]["ratios"]) == set(shapes)
    corpus = results["corpus"]
    assert corpus["corpus"]["replies"] >= 300
    policies = corpus["policies"]
    assert (
        sum(policies["clause (deadline 250 ms)"]["reasons"].values()) == corpus["corpus"]["replies"]
    )
    assert set(results["ttfa"]["overall"]["engines"]) == {
        "ours-clause",
        "ours-sentence",
        "ours-tokens",
        "baseline",
    }
    assert set(results["barge_in"]["engines"]) == {"ours-clause", "baseline"}
    for engine in ("ours-clause", "baseline", "floor"):
        assert [lv["streams"] for lv in results["scale"]["levels"][engine]] == [1, 3], engine
    assert results["targets"] and all(
        t["status"] in ("PASS", "MISS", "n/a") for t in results["targets"]
    )
