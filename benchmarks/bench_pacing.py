"""``python -m benchmarks.bench_pacing``: what an interrupted reply costs, and whether pacing
ever leaves the listener waiting (issue 20). Part of ``make bench``; the method and the last
figures are in benchmarks/README.md, section 8.

Four engines, the same replies (corpus replies joined to about 10, 30 and 90 s of speech,
streamed as an LLM does), one run: ours paced (the default), ours unpaced, the official
plugin, and the official plugin with ``text_pacing=True``, on the emulator's realistic
profile. Billed / heard for replies cut at 1, 3 or 10 s with ``aclose()`` at the cut or 4 s
later; stalls of uninterrupted replies on three profiles, and for other leads; every
uninterrupted reply's words at the server exactly once; time to first audio paced vs
unpaced per reply shape.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from plugin_cartesia_ws import PacingPolicy
from plugin_cartesia_ws.emulator.tone import ToneVoice

from .common import (
    BASELINE,
    NO_RETRY,
    OURS,
    SAMPLE_RATE,
    Emulator,
    Engine,
    run_turn,
    sleep_until,
)
from .measure import ratio, summarize
from .pacing_report import billed_table, markdown, targets, turn_row
from .replies import SHAPES, llm_tokens, script, token_times

CORPUS = Path(__file__).parent / "corpus" / "replies.txt"
RESULTS = Path(__file__).parent / "results"
PROFILE_ARGS = ("--profile", "cartesia", "--voice", "tone", "--accept-any-key")
PROFILES = {  # name -> emulator flags on top of the realistic profile
    "realistic": (),
    "10x real time": ("--rtf", "10"),
    "expired input refused": ("--expiry", "error"),
}
ENGINES: dict[str, tuple[str, dict[str, Any]]] = {  # name -> (common.Engine variant, options)
    "ours paced": (OURS, {}),
    "ours unpaced": (OURS, {"text_pacing": False}),
    "official": (BASELINE, {}),
    "official paced": (BASELINE, {"text_pacing": True}),
}
LEAD_ENGINES = {
    f"ours lead {lead:g} s": (OURS, {"text_pacing": PacingPolicy(lead_s=lead)})
    for lead in (1.0, 2.0, 5.0)
}
DEFAULT_LEAD_S = PacingPolicy().lead_s
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
JITTER_BUFFER_S = 0.02  # the player starts this long after the first frame (WebRTC's least)
SETTLE_S = 0.5  # after a group, before reading the bill: frames in flight reach the server


@dataclass(frozen=True)
class PacingSettings:
    replicates: int = 3  # different replies per (length, cut)
    lengths_s: tuple[float, ...] = (10.0, 30.0, 90.0)
    cuts_s: tuple[float, ...] = (1.0, 3.0, 10.0)
    close_delays_s: tuple[float, ...] = (0.0, 4.0)
    profiles: tuple[str, ...] = tuple(PROFILES)
    leads: bool = True
    ttfa_turns: int = 10
    seed: int = 11


QUICK = PacingSettings(
    replicates=1,
    lengths_s=(10.0,),
    cuts_s=(1.0,),
    profiles=("realistic",),
    leads=False,
    ttfa_turns=1,
)


# ---------------------------------------------------------------- replies
@dataclass(frozen=True)
class Reply:
    """A long reply: its text, the LLM's tokens and their arrival times, its speech."""

    text: str
    tokens: tuple[str, ...]
    times: tuple[float, ...]
    speech_s: float  # the tone voice's speech for the whole text

    @property
    def plan(self) -> list[tuple[float, str]]:
        return list(zip(self.times, self.tokens, strict=True))


def speech_seconds(text: str) -> float:
    return len(ToneVoice().render(text, sample_rate=SAMPLE_RATE).samples) / SAMPLE_RATE


def make_reply(target_s: float, rng: random.Random, corpus: Sequence[str]) -> Reply:
    """Consecutive corpus replies from a random start, sentence by sentence, until they
    speak ``target_s``."""
    start = rng.randrange(len(corpus))
    sentences = (
        sentence
        for i in range(start, start + len(corpus))
        for sentence in SENTENCE_END.split(corpus[i % len(corpus)])
        if sentence.strip()
    )
    text = ""
    while not text or speech_seconds(text) < target_s:
        text = f"{text} {next(sentences).strip()}".strip()
    tokens = llm_tokens(text)
    return Reply(text, tuple(tokens), tuple(token_times(len(tokens), rng)), speech_seconds(text))


