"""Sessions per core: the worker alone on one core, N sessions at once, until latency grows.

The earlier density figure had the participants, the server and the worker share 2 cores,
so it measured the rig. Here the worker (`python -m agent start`, every job process or
thread of it) runs on core 0 and everything else on core 1 (`sched_setaffinity`, what
`taskset` does; children inherit it): the LiveKit server, the emulator (tone voice, its
own process), the OpenAI stand-in (a fixed transcript and reply, ~no CPU) and the
participants. Each of N rooms has a participant that speaks a question, waits for the
whole reply, and speaks again; the latency heard is from the end of its speech to the
first voiced frame of the reply as received over WebRTC.

N grows over `--levels` until the p95 heard latency exceeds 1.2x the single-session p95:
the last N within it is the sessions per core. Per level: the worker's CPU (all its
processes, user + system, over the turns) per session, and its memory (PSS, so pages
shared between processes count once) per session. Each case gets a fresh worker per level
with WORKER_MAX_JOBS=N, so its N warm processes are ready before the rooms open. Cases:
LiveKit's process-per-job executor and the thread executor, our plugin and the official.

    python -m benchmarks.bench_density [--cases ours-process,...] [--levels 1,4,8] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from agent.dev.livekit_server import LocalServer, ensure_binary
from agent.dev.local_openai import FakeOpenAI
from agent.dev.local_stack import server_settings
from agent.dev.room_user import RoomUser
from agent.dev.worker_process import WorkerProcess
from agent.settings import Settings
from agent.simulate import espeak_utterance
from agent.token import make_token
from plugin_cartesia_ws.emulator import EmulatorProcess

from .bench_room import bench_worker_env, run_and_save

RESULTS = Path(__file__).parent / "results"
WORKER_CORE, RIG_CORE = {0}, {1}
QUESTION = "What should I cook for dinner tonight?"
REPLY = "How about a simple pasta with garlic, olive oil and a little chili?"
CASES = {  # name: (TTS_PLUGIN, WORKER_JOB_EXECUTOR)
    "ours-process": ("cartesia_ws", "process"),
    "ours-thread": ("cartesia_ws", "thread"),
    "official-process": ("livekit", "process"),
    "official-thread": ("livekit", "thread"),
}
LIMIT = 1.2  # p95 at N over p95 of one session


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else float("nan")


def worker_tree(worker: WorkerProcess) -> list[psutil.Process]:
    proc = worker.process.proc
    assert proc is not None
    root = psutil.Process(proc.pid)
    return [root, *root.children(recursive=True)]


def rig_tree(worker_procs: list[psutil.Process]) -> list[psutil.Process]:
    """This process and its children except the worker's: the rig on the other core."""
    skip = {p.pid for p in worker_procs}
    me = psutil.Process()
    return [p for p in [me, *me.children(recursive=True)] if p.pid not in skip]


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return out


def pss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for p in procs:
        try:
            total += p.memory_full_info().pss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


async def wait_warm(worker: WorkerProcess, timeout: float = 180.0) -> None:
    """Until every job process (or thread) LiveKit has started is initialized (prewarm loads
    Silero in each) and no new one has started for a second."""

    def counts() -> tuple[int, int]:
        started = len(worker.messages("initializing process")) + len(
            worker.messages("initializing job runner")
        )
        done = len(worker.messages("process initialized")) + len(
            worker.messages("job runner initialized")
        )
        return started, done

    deadline = time.monotonic() + timeout
    stable_since, last = time.monotonic(), counts()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)  # polling the log: LiveKit gives no event for this
        now = counts()
        if now != last or now[0] != now[1] or now[0] == 0:
            stable_since, last = time.monotonic(), now
        elif time.monotonic() - stable_since >= 1.0:
            return


async def session(
    url: str,
    token: str,
    pcm: np.ndarray,
    turns: int,
    offset: float,
    ready: asyncio.Barrier,
    go: asyncio.Event,
) -> list[float]:
    """One room: wait for the agent, then for the signal to talk, then `turns` questions;
    the latencies heard (s)."""
    heard: list[float] = []
    async with RoomUser(url, token) as user:
        await user.wait_for_agent(timeout=120)
        await user.wait_for_agent_state("listening", after=0.0, timeout=120)
        await ready.wait()
        await go.wait()
        await asyncio.sleep(offset)  # spread the rooms' turns over time (the load shape)
        for _ in range(turns):
            said = user.say(pcm)
            await said.done.wait()
            first = await user.wait_for_agent_audio(after=said.voice_end, timeout=60)
            await user.wait_for_reply_end(after=first, timeout=60)
            heard.append(first - said.voice_end)
    return heard


