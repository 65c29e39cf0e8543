"""Smoke test of ``python -m benchmarks.bench_pacing --quick``: one short reply, cut once and
played whole, on each engine. Checks the report's structure and what must hold whatever the
timing (every word said once at the server; an unpaced engine bills the whole reply), never
a timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.pacing_report import ENGINE_NAMES

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(150)
def test_pacing_benchmark_runs_and_reports_every_engine(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_pacing", "--quick", f"--out={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=140,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads((tmp_path / "pacing.json").read_text())
    assert "## Characters billed / characters heard" in (tmp_path / "pacing.md").read_text()

    cut = result["interrupted"]
    assert {row["engine"] for row in cut} == set(ENGINE_NAMES)
    assert all(row["error"] is None and row["billed"] > 0 for row in cut)
    for row in cut:  # the LLM pushed the whole reply within the first second
        if row["engine"] in ("ours unpaced", "official") and row["close_delay_s"] > 0:
            assert row["billed"] >= row["reply_chars"] - 2, row
    played = result["uninterrupted"]["realistic"]
    ours = [row for row in played if row["engine"].startswith("ours")]
    assert ours and all(row["words_ok"] and row["error"] is None for row in ours)
    assert set(result["ttfa"]) and all(v["ratio"] is not None for v in result["ttfa"].values())
    assert [t["status"] for t in result["targets"]] and all(
        t["status"] in ("PASS", "MISS", "n/a") for t in result["targets"]
    )