# ---------------------------------------------------------------- one turn
@dataclass
class PacedTurn:
    """One reply into one engine, maybe cut: the frames as they came, the bill."""

    engine: str
    reply: Reply
    length_s: float
    cut_s: float | None = None  # None: not interrupted
    close_delay_s: float = 0.0
    frames: list[tuple[float, float]] = field(default_factory=list)  # (arrival, seconds)
    context_id: str = ""
    first_push_at: float | None = None
    error: str | None = None
    billed: int = 0
    server_text: str = ""

    @property
    def ttfa_s(self) -> float | None:
        if not self.frames or self.first_push_at is None:
            return None
        return self.frames[0][0] - self.first_push_at

    def played_by(self, at: float) -> float:
        """Seconds of audio a real-time player has played by ``at`` (it waits when empty)."""
        played, end = 0.0, self.frames[0][0] + JITTER_BUFFER_S if self.frames else 0.0
        for arrival, seconds in self.frames:
            start = max(arrival, end)
            if start >= at:
                break
            played += min(seconds, at - start)
            end = start + seconds
        return played

    @property
    def stalls(self) -> list[tuple[float, float]]:
        """When (seconds into the audio) and how long the player waited once started."""
        if not self.frames:
            return []
        out, start = [], self.frames[0][0]
        end = start + JITTER_BUFFER_S
        for arrival, seconds in self.frames:
            if arrival > end:
                out.append((end - start, arrival - end))
            end = max(arrival, end) + seconds
        return out

    @property
    def stall_s(self) -> float:
        return sum(length for _, length in self.stalls)

    @property
    def heard_s(self) -> float:
        if not self.frames:
            return 0.0
        if self.cut_s is None:
            return sum(s for _, s in self.frames)
        return self.played_by(self.frames[0][0] + JITTER_BUFFER_S + self.cut_s)

    @property
    def heard_chars(self) -> float:
        return len(self.reply.text) * min(1.0, self.heard_s / self.reply.speech_s)


async def run_paced_turn(engine: Engine, turn: PacedTurn, start_at: float) -> PacedTurn:
    """Stream the reply as an LLM does; read every frame; close it at the cut (+ delay)."""
    stream = engine.tts.stream(conn_options=NO_RETRY)
    first_audio = asyncio.Event()

    async def feed() -> None:
        for offset, token in turn.reply.plan:
            await sleep_until(start_at + offset)
            turn.first_push_at = turn.first_push_at or time.perf_counter()
            stream.push_text(token)
        stream.end_input()

    async def consume() -> None:
        async for ev in stream:
            if not turn.frames:
                turn.context_id = ev.segment_id
                first_audio.set()
            turn.frames.append((time.perf_counter(), ev.frame.duration))

    feeder, consumer = asyncio.create_task(feed()), asyncio.create_task(consume())
    try:
        if turn.cut_s is None:
            await asyncio.wait_for(consumer, timeout=turn.reply.speech_s * 1.2 + 15)
        else:
            started = asyncio.create_task(first_audio.wait())
            await asyncio.wait({started, consumer}, timeout=30, return_when="FIRST_COMPLETED")
            started.cancel()
            if not turn.frames:
                raise RuntimeError("no audio before the cut")
            cut_at = turn.frames[0][0] + JITTER_BUFFER_S + turn.cut_s
            await sleep_until(cut_at + turn.close_delay_s)
            feeder.cancel()  # AgentSession stops forwarding the LLM's text, then closes
            await stream.aclose()
            await asyncio.wait_for(consumer, 10)
    except Exception as exc:  # a failed turn is a result too
        turn.error = f"{type(exc).__name__}: {exc}"
    finally:
        for task in (feeder, consumer):
            task.cancel()
        await asyncio.gather(feeder, consumer, return_exceptions=True)
        await stream.aclose()
    return turn


async def _bill(emu: Emulator, turns: Sequence[PacedTurn]) -> None:
    """Each turn's characters billed and its text at the server, over all its contexts (a
    paced turn goes on in ``<id>-r<n>`` once a context has gone quiet)."""
    await asyncio.sleep(SETTLE_S)
    by_context: dict[str, int] = (await emu.spend())["by_context"]
    for turn in turns:
        if not turn.context_id:
            continue
        mine = sorted(
            (c for c in by_context if c == turn.context_id or c.startswith(turn.context_id + "-r")),
            key=lambda c: (len(c), c),
        )
        turn.billed = sum(by_context[c] for c in mine)
        texts = []
        for c in mine:
            record = await emu.context(c)
            texts += [m.get("transcript", "") for m in (record or {}).get("received", [])]
        turn.server_text = "".join(texts)


async def _engines(url: str, names: Sequence[str]) -> dict[str, Engine]:
    table = {**ENGINES, **LEAD_ENGINES}
    engines = {n: Engine(table[n][0], url, name=n, **table[n][1]) for n in names}
    for engine in engines.values():
        engine.prewarm()
    return engines


