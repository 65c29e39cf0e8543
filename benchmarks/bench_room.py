"""Latency heard in a real LiveKit room: ours vs `livekit.plugins.cartesia`, same run.

A local LiveKit server, the OpenAI-compatible stand-in, and three workers as users run them
(`python -m agent start`), each with its own Cartesia emulator process (so each one's
billed characters are its own): ours with speculative TTS (`PREEMPTIVE_TTS=on`, the
default), ours with `PREEMPTIVE_TTS=off`, and the official plugin (`TTS_PLUGIN=livekit`).
The workers differ in nothing else (same VAD, endpointing and preemptive generation of the
LLM). A participant speaks eSpeak questions into a fresh room per turn over WebRTC and
measures from the end of its speech to the first voiced frame of the agent's reply as
received. Rooms alternate between the workers, turn by turn, so all see the same machine
load. Then the same question with a 0.35 s pause in it (hesitant turns: what discarded
speculative replies cost), interrupted turns (a ~30 s story, talked over ~3.5 s in), and
N rooms at once (1, 4, 8) on one worker of ours. Report: `room_report.py`.

    python -m benchmarks.bench_room [--turns 20] [--hesitant 4] [--interrupted 5]
        [--rooms 1,4,8] [--worker-setting NAME=VALUE ...] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from agent.dev.livekit_server import LocalServer, ensure_binary
from agent.dev.local_openai import FakeOpenAI
from agent.dev.local_stack import server_settings, worker_env
from agent.dev.worker_process import WorkerProcess
from agent.settings import Settings
from plugin_cartesia_ws.emulator.state import DEV_API_KEY

from .emulator import Emulator
from .room_report import WORKERS, plot, report, stages
from .room_turns import (
    HESITANT_PARTS,
    QUESTION,
    REPLIES,
    Billing,
    Script,
    hesitant_question,
    interrupted_turn,
    spoken_turn,
)

RESULTS = Path(__file__).parent / "results"
# worker name -> its settings (beyond the shared ones)
WORKER_SETTINGS = {
    "ours": {"TTS_PLUGIN": "cartesia_ws", "PREEMPTIVE_TTS": "on"},
    "ours_nospec": {"TTS_PLUGIN": "cartesia_ws", "PREEMPTIVE_TTS": "off"},
    "baseline": {"TTS_PLUGIN": "livekit"},
}


class HasUrl(Protocol):
    @property
    def url(self) -> str: ...


def bench_worker_env(
    settings: Settings, emulator: HasUrl, openai: FakeOpenAI, **overrides: str
) -> dict[str, str]:
    """A worker's environment for the benchmarks' server, emulator process and stand-in."""
    env = worker_env(
        settings, openai=openai, CARTESIA_API_KEY=DEV_API_KEY, CARTESIA_BASE_URL=emulator.url
    )
    return {**env, **overrides}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="bench-room-"))
    server = LocalServer(ensure_binary(), log_path=logs / "livekit-server.log").start()
    script = Script()
    settings = server_settings(server)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(server.stop)
        emulators = {w: await stack.enter_async_context(Emulator()) for w in WORKERS}
        openai = await FakeOpenAI(
            replies=script.answer, transcripts=script.transcribe, ttft=0.3, token_interval=0.025
        ).start()
        stack.push_async_callback(openai.aclose)
        workers: dict[str, WorkerProcess] = {}
        for name in WORKERS:
            # slots: ours takes the largest round of rooms at once, plus the rooms of the
            # last one still closing; the others one room at a time (and one closing)
            slots = 2 * max(args.rooms) + 2 if name == "ours" else 2
            env = bench_worker_env(
                settings,
                emulators[name],
                openai,
                WORKER_MAX_JOBS=str(slots),
                AGENT_NAME=name,
                **args.worker_settings,
                **WORKER_SETTINGS[name],
            )
            workers[name] = WorkerProcess(env, log_path=logs / f"worker-{name}.log").start()
            stack.callback(workers[name].stop)
        for w in workers.values():
            await w.wait_registered(timeout=180)
        billing = {w: Billing(emulators[w]) for w in WORKERS}
        result = await _measure(args, server.url, settings, script, billing)
    # the workers have stopped: every log line is in
    for name, turns in result["turns"].items():
        for t in turns:
            t["stages"] = stages(workers[name].lines, t["room"], t["heard_ms"])
    print(f"server and worker logs: {logs}", file=sys.stderr)
    result["worker_settings"] = args.worker_settings
    return result


async def _measure(
    args: argparse.Namespace,
    url: str,
    settings: Settings,
    script: Script,
    billing: dict[str, Billing],
) -> dict[str, Any]:
    turns: dict[str, list[dict[str, Any]]] = {w: [] for w in WORKERS}
    lost = dict.fromkeys(WORKERS, 0)
    for i in range(args.turns):
        shape = i % len(REPLIES)
        for name in WORKERS:
            script.transcript, script.reply = QUESTION, REPLIES[shape]
            try:
                turn = await spoken_turn(url, settings, name, billing[name], 60)
            except TimeoutError:
                lost[name] += 1
                continue
            turns[name].append({**turn, "shape": shape, "reply_chars": len(REPLIES[shape])})
    hesitant: dict[str, list[dict[str, Any]]] = {w: [] for w in WORKERS}
    speech = hesitant_question()
    for i in range(args.hesitant):
        for name in WORKERS:
            script.segments = list(HESITANT_PARTS)
            script.transcript, script.reply = " ".join(HESITANT_PARTS), REPLIES[i % len(REPLIES)]
            with contextlib.suppress(TimeoutError):
                turn = await spoken_turn(url, settings, name, billing[name], 60, speech)
                hesitant[name].append({**turn, "reply_chars": len(script.reply)})
    script.segments = []
    interrupted: dict[str, list[dict[str, Any]]] = {w: [] for w in WORKERS}
    interrupted_lost = dict.fromkeys(WORKERS, 0)
    for _ in range(args.interrupted):
        for name in WORKERS:
            try:
                interrupted[name].append(
                    await interrupted_turn(url, settings, name, billing[name], script, 60)
                )
            except TimeoutError:
                interrupted_lost[name] += 1
    script.transcript, script.reply = QUESTION, REPLIES[0]
    scale: dict[str, list[float]] = {}
    failed: dict[str, int] = {}
    for n in args.rooms:
        samples: list[float] = []
        failed[str(n)] = 0
        for _ in range(args.scale_rounds):
            outcomes = await asyncio.gather(
                *(spoken_turn(url, settings, "ours", billing["ours"], 120) for _ in range(n)),
                return_exceptions=True,
            )
            samples += [o["heard_ms"] for o in outcomes if isinstance(o, dict)]
            failed[str(n)] += sum(1 for o in outcomes if not isinstance(o, dict))
        scale[str(n)] = samples
    return {
        "latency_ms": {w: [t["heard_ms"] for t in turns[w]] for w in WORKERS},
        "latency_failed": lost,
        "turns": turns,
        "shapes": REPLIES,
        "hesitant": hesitant,
        "interrupted": interrupted,
        "interrupted_failed": interrupted_lost,
        "scale_ms": scale,
        "scale_failed": failed,
        "cores": os.cpu_count(),
    }


def run_and_save(
    work: Coroutine[Any, Any, dict[str, Any]],
    out: Path,
    stem: str,
    report: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    """Run `work`, time it, write `<stem>.json` and the report `<stem>.md` into `out`, print
    the report."""
    started = time.perf_counter()
    result = asyncio.run(work)
    result["seconds"] = round(time.perf_counter() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    text = report(result)
    (out / f"{stem}.md").write_text(text + "\n")
    print(text)
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--turns", type=int, default=20, help="spoken turns per worker (20)")
    p.add_argument(
        "--interrupted",
        type=int,
        default=5,
        help="interrupted turns per worker (5, at most --turns)",
    )
    p.add_argument(
        "--hesitant",
        type=int,
        default=4,
        help="turns per worker of the question with a 0.35 s pause in it (4, at most --turns)",
    )
    p.add_argument("--rooms", default="1,4,8", help="concurrent rooms for the scale run")
    p.add_argument("--scale-rounds", type=int, default=3, help="rounds of N rooms at once (3)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="5 turns per worker, 2 hesitant, 2 interrupted, rooms 1,4",
    )
    p.add_argument(
        "--worker-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a worker setting for all three workers alike (e.g. VAD_MIN_SILENCE=0.2)",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="where room.json/.md/.png go")
    args = p.parse_args(argv)
    args.rooms = [int(x) for x in args.rooms.split(",")]
    args.worker_settings = dict(s.split("=", 1) for s in args.worker_setting)
    if set(args.worker_settings) & {"TTS_PLUGIN", "PREEMPTIVE_TTS", "AGENT_NAME"}:
        p.error("TTS_PLUGIN, PREEMPTIVE_TTS and AGENT_NAME are what tells the workers apart")
    if args.quick:
        args.turns, args.interrupted, args.hesitant = 5, 2, 2
        args.rooms, args.scale_rounds = [1, 4], 2
    args.interrupted = min(args.interrupted, args.turns)
    args.hesitant = min(args.hesitant, args.turns)
    result = run_and_save(run(args), args.out, "room", report)
    plot(result, args.out / "room.png")


if __name__ == "__main__":
    main()
