"""Shared by every benchmark: the emulator process and its admin API, the TTS engines under
test (ours, per chunking policy, and the official baseline), LLM-like token streams, one
measured turn, the audio integrity check, and the statistics."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
import psutil
from livekit.agents import APIConnectOptions, tts
from livekit.plugins import cartesia

import plugin_cartesia_ws
from plugin_cartesia_ws.emulator import EmulatorProcess

# A latency model like Cartesia's (docs/cartesia-protocol.md, section 7): 90 ms to first
# audio per generation, 3x faster than real time, 80 ms chunks. The tone voice is deterministic and
# cheap, so the emulator's own CPU stays small next to the client's.
EMULATOR_TTFA_S = 0.090
EMULATOR_ARGS = (
    "--ttfa-ms",
    str(EMULATOR_TTFA_S * 1000),
    "--rtf",
    "3",
    "--chunk-ms",
    "80",
    "--voice",
    "tone",
    "--accept-any-key",
    "--log-level",
    "WARNING",
)
API_KEY = "sk_bench_any_key_accepted"
SAMPLE_RATE = 24000
BYTES_PER_SECOND = SAMPLE_RATE * 2  # pcm_s16le mono
NO_RETRY = APIConnectOptions(max_retry=0, timeout=10.0)  # a retry would open a second context

OURS_MODES = ("clause", "sentence", "tokens")
BASELINE = "baseline"
OURS = "ours-clause"  # the default policy: the one the targets are about
VARIANTS = ("ours-clause", "ours-sentence", "ours-tokens", BASELINE)


@dataclass(frozen=True)
class Settings:
    """How much of each benchmark to run (``--quick`` and the smoke test use less)."""

    turns: int = 20  # TTFA: turns per (reply shape, engine)
    cold_turns: int = 20  # TTFA of a first turn on a fresh, not prewarmed TTS
    e2e_turns: int = 20  # AgentSession turns per TTS (0 = skip)
    e2e_turns_per_session: int = 5
    barge_turns: int = 20  # consecutive interrupted turns per TTS
    levels: tuple[int, ...] = (1, 8, 50, 100)  # concurrent streams (8: issue 12's CPU target)
    scale_samples: int = 20  # at least this many TTFA samples per level
    mem_streams: int = 50  # open streams for the memory measurement
    seed: int = 7


FULL = Settings()
QUICK = Settings(
    turns=3,
    cold_turns=2,
    e2e_turns=2,
    e2e_turns_per_session=2,
    barge_turns=4,
    levels=(1, 8),
    scale_samples=3,
    mem_streams=10,
)


# ---------------------------------------------------------------- scripted LLM replies
@dataclass(frozen=True)
class Shape:
    """A reply shape. ``group``: "early" (a sentence or clause end of at least three words
    comes early), "long" (a long first sentence), or "short" (the first sentence is short,
    complete before any deadline, with no earlier clause of three words: every policy that
    sends whole words in phrases waits for it, as the baseline does)."""

    name: str
    label: str
    text: str
    group: str = "early"


SHAPES: tuple[Shape, ...] = (
    Shape("short", "one short sentence", "Sure, I can book that table for you.", "short"),
    Shape("greeting", "greeting", "Hi there! How can I help you today?"),
    Shape(
        "greeting_name",
        "greeting with a name",
        "Hello Maria, thanks for calling Bella Cucina. What can I do for you today?",
        "short",
    ),
    Shape(
        "sure",
        '"Sure, ..." + a long sentence',
        "Sure, I can move your appointment with Doctor Patel to Thursday afternoon at "
        "three thirty instead.",
        "long",
    ),
    Shape(
        "of_course",
        '"Of course! ..."',
        "Of course! The restaurant is open until eleven tonight, and the kitchen takes "
        "orders until ten thirty.",
    ),
    Shape(
        "three",
        "three sentences",
        "Sure! It is sunny and twenty two degrees in Paris today. "
        "Would you like the forecast for tomorrow as well?",
    ),
    Shape(
        "long_first",
        "long first sentence, comma late",
        "The fastest way into the city is the express train from the lower level of "
        "terminal two, and it takes twenty minutes.",
        "long",
    ),
    Shape(
        "long_no_comma",
        "long first sentence, no comma",
        "The quickest way to get from the airport to your hotel downtown is the express "
        "train that leaves every fifteen minutes from the lower level of terminal two.",
        "long",
    ),
    Shape(
        "question",
        "long question",
        "Would you like me to send the confirmation to the email address we have on file "
        "for your account?",
        "long",
    ),
    Shape(
        "list",
        "a list",
        "Here are three options:\n1. The train.\n2. A taxi.\n3. The bus.",
    ),
    Shape(
        "price",
        "numbers and prices",
        "Your total comes to $42.50 including tax and delivery, and it should arrive in "
        "about 35 minutes.",
        "long",
    ),
    Shape(
        "plans",
        "prices in a list sentence",
        "The basic plan is $9.99 a month, the standard plan is $15.49, and the premium "
        "plan is $22.99.",
    ),
    Shape(
        "clause_start",
        "starts with a clause",
        "Well, if you leave before eight, you will be there by nine.",
    ),
)
SHAPE_BY_NAME = {s.name: s for s in SHAPES}

# GPT-like tokens: words carry their leading space, punctuation and newlines stand alone.
_TOKEN_RE = re.compile(r"\n+|'\w+|[ ]?\w+|[ ]?[^\w\s]")
TOKEN_GAP_S = (0.015, 0.025)  # per token after the first, uniform
_CLAUSE_MARKS = frozenset(",;:—")
_SENTENCE_MARKS = frozenset(".!?")
MIN_CLAUSE_WORDS = 3


def llm_tokens(text: str) -> list[str]:
    tokens = _TOKEN_RE.findall(text)
    assert "".join(tokens) == text, "tokenizer must not lose text"
    return tokens


def token_times(count: int, rng: random.Random) -> list[float]:
    """First token at t=0, then one every 15-25 ms."""
    times = [0.0]
    for _ in range(count - 1):
        times.append(times[-1] + rng.uniform(*TOKEN_GAP_S))
    return times


def first_clause_token(tokens: Sequence[str]) -> int:
    """Index of the token that completes the first speakable clause: a sentence end, or a
    clause mark (, ; : —) after at least three words. Independent of any plugin's chunker."""
    text = ""
    for i, token in enumerate(tokens):
        text += token
        if i + 1 < len(tokens) and not tokens[i + 1][:1].isspace():
            continue  # "$42" "." "50": a mark inside a number ends nothing
        mark = token.strip()[-1:]
        line = text.split("\n")[-1].strip()
        words = len(re.findall(r"\w+", text))
        if mark in _SENTENCE_MARKS and words and not re.fullmatch(r"\d+[.)]", line):  # "1." lists
            return i
        if mark in _CLAUSE_MARKS and words >= MIN_CLAUSE_WORDS:
            return i
    return len(tokens) - 1