async def _group(emu: Emulator, turns: list[PacedTurn], lanes: int) -> list[PacedTurn]:
    """Run the turns side by side, each on its own warm TTS (one session each)."""
    pools = [await _engines(emu.url, sorted({t.engine for t in turns})) for _ in range(lanes)]
    try:
        start_at = time.perf_counter() + 0.5  # every socket open
        lane_of: dict[str, int] = {}
        jobs = []
        for turn in turns:
            lane = lane_of[turn.engine] = lane_of.get(turn.engine, -1) + 1
            jobs.append(run_paced_turn(pools[lane][turn.engine], turn, start_at))
        await asyncio.gather(*jobs)
    finally:
        for pool in pools:
            for engine in pool.values():
                await engine.aclose()
    await _bill(emu, turns)
    return turns


# ---------------------------------------------------------------- the three measurements
async def interrupted(
    emu: Emulator, replies: dict[float, list[Reply]], s: PacingSettings, log: Any
) -> list[PacedTurn]:
    out: list[PacedTurn] = []
    for length, group_replies in replies.items():
        for cut in (c for c in s.cuts_s if c < length - 2):
            turns = [
                PacedTurn(name, reply, length, cut, delay)
                for name in ENGINES
                for reply in group_replies
                for delay in s.close_delays_s
            ]
            out += await _group(emu, turns, lanes=len(group_replies) * len(s.close_delays_s))
            log(f"  pacing: {length:g} s replies cut at {cut:g} s")
    return out


async def uninterrupted(
    emu: Emulator, replies: dict[float, list[Reply]], s: PacingSettings, names: Sequence[str]
) -> list[PacedTurn]:
    turns = [
        PacedTurn(name, reply, length)
        for name in names
        for length, rs in replies.items()
        for reply in rs
    ]
    return await _group(emu, turns, lanes=sum(len(rs) for rs in replies.values()))


async def ttfa(emu: Emulator, s: PacingSettings) -> dict[str, Any]:
    """Paced and unpaced side by side, the same tokens at the same instants (37 ms apart,
    order alternating), per reply shape."""
    engines = await _engines(emu.url, ["ours paced", "ours unpaced"])
    per_shape: dict[str, Any] = {}
    try:
        await asyncio.gather(*(run_turn(e, script(SHAPES[0], -1)) for e in engines.values()))
        for shape in SHAPES:
            values: dict[str, list[float | None]] = {name: [] for name in engines}
            for i in range(s.ttfa_turns):
                order = list(engines.values())[:: 1 if i % 2 else -1]
                plan = script(shape, s.seed * 1000 + i)
                at = time.perf_counter() + 0.01
                done = await asyncio.gather(
                    *(run_turn(e, plan, start_at=at + k * 0.037) for k, e in enumerate(order))
                )
                for engine, turn in zip(order, done, strict=True):
                    values[engine.variant].append(turn.ttfa_s)
            cells = {name: summarize(v) for name, v in values.items()}
            per_shape[shape.name] = {
                "label": shape.label,
                **cells,
                "ratio": ratio(
                    cells["ours paced"].get("median"), cells["ours unpaced"].get("median")
                ),
            }
    finally:
        for engine in engines.values():
            await engine.aclose()
    return per_shape


async def run(
    s: PacingSettings, ttfa_emu: Emulator | None = None, log: Any = print
) -> dict[str, Any]:
    rng = random.Random(s.seed)
    corpus = [line.strip() for line in CORPUS.read_text().splitlines() if line.strip()]
    replies = {
        length: [make_reply(length, rng, corpus) for _ in range(s.replicates)]
        for length in s.lengths_s
    }
    result: dict[str, Any] = {"settings": asdict(s), "uninterrupted": {}}
    names = list(ENGINES) + (list(LEAD_ENGINES) if s.leads else [])
    for profile in s.profiles:
        async with Emulator(*PROFILE_ARGS, *PROFILES[profile], base=()) as emu:
            if profile == "realistic":
                cut = await interrupted(emu, replies, s, log)
                result["interrupted"] = [turn_row(t) for t in cut]
                result["billed"] = billed_table(result["interrupted"])
            done = await uninterrupted(emu, replies, s, names)
            result["uninterrupted"][profile] = [turn_row(t) for t in done]
            log(f"  pacing: uninterrupted replies, {profile}")
    if ttfa_emu is None:
        async with Emulator() as emu:
            result["ttfa"] = await ttfa(emu, s)
    else:
        result["ttfa"] = await ttfa(ttfa_emu, s)
    result["targets"] = targets(result, DEFAULT_LEAD_S)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_pacing", description=__doc__)
    p.add_argument("--quick", action="store_true", help="one 10 s reply, cut at 1 s (smoke)")
    p.add_argument("--out", type=Path, help="output directory")
    args = p.parse_args(argv)
    s = QUICK if args.quick else PacingSettings()
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    started = time.perf_counter()
    result = asyncio.run(
        run(s, log=lambda m: print(f"[{time.perf_counter() - started:6.1f}s] {m}", flush=True))
    )
    result["duration_s"] = round(time.perf_counter() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pacing.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (out / "pacing.md").write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {out / 'pacing.json'}, {out / 'pacing.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