async def level(case: str, n: int, turns: int, rig: dict[str, Any], logs: Path) -> dict[str, Any]:
    """N sessions at once on a fresh worker of `case`."""
    plugin, executor = CASES[case]
    server: LocalServer = rig["server"]
    agent = f"density-{case}-{n}"
    env = {
        **rig["env"],
        "AGENT_NAME": agent,
        "TTS_PLUGIN": plugin,
        "WORKER_JOB_EXECUTOR": executor,
        "WORKER_MAX_JOBS": str(n),
    }
    os.sched_setaffinity(0, WORKER_CORE)  # the worker (and every process it starts) on core 0
    try:
        worker = WorkerProcess(env, log_path=logs / f"worker-{agent}.log").start()
    finally:
        os.sched_setaffinity(0, RIG_CORE)
    try:
        await worker.wait_registered(timeout=180)
        await wait_warm(worker)
        idle_mb = pss_mb(worker_tree(worker))
        settings: Settings = rig["settings"]
        tokens = [
            make_token(
                settings, room=f"{agent}-{uuid.uuid4().hex[:6]}", identity="user", agent_name=agent
            )
            for _ in range(n)
        ]
        # one session: more turns, for a p95 of its own
        turns_here = max(turns, 10) if n == 1 else turns
        ready, go = asyncio.Barrier(n + 1), asyncio.Event()
        tasks = [
            asyncio.create_task(
                session(server.url, t, rig["pcm"], turns_here, i * 2.5 / n, ready, go)
            )
            for i, t in enumerate(tokens)
        ]
        # the measured window: from when every room has its agent to the last reply
        all_ready = asyncio.create_task(ready.wait())
        await asyncio.wait([all_ready, *tasks], timeout=300, return_when=asyncio.FIRST_COMPLETED)
        if not all_ready.done():  # a room never got its agent: the level fails
            await ready.abort()
        # the processes LiveKit starts to replace the ones the jobs took warm up first
        await wait_warm(worker)
        procs = worker_tree(worker)
        rig_procs = rig_tree(procs)
        cpu_before, t0 = cpu_seconds(procs), time.perf_counter()
        rig_before = cpu_seconds(rig_procs)
        go.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        window = time.perf_counter() - t0
        procs = worker_tree(worker)
        cpu_after = cpu_seconds(procs)
        busy_mb = pss_mb(procs)
        rig_after = cpu_seconds(rig_procs)
    finally:
        worker.stop(timeout=60)
    per_process = sorted(
        (round((cpu_after[pid] - cpu_before.get(pid, 0.0)) / window, 3) for pid in cpu_after),
        reverse=True,
    )
    used = sum(cpu_after.get(pid, 0.0) - cpu_before.get(pid, 0.0) for pid in cpu_after)
    rig_busy = sum(rig_after.get(pid, 0.0) - rig_before.get(pid, 0.0) for pid in rig_after)
    heard = [x for o in outcomes if isinstance(o, list) for x in o]
    failed = [repr(o) for o in outcomes if not isinstance(o, list)]
    e2e = [
        float(line["e2e_latency"])
        for line in worker.messages("agent turn:")
        if isinstance(line.get("e2e_latency"), int | float)
    ]
    return {
        "sessions": n,
        "turns": len(heard),
        "failed_sessions": failed,
        "heard_ms": [round(x * 1000, 1) for x in heard],
        "heard_p50_ms": round(statistics.median(heard) * 1000, 1) if heard else None,
        "heard_p95_ms": round(p95(heard) * 1000, 1) if heard else None,
        "worker_e2e_p95_ms": round(p95(e2e) * 1000, 1) if e2e else None,
        "window_s": round(window, 1),
        "worker_core_share": round(used / window, 3),  # of one core, over the window
        "cpu_per_session": round(used / window / n, 4),
        "rig_core_share": round(rig_busy / window, 3),  # server, emulator, participants
        "core_share_per_process": per_process,  # the worker's processes, busiest first
        "pss_idle_mb": round(idle_mb, 1),
        "pss_mb": round(busy_mb, 1),
        "pss_per_session_mb": round(busy_mb / n, 1),
        "processes": len(procs),
    }


def exited_level(n: int, exc: Exception) -> dict[str, Any]:
    """A level at which the worker process exited: nothing measured, the case ends there."""
    keys = (
        *("heard_p50_ms", "heard_p95_ms", "worker_e2e_p95_ms", "window_s", "cpu_per_session"),
        *("worker_core_share", "rig_core_share", "pss_idle_mb", "pss_mb", "pss_per_session_mb"),
    )
    return {
        "sessions": n,
        "turns": 0,
        "failed_sessions": [f"the worker process exited ({exc})"],
        "heard_ms": [],
        "core_share_per_process": [],
        "processes": 0,
        **dict.fromkeys(keys),
    }