def lower_bound_s(tokens: Sequence[str], times: Sequence[float]) -> float:
    """Earliest possible first audio: first speakable clause complete + the server's TTFA."""
    return times[first_clause_token(tokens)] + EMULATOR_TTFA_S


@dataclass
class Script:
    """One scripted LLM reply: its tokens and when each arrives (seconds from the first)."""

    shape: Shape
    tokens: list[str]
    times: list[float]

    @property
    def lower_bound_s(self) -> float:
        return lower_bound_s(self.tokens, self.times)


def script(shape: Shape, seed: int) -> Script:
    tokens = llm_tokens(shape.text)
    return Script(shape, tokens, token_times(len(tokens), random.Random(seed)))


# ---------------------------------------------------------------- emulator
# The emulator's own cyclic garbage collector pauses its event loop for 30-140 ms under load
# (measured: a full collection every few seconds at 100 streams), which stalls every context
# at once, whichever engine is being measured. It stands in for Cartesia's servers, so its
# pauses are not either plugin's latency: it runs with the collector off (``--no-gc``;
# reference counting still frees almost everything; its RSS is reported at the end).


class Emulator:
    """The emulator in its own process, its admin API, its CPU time and memory."""

    def __init__(self, *extra_args: str) -> None:
        self._process = EmulatorProcess(*EMULATOR_ARGS, "--no-gc", *extra_args)
        self._http: aiohttp.ClientSession | None = None
        self._ps: psutil.Process | None = None

    @property
    def url(self) -> str:
        return self._process.url

    @property
    def args(self) -> list[str]:
        return list(EMULATOR_ARGS)

    async def __aenter__(self) -> Emulator:
        await asyncio.to_thread(self._process.__enter__)  # blocks until its URL is printed
        assert self._process.proc is not None
        self._ps = psutil.Process(self._process.proc.pid)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()
        await asyncio.to_thread(self._process.__exit__, None, None, None)

    def rss_mib(self) -> float:
        assert self._ps is not None
        return round(self._ps.memory_info().rss / 2**20, 1)

    def cpu_seconds(self) -> float:
        assert self._ps is not None
        times = self._ps.cpu_times()
        return times.user + times.system

    async def _get(self, path: str) -> Any:
        assert self._http is not None
        async with self._http.get(self.url + path) as resp:
            if resp.status == 404:
                return None
            resp.raise_for_status()
            return await resp.json()

    async def context(self, context_id: str) -> dict[str, Any] | None:
        """What the emulator received and sent for one context (None if it never saw it)."""
        return await self._get(f"/_emulator/contexts/{context_id}")

    async def stats(self) -> dict[str, Any]:
        return await self._get("/_emulator/stats")

    async def reset(self) -> None:
        """Forget records and counters (sockets_opened starts again from 0)."""
        assert self._http is not None
        async with self._http.post(self.url + "/_emulator/reset") as resp:
            resp.raise_for_status()


