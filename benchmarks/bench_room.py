"""Latency heard in a real LiveKit room: ours vs `livekit.plugins.cartesia`, same run.

A local LiveKit server, the Cartesia emulator (its own process), the local OpenAI-compatible
server, and two workers as users run them (`python -m agent start`), one per TTS plugin
(TTS_PLUGIN=cartesia_ws / livekit). A participant speaks eSpeak questions into a room over
WebRTC and measures, per turn, from the end of its speech to the first voiced frame of the
agent's reply as received. Rooms alternate between the plugins, turn by turn, so both see
the same machine load. Then N rooms at once (1, 4, 8) on one worker of ours.

    python -m benchmarks.bench_room [--turns 20] [--rooms 1,4,8] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from agent.dev.livekit_server import LocalServer, ensure_binary
from agent.dev.local_openai import FakeOpenAI
from agent.dev.local_stack import server_settings, worker_env
from agent.dev.room_user import RoomUser
from agent.dev.worker_process import WorkerProcess
from agent.settings import Settings
from agent.simulate import espeak_utterance
from agent.token import make_token
from plugin_cartesia_ws.emulator import EmulatorProcess
from plugin_cartesia_ws.emulator.state import DEV_API_KEY

RESULTS = Path(__file__).parent / "results"
QUESTION = "What should I cook for dinner tonight?"
# reply shapes: a short opener, a long first sentence without a comma, a list, a price
REPLIES = [
    "Sure! How about a simple pasta with garlic, olive oil and a little chili?",
    "A warm vegetable curry with rice is easy to make on a weeknight and keeps well for lunch.",
    "Of course. You could try tacos, a stir fry, or a quick omelette with herbs.",
    "A roast chicken costs about twelve dollars and feeds four people with leftovers.",
]


def bench_worker_env(
    settings: Settings, emulator: EmulatorProcess, openai: FakeOpenAI, **overrides: str
) -> dict[str, str]:
    """A worker's environment for the benchmarks' server, emulator process and stand-in."""
    env = worker_env(
        settings, openai=openai, CARTESIA_API_KEY=DEV_API_KEY, CARTESIA_BASE_URL=emulator.url
    )
    return {**env, **overrides}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def one_turn(server: LocalServer, settings: Settings, agent: str, timeout: float) -> float:
    """A fresh room, one question, the latency heard (ms)."""
    room = f"bench-{agent}-{uuid.uuid4().hex[:6]}"
    token = make_token(settings, room=room, identity="user", agent_name=agent)
    async with RoomUser(server.url, token) as user:
        await user.wait_for_agent(timeout=timeout)
        await user.wait_for_agent_state("listening", after=0.0, timeout=timeout)
        said = user.say(espeak_utterance(QUESTION).pcm)
        await said.done.wait()
        first = await user.wait_for_agent_audio(after=said.voice_end, timeout=timeout)
        await user.wait_for_reply_end(after=first, timeout=timeout)
        return (first - said.voice_end) * 1000


async def run(args: argparse.Namespace) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="bench-room-"))
    server = LocalServer(ensure_binary(), log_path=logs / "livekit-server.log").start()
    reply_index = 0

    def reply(messages: list[dict[str, Any]]) -> str:
        nonlocal reply_index
        reply_index += 1
        return REPLIES[(reply_index - 1) // 2 % len(REPLIES)]  # both plugins get each shape

    with EmulatorProcess("--voice", "tone", "--no-gc") as emulator:
        openai = await FakeOpenAI(
            replies=reply, transcripts=[QUESTION], ttft=0.3, token_interval=0.025
        ).start()
        settings = server_settings(server)
        # slots for the largest round plus the rooms of the last one still closing
        base = bench_worker_env(
            settings, emulator, openai, WORKER_MAX_JOBS=str(2 * max(args.rooms) + 2)
        )
        workers = {
            name: WorkerProcess(
                {**base, "AGENT_NAME": name, "TTS_PLUGIN": plugin},
                log_path=logs / f"worker-{name}.log",
            ).start()
            for name, plugin in (("ours", "cartesia_ws"), ("baseline", "livekit"))
        }
        try:
            for w in workers.values():
                await w.wait_registered(timeout=120)
            latency: dict[str, list[float]] = {"ours": [], "baseline": []}
            lost: dict[str, int] = {"ours": 0, "baseline": 0}
            for _ in range(args.turns):
                for name in ("ours", "baseline"):
                    try:
                        latency[name].append(await one_turn(server, settings, name, 60))
                    except TimeoutError:
                        lost[name] += 1
            scale: dict[int, list[float]] = {}
            failed: dict[int, int] = {}
            for n in args.rooms:
                samples: list[float] = []
                failed[n] = 0
                for _ in range(args.scale_rounds):
                    outcomes = await asyncio.gather(
                        *(one_turn(server, settings, "ours", 120) for _ in range(n)),
                        return_exceptions=True,
                    )
                    samples += [o for o in outcomes if isinstance(o, float)]
                    failed[n] += sum(1 for o in outcomes if not isinstance(o, float))
                scale[n] = samples
        finally:
            for w in workers.values():
                w.stop()
            await openai.aclose()
            server.stop()
    return {
        "latency_ms": latency,
        "latency_failed": lost,
        "scale_ms": {str(k): v for k, v in scale.items()},
        "cores": os.cpu_count(),
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        "| plugin | turns | p50 | p95 | mean | no reply in 60 s |",
        "|---|---|---|---|---|---|",
    ]
    lat = result["latency_ms"]
    for name in ("ours", "baseline"):
        v = lat[name]
        lines.append(
            f"| {name} | {len(v)} | {statistics.median(v):.0f} ms | {pct(v, 0.95):.0f} ms | "
            f"{statistics.fmean(v):.0f} ms | {result.get('latency_failed', {}).get(name, 0)} |"
        )
    ratio = statistics.median(lat["ours"]) / statistics.median(lat["baseline"])
    lines.append(f"\np50 ratio ours / baseline: {ratio:.2f}x\n")
    lines += ["| rooms at once (one worker) | p50 | p95 | turns without a reply in 120 s |"]
    lines.append("|---|---|---|---|")
    for n, v in result["scale_ms"].items():
        lost = result.get("scale_failed", {}).get(n, 0)
        if v:
            lines.append(
                f"| {n} | {statistics.median(v):.0f} ms | {pct(v, 0.95):.0f} ms | {lost} |"
            )
        else:
            lines.append(f"| {n} | – | – | {lost} |")
    held = sessions_within(result["scale_ms"], 1.2)
    if held is not None:
        lines.append(
            f"\nRooms at once before p95 grows by more than 20 % over one room: {held} "
            f"({held / result['cores']:.1f} sessions per core on {result['cores']} cores)"
        )
    return "\n".join(lines)


def sessions_within(scale_ms: dict[str, list[float]], factor: float) -> int | None:
    """The most rooms at once whose p95 stays within `factor` of the one-room p95."""
    if "1" not in scale_ms:
        return None
    if not scale_ms["1"]:
        return None
    limit = factor * pct(scale_ms["1"], 0.95)
    held = [int(n) for n, v in scale_ms.items() if v and pct(v, 0.95) <= limit]
    return max(held) if held else None


def plot(result: dict[str, Any], path: Path) -> None:
    """Per-turn latency of both plugins, and p50/p95 against rooms at once."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, marker in (("ours", "o"), ("baseline", "s")):
        values = result["latency_ms"][name]
        left.plot(range(1, len(values) + 1), values, marker=marker, linestyle="-", label=name)
    left.set(xlabel="turn", ylabel="ms", title="heard latency per turn (one room each)")
    left.legend()
    rooms = [int(n) for n in result["scale_ms"]]
    for q, label in ((0.5, "p50"), (0.95, "p95")):
        right.plot(
            rooms, [pct(result["scale_ms"][str(n)], q) for n in rooms], marker="o", label=label
        )
    right.set(
        xlabel="rooms at once, one worker", ylabel="ms", title="ours under load", xticks=rooms
    )
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
    p.add_argument("--turns", type=int, default=20, help="turns per plugin (20)")
    p.add_argument("--rooms", default="1,4,8", help="concurrent rooms for the scale run")
    p.add_argument("--scale-rounds", type=int, default=3, help="rounds of N rooms at once (3)")
    p.add_argument("--quick", action="store_true", help="5 turns per plugin, rooms 1,4")
    p.add_argument("--out", type=Path, default=RESULTS, help="where room.json/.md/.png go")
    args = p.parse_args(argv)
    args.rooms = [int(x) for x in args.rooms.split(",")]
    if args.quick:
        args.turns, args.rooms, args.scale_rounds = 5, [1, 4], 2
    result = run_and_save(run(args), args.out, "room", report)
    plot(result, args.out / "room.png")


if __name__ == "__main__":
    main()
