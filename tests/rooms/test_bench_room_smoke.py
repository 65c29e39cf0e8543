"""The room benchmark stays runnable: one turn per worker (ours with and without speculative
TTS, the official plugin), one interrupted turn each and one room, in a real server."""

from __future__ import annotations

import json
from pathlib import Path

from agent.dev.livekit_server import LocalServer
from benchmarks import bench_room
from benchmarks.room_turns import STORY


def test_room_benchmark_runs_every_worker(livekit_server: LocalServer, tmp_path: Path) -> None:
    bench_room.main(
        ["--turns", "1", "--interrupted", "1", "--rooms", "1", "--scale-rounds", "1"]
        + ["--out", str(tmp_path)]
    )
    result = json.loads((tmp_path / "room.json").read_text())
    workers = ("ours", "ours_nospec", "baseline")
    for name in workers:
        (turn,) = result["turns"][name]
        assert turn["heard_ms"] > 0 and result["latency_ms"][name] == [turn["heard_ms"]]
        # every worker's own emulator billed its reply, and nothing else
        assert turn["billed_chars"] >= turn["reply_chars"] > 0
        assert turn["stages"]["e2e"] > 0  # its LiveKit metrics were found in its log
        assert len(result["hesitant"][name]) == 1
        (story,) = result["interrupted"][name]
        assert 0 < story["story_billed_chars"] <= len(STORY) + 10
    # paced, ours was billed for less of the story than the official plugin
    ours, official = (
        result["interrupted"][n][0]["story_billed_chars"] for n in ("ours", "baseline")
    )
    assert ours < official
    report = (tmp_path / "room.md").read_text()
    assert "p50 ratio ours / baseline" in report and "Where the time goes" in report
    assert (tmp_path / "room.png").stat().st_size > 0