# ---------------------------------------------------------------- engines under test
class Engine:
    """One TTS instance (ours with a chunking policy, or the baseline) and its HTTP session."""

    def __init__(self, variant: str, url: str) -> None:
        self.variant = variant
        # No connection limit: the baseline needs one socket per concurrent stream.
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.tts: tts.TTS
        if variant == BASELINE:
            self.tts = cartesia.TTS(api_key=API_KEY, base_url=url, http_session=self.http)
        else:
            mode = variant.removeprefix("ours-")
            self.tts = plugin_cartesia_ws.TTS(
                api_key=API_KEY, base_url=url, http_session=self.http, chunking=mode
            )

    def prewarm(self) -> None:
        self.tts.prewarm()

    async def aclose(self) -> None:
        await self.tts.aclose()
        await self.http.close()


@dataclass
class Turn:
    """One measured turn: what came out of the stream, and whether it matches the server."""

    variant: str
    shape: str
    context_id: str = ""
    ttfa_s: float | None = None
    lower_bound_s: float | None = None
    frames: int = 0
    audio_bytes: int = 0
    sha256: str = ""
    error: str | None = None
    integrity: bool | None = None
    integrity_detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def audio_s(self) -> float:
        return self.audio_bytes / BYTES_PER_SECOND


# perf_counter() and monotonic() are both CLOCK_MONOTONIC on Linux, system-wide: client times
# compare with the emulator's (another process) directly.


async def sleep_until(deadline: float) -> None:
    """Token pacing is part of the scenario: wait for the scripted arrival time."""
    delay = deadline - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def run_turn(
    engine: Engine,
    plan: Script,
    *,
    start_at: float | None = None,
    on_first_audio: Callable[[], None] | None = None,
) -> Turn:
    """Stream the scripted reply into a new stream as an LLM would and read every frame.

    TTFA = first ``push_text`` -> first audio frame out of the stream (both perf_counter).
    ``start_at`` lets several engines receive the same tokens at the same instants."""
    turn = Turn(engine.variant, plan.shape.name, lower_bound_s=plan.lower_bound_s)
    stream = engine.tts.stream(conn_options=NO_RETRY)
    first_push: float | None = None
    sha = hashlib.sha256()
    start = start_at if start_at is not None else time.perf_counter()

    async def feed() -> None:
        nonlocal first_push
        for token, offset in zip(plan.tokens, plan.times, strict=True):
            await sleep_until(start + offset)
            if first_push is None:
                first_push = time.perf_counter()
            stream.push_text(token)
        turn.extra["last_push_at"] = time.perf_counter()
        stream.end_input()

    feeder = asyncio.create_task(feed())
    try:
        async for ev in stream:
            if turn.ttfa_s is None:
                now = time.perf_counter()
                turn.ttfa_s = now - (first_push if first_push is not None else now)
                turn.extra["first_audio_at"] = now
                turn.context_id = ev.segment_id
                if on_first_audio is not None:
                    on_first_audio()
            data = ev.frame.data.tobytes()
            sha.update(data)
            turn.audio_bytes += len(data)
            turn.frames += 1
    except Exception as exc:  # a failed turn is a result too (integrity False)
        turn.error = f"{type(exc).__name__}: {exc}"
    finally:
        await feeder
        await stream.aclose()
    turn.sha256 = sha.hexdigest()
    return turn


