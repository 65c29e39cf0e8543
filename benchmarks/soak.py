"""Soak: many turns with random interruptions, dropped sockets, stalls and error frames
against the emulator (in its own process), then a check that nothing leaked.

    python -m benchmarks.soak --turns 1000      # the full soak (a few minutes)
    python -m benchmarks.soak --turns 60        # what CI runs (tests/test_soak_smoke.py)

Every turn that completes must have delivered intact audio: byte-identical to what the
emulator sent when nothing went wrong, and every word exactly once (from the aligned
transcript) when the turn was resumed on a new socket. At the end: no leaked asyncio tasks,
file descriptors or sockets, and RSS reported at the start and the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from livekit.agents import APIConnectOptions, APIError

import plugin_cartesia_ws
from agent.dev.scripted import StreamedTurn, TokenPlan, llm_tokens, stream_turn
from plugin_cartesia_ws import ReconnectPolicy
from plugin_cartesia_ws.emulator import EmulatorProcess

EMULATOR_ARGS = (
    "--ttfa-ms", "5", "--rtf", "40", "--chunk-ms", "100", "--voice", "tone",
    "--log-level", "WARNING",
)  # fmt: skip
API_KEY = "sk_car_emulator_dev_key"
# A short watchdog so stalls resolve quickly; the plugin's own default is LiveKit's 10 s.
CONN = APIConnectOptions(max_retry=0, timeout=0.5)
SCENARIOS = {
    "normal": 0.50,
    "interrupt": 0.10,
    "drop": 0.06,
    "stall": 0.06,
    "error": 0.06,
    # issue 10's orders: a drop while the LLM pauses, timings before their audio or only per
    # generation (with a drop), a missing done, a server pause shorter or longer than timeout
    "pause_drop": 0.04,
    "timings_first": 0.05,
    "per_generation": 0.05,
    "no_done": 0.04,
    "pause": 0.04,
}
LLM_PAUSE_S = 1.0  # scenario pacing: the LLM thinks this long mid-reply (> CONN.timeout)
RESULTS = Path(__file__).parent / "results"


@dataclass
class SoakReport:
    turns: int
    outcomes: Counter[str] = field(default_factory=Counter)
    integrity_failures: list[str] = field(default_factory=list)
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    tasks_start: int = 0
    tasks_end: int = 0
    fds_start: int = 0
    fds_end: int = 0
    sockets_end: int = 0
    sockets_opened: int = 0
    seconds: float = 0.0

    @property
    def leaks(self) -> list[str]:
        found = []
        if self.tasks_end > self.tasks_start:
            found.append(f"asyncio tasks {self.tasks_start} -> {self.tasks_end}")
        if self.fds_end > self.fds_start:
            found.append(f"file descriptors {self.fds_start} -> {self.fds_end}")
        if self.sockets_end:
            found.append(f"{self.sockets_end} TCP connections still open")
        return found

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcomes"] = dict(self.outcomes)
        data["leaks"] = self.leaks
        return data


def _text(turn: int, rng: random.Random) -> str:
    sentences = [
        f"This is turn number {turn}.",
        "The weather is sunny with a light breeze.",
        "Would you like to hear more?",
        "Here is another sentence, with a clause.",
    ]
    return " ".join(rng.sample(sentences, k=rng.randint(1, 3)))


def _plan(text: str, *, pause: bool) -> TokenPlan:
    """Tokens like an LLM, at once; with ``pause``, it stops to think after the first sentence."""
    tokens = llm_tokens(text)
    cut = tokens.index(".") + 1 if pause and "." in tokens else len(tokens)
    return [(0.0 if i < cut else LLM_PAUSE_S, token) for i, token in enumerate(tokens)]


async def _fault(http: aiohttp.ClientSession, url: str, **fault: Any) -> None:
    async with http.post(f"{url}/_emulator/faults", json=fault) as resp:
        resp.raise_for_status()


async def _server_sha(http: aiohttp.ClientSession, url: str, context_id: str) -> str | None:
    async with http.get(f"{url}/_emulator/contexts/{context_id}") as resp:
        if resp.status != 200:
            return None
        return str((await resp.json())["turn_audio_sha256"])  # all of the turn's contexts


async def _one_turn(
    tts: plugin_cartesia_ws.TTS,
    http: aiohttp.ClientSession,
    url: str,
    turn: int,
    scenario: str,
    rng: random.Random,
    report: SoakReport,
) -> None:
    text = _text(turn, rng)
    if scenario == "drop":
        await _fault(http, url, kind="drop", after_chunks=rng.randint(1, 6), times=1)
    elif scenario == "stall":
        await _fault(http, url, kind="stall_after", after_chunks=rng.randint(1, 6), times=1)
    elif scenario == "error":
        await _fault(http, url, kind="error", status=500, after_chunks=rng.randint(0, 3), times=1)
    elif scenario == "pause_drop":
        await _fault(http, url, kind="drop_idle", seconds=0.6, times=1)
        text = f"First, a sentence before the pause. {text}"
    elif scenario in ("timings_first", "per_generation"):
        order = "timings_first" if scenario == "timings_first" else "timings_per_generation"
        await _fault(http, url, kind=order, times=1)
        await _fault(http, url, kind="drop", after_chunks=rng.randint(1, 6), times=1)
    elif scenario == "no_done":
        await _fault(http, url, kind="no_done", times=1)
    elif scenario == "pause":
        seconds = rng.choice([0.2, 0.8])  # shorter, then longer than CONN.timeout
        await _fault(http, url, kind="pause", after_chunks=rng.randint(1, 4), seconds=seconds)
    interrupt_after = 4800 * rng.randint(1, 4)  # 0.1 to 0.4 s of audio

    def barge_in(streamed: StreamedTurn) -> bool:
        return scenario == "interrupt" and len(streamed.audio) > interrupt_after

    try:  # a barge-in closes the stream like AgentSession
        result = await stream_turn(
            tts, _plan(text, pause=scenario == "pause_drop"), conn_options=CONN, until=barge_in
        )
    except APIError as exc:
        report.outcomes[f"{scenario}: error ({type(exc).__name__})"] += 1
        return
    if barge_in(result):
        report.outcomes["interrupt: cancelled"] += 1
        return
    stats = result.stream.stats
    if stats is None or not stats.done:
        report.outcomes[f"{scenario}: incomplete"] += 1
        report.integrity_failures.append(f"turn {turn} ({scenario}) ended without done")
        return
    outcome = "resumed" if stats.resumes else "completed"
    report.outcomes[f"{scenario}: {outcome}"] += 1
    if stats.resumes:
        heard = "".join(str(t) for t in result.transcript)
        if heard.split() != text.split():
            report.integrity_failures.append(
                f"turn {turn} ({scenario}): heard {heard!r} for {text!r}"
            )
    else:
        expected = await _server_sha(http, url, stats.context_id)
        if expected != result.sha256:
            report.integrity_failures.append(f"turn {turn}: audio differs from the server's")


async def run_soak(turns: int, seed: int = 7) -> SoakReport:
    report = SoakReport(turns=turns)
    proc = psutil.Process()
    rng = random.Random(seed)
    gc.collect()
    report.tasks_start = len(asyncio.all_tasks())
    report.fds_start = proc.num_fds()
    report.rss_start_mb = proc.memory_info().rss / 2**20
    started = time.perf_counter()
    with EmulatorProcess(*EMULATOR_ARGS) as emulator:
        emulator_port = int(emulator.url.rsplit(":", 1)[1])
        async with aiohttp.ClientSession() as http:
            tts = plugin_cartesia_ws.TTS(
                api_key=API_KEY,
                base_url=emulator.url,
                http_session=http,
                reconnect_policy=ReconnectPolicy(base_delay_s=0.01, max_delay_s=0.05),
                text_pacing=False,  # paced turns last as long as their audio; they have
                # their own order and property tests (tests/plugin/test_pacing.py, tests/unit)
            )
            names, weights = zip(*SCENARIOS.items(), strict=True)
            for turn in range(turns):
                scenario = rng.choices(names, weights)[0]
                await _one_turn(tts, http, emulator.url, turn, scenario, rng, report)
            report.sockets_opened = tts.pool.sockets_opened
            await tts.aclose()
        report.seconds = time.perf_counter() - started
    await asyncio.sleep(0)  # let closed transports run their callbacks
    gc.collect()
    report.tasks_end = len(asyncio.all_tasks())
    report.fds_end = proc.num_fds()
    # connections to or from this soak's emulator only: other servers may share the process
    # (the test suite's session-wide room fixtures keep their own connections open)
    report.sockets_end = len(
        [
            c
            for c in proc.net_connections(kind="tcp")
            if c.status != "LISTEN" and emulator_port in (c.laddr.port, c.raddr and c.raddr.port)
        ]
    )
    report.rss_end_mb = proc.memory_info().rss / 2**20
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    report = asyncio.run(run_soak(args.turns, args.seed))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(report.to_dict(), indent=2))
    print(f"{report.turns} turns in {report.seconds:.1f}s, {report.sockets_opened} sockets opened")
    for outcome, count in sorted(report.outcomes.items()):
        print(f"  {outcome:32} {count}")
    print(f"RSS {report.rss_start_mb:.1f} MB -> {report.rss_end_mb:.1f} MB")
    print(
        f"tasks {report.tasks_start} -> {report.tasks_end}, fds {report.fds_start} -> {report.fds_end}"
    )
    print("integrity failures:", report.integrity_failures or "none")
    print("leaks:", report.leaks or "none")
    raise SystemExit(1 if report.integrity_failures or report.leaks else 0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
