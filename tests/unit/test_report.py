"""benchmarks.report: the committed run renders to a report whose tables are well formed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.report.format import table

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "latest.json"


def test_table_has_header_rule_and_one_line_a_row() -> None:
    assert table(("a", "b"), [(1, "x"), (2, "y")]) == [
        "| a | b |",
        "|---|---|",
        "| 1 | x |",
        "| 2 | y |",
    ]


def test_the_committed_run_renders_every_section_with_whole_tables() -> None:
    results = json.loads(RESULTS.read_text())
    results["targets"] = report.targets(results)
    text = report.markdown(results)
    for heading in ("## Targets", "## 1. ", "## 2. ", "## 3. ", "## 4. ", "## 5. Audio integrity"):
        assert heading in text
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if set(line) == set("|-")]
    assert len(rules) >= 7
    for i in rules:
        columns = lines[i].count("---")
        assert lines[i - 1].count(" | ") == columns - 1, lines[i - 1]
        row = i + 1
        while row < len(lines) and lines[row].startswith("|"):
            assert lines[row].count("|") == columns + 1, lines[row]
            row += 1


def test_the_committed_run_plots_every_figure(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    written = report.plots(json.loads(RESULTS.read_text()), tmp_path)
    assert written == ["ttfa.png", "e2e.png", "barge_in.png", "scale.png"]
    assert all((tmp_path / name).stat().st_size > 0 for name in written)


def test_the_committed_run_reads_the_cpu_ratio_against_the_floor() -> None:
    results = json.loads(RESULTS.read_text())
    levels = results["scale"]["levels"]
    assert [lv["streams"] for lv in levels["floor"]] == [lv["streams"] for lv in levels["baseline"]]
    cpu = next(t for t in report.targets(results) if t["name"].startswith("client CPU per second"))
    at8 = {v: next(lv for lv in levels[v] if lv["streams"] == 8) for v in ("floor", "baseline")}
    floor_ratio = at8["floor"]["client_cpu_per_audio_s"] / at8["baseline"]["client_cpu_per_audio_s"]
    assert f"the floor (no plugin work at all): {floor_ratio:.2f}x" in cpu["note"]
