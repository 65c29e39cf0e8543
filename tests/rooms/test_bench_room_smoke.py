"""The room benchmark stays runnable: one turn per plugin and one room, in a real server."""

from __future__ import annotations

import json
from pathlib import Path

from agent.dev.livekit_server import LocalServer
from benchmarks import bench_room


def test_room_benchmark_runs_both_plugins(livekit_server: LocalServer, tmp_path: Path) -> None:
    bench_room.main(["--turns", "1", "--rooms", "1", "--scale-rounds", "1", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "room.json").read_text())
    assert len(result["latency_ms"]["ours"]) == len(result["latency_ms"]["baseline"]) == 1
    assert all(v > 0 for v in result["latency_ms"]["ours"] + result["latency_ms"]["baseline"])
    assert (tmp_path / "room.png").stat().st_size > 0
    assert "p50 ratio ours / baseline" in (tmp_path / "room.md").read_text()