async def run_case(
    case: str, args: argparse.Namespace, rig: dict[str, Any], logs: Path
) -> dict[str, Any]:
    levels: list[dict[str, Any]] = []
    base = None
    for n in args.levels:
        try:
            result = await level(case, n, args.turns, rig, logs)
        except psutil.NoSuchProcess as exc:  # the worker itself died under this load
            result = exited_level(n, exc)
        levels.append(result)
        print(
            f"{case} N={n}: p95 {result['heard_p95_ms']} ms, worker core {result['worker_core_share']}, "
            f"rig core {result['rig_core_share']}, PSS {result['pss_mb']} MB, failed {len(result['failed_sessions'])}",
            flush=True,
        )
        if n == 1:
            base = result["heard_p95_ms"]
        p = result["heard_p95_ms"]
        if result["failed_sessions"] or p is None or (base and p > LIMIT * base):
            break
    held = [
        lv
        for lv in levels
        if base
        and lv["heard_p95_ms"]
        and not lv["failed_sessions"]
        and lv["heard_p95_ms"] <= LIMIT * base
    ]
    best = held[-1] if held else None
    return {
        "levels": levels,
        "single_p95_ms": base,
        "sessions_per_core": best["sessions"] if best else 0,
        "cpu_per_session_at_best": best["cpu_per_session"] if best else None,
        "pss_per_session_mb_at_best": best["pss_per_session_mb"] if best else None,
        "stopped_by": "latency" if levels and levels[-1] is not best else "levels ran out",
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="bench-density-"))
    os.sched_setaffinity(0, RIG_CORE)  # this process and all it starts, except the worker
    pcm = espeak_utterance(QUESTION).pcm
    server = LocalServer(ensure_binary(), log_path=logs / "livekit-server.log").start()
    try:
        with EmulatorProcess("--voice", "tone", "--no-gc") as emulator:
            openai = await FakeOpenAI(
                replies=lambda messages: REPLY,
                transcripts=[QUESTION],
                ttft=0.3,
                token_interval=0.025,
            ).start()
            try:
                settings = server_settings(server)
                env = bench_worker_env(settings, emulator, openai, LOG_LEVEL="INFO")
                rig = {"server": server, "settings": settings, "env": env, "pcm": pcm}
                cases = {case: await run_case(case, args, rig, logs) for case in args.cases}
            finally:
                await openai.aclose()
    finally:
        server.stop()
    return {
        "cases": cases,
        "limit": LIMIT,
        "turns_per_session": args.turns,
        "machine": {"cores": os.cpu_count(), "load_at_start": os.getloadavg()},
        "logs": str(logs),
    }


def cpu_per_turn(lv: dict[str, Any]) -> str:
    """The worker's CPU seconds per turn heard: comparable across cases whose windows differ
    in length (a slower case spreads the same work over a longer window)."""
    if not lv["turns"]:
        return "–"
    return f"{lv['worker_core_share'] * lv['window_s'] / lv['turns']:.2f} s"


def report(result: dict[str, Any]) -> str:
    lines = [
        f"Worker alone on one core; p95 heard latency limit {result['limit']}x one session.",
        "",
        "| case | sessions per core | one-session p95 | CPU per session | memory (PSS) per session |",
        "|---|---|---|---|---|",
    ]
    for name, case in result["cases"].items():
        cpu = case["cpu_per_session_at_best"]
        mem = case["pss_per_session_mb_at_best"]
        lines.append(
            f"| {name} | {case['sessions_per_core']} | {case['single_p95_ms']} ms | "
            f"{'–' if cpu is None else f'{cpu * 100:.1f} % of a core'} | "
            f"{'–' if mem is None else f'{mem:.0f} MB'} |"
        )
    lines += [
        "",
        "| case | N | turns | p50 | p95 | worker core | CPU per turn | rig core | PSS total | failed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, case in result["cases"].items():
        for lv in case["levels"]:
            if not lv["turns"]:  # a room never got its agent: nothing was measured
                pss = "–" if lv["pss_mb"] is None else f"{lv['pss_mb']:.0f} MB"
                lines.append(
                    f"| {name} | {lv['sessions']} | 0 | – | – | – | – | – | {pss} | "
                    f"{len(lv['failed_sessions'])} |"
                )
                continue
            lines.append(
                f"| {name} | {lv['sessions']} | {lv['turns']} | {lv['heard_p50_ms']} ms | "
                f"{lv['heard_p95_ms']} ms | {lv['worker_core_share'] * 100:.0f} % | "
                f"{cpu_per_turn(lv)} | {lv['rig_core_share'] * 100:.0f} % | {lv['pss_mb']:.0f} MB | {len(lv['failed_sessions'])} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="ours-process,ours-thread,official-process")
    p.add_argument("--levels", default="1,4,8,12,16,20", help="sessions at once, in order")
    p.add_argument("--turns", type=int, default=3, help="questions per session (3; 10 for N=1)")
    p.add_argument("--quick", action="store_true", help="ours-process, levels 1,2, 1 turn")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    args.cases = args.cases.split(",")
    args.levels = [int(x) for x in args.levels.split(",")]
    if args.quick:
        args.cases, args.levels, args.turns = ["ours-process"], [1, 2], 1
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs 2 cores: one for the worker, one for everything else")
    run_and_save(run(args), args.out, "density", report)


if __name__ == "__main__":
    main()