async def check_integrity(emu: Emulator, turn: Turn) -> None:
    """The audio the stream yielded must be exactly what the emulator sent for the context
    (SHA-256 and byte count of the context's chunks, from ``/_emulator/contexts/{id}``)."""
    if turn.error is not None:
        turn.integrity, turn.integrity_detail = False, turn.error
        return
    record = await emu.context(turn.context_id) if turn.context_id else None
    if record is None:
        turn.integrity, turn.integrity_detail = False, "context unknown to the emulator"
        return
    sent = [m["transcript"] for m in record["received"] if m.get("transcript", "").strip()]
    turn.extra.update(
        first_text=sent[0] if sent else "",
        text_frames=len(sent),
        server_first_chunk_at=record["first_chunk_at"],
    )
    same = record["audio_sha256"] == turn.sha256 and record["audio_bytes"] == turn.audio_bytes
    turn.integrity = same and bool(record["done_sent"])
    if not turn.integrity:
        turn.integrity_detail = (
            f"got {turn.audio_bytes} B sha {turn.sha256[:12]}, emulator sent "
            f"{record['audio_bytes']} B sha {record['audio_sha256'][:12]} done={record['done_sent']}"
        )


def integrity_summary(turns: Sequence[Turn]) -> dict[str, Any]:
    checked = [t for t in turns if t.integrity is not None]
    failed = [t for t in checked if not t.integrity]
    return {
        "checked": len(checked),
        "ok": len(checked) - len(failed),
        "all_ok": bool(checked) and not failed,
        "failures": [
            {"variant": t.variant, "shape": t.shape, "detail": t.integrity_detail}
            for t in failed[:10]
        ],
    }


# ---------------------------------------------------------------- garbage collector
def settle_heap() -> None:
    """Collect, then freeze what is alive (imports, warm engines) out of the collector's
    view: otherwise a full collection of this process's ~170k objects (~100 ms on the
    reference machine) lands at random inside measured windows, whichever engine runs."""
    gc.collect()
    gc.freeze()


class GcWatch:
    """Counts the collector's runs and its longest pause while a measurement runs."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.max_pause_ms = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.collections[info["generation"]] += 1
            self.max_pause_ms = max(self.max_pause_ms, (time.perf_counter() - self._started) * 1000)

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, Any]:
        return {"collections": self.collections, "max_pause_ms": round(self.max_pause_ms, 1)}


# ---------------------------------------------------------------- statistics
def summarize(values_s: Sequence[float | None]) -> dict[str, Any]:
    """Milliseconds: median, p5/p95, quartiles, min/max of the given seconds."""
    vals = np.asarray([v for v in values_s if v is not None], dtype=float) * 1000.0
    if vals.size == 0:
        return {"n": 0}
    p5, q1, med, q3, p95 = np.percentile(vals, [5, 25, 50, 75, 95])
    return {
        "n": int(vals.size),
        "median": round(float(med), 1),
        "p5": round(float(p5), 1),
        "p95": round(float(p95), 1),
        "q1": round(float(q1), 1),
        "q3": round(float(q3), 1),
        "min": round(float(vals.min()), 1),
        "max": round(float(vals.max()), 1),
        "mean": round(float(vals.mean()), 1),
    }


def raw_ms(values_s: Sequence[float | None]) -> list[float]:
    """The individual values in milliseconds (kept in the JSON for plots and re-analysis)."""
    return [round(v * 1000.0, 2) for v in values_s if v is not None]


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def target(
    name: str, goal: str, value: str, passed: bool | None, margin: str = "", note: str = ""
) -> dict[str, Any]:
    """One target line: PASS / MISS (by how much) / n/a. Timings are reported, never asserted."""
    status = "n/a" if passed is None else ("PASS" if passed else "MISS")
    return {
        "name": name,
        "goal": goal,
        "value": value,
        "status": status,
        "margin": margin,
        "note": note,
    }
