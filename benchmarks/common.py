"""Shared by every benchmark: how much to run, the TTS engines under test (ours, per
chunking policy, and the official baseline), one measured turn and its audio integrity
check. The emulator, the scripted replies and the statistics have modules of their own and
are re-exported here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from livekit.agents import APIConnectOptions, tts
from livekit.plugins import cartesia

import plugin_cartesia_ws
from agent.dev.scripted import stream_turn

from .emulator import EMULATOR_ARGS, EMULATOR_TTFA_S, Emulator
from .floor import FloorTTS
from .measure import GcWatch, ratio, raw_ms, settle_heap, summarize, target
from .replies import SHAPE_BY_NAME, SHAPES, Script, Shape, llm_tokens, script, token_times

__all__ = [
    "EMULATOR_ARGS",
    "EMULATOR_TTFA_S",
    "SHAPES",
    "SHAPE_BY_NAME",
    "Emulator",
    "GcWatch",
    "Script",
    "Shape",
    "llm_tokens",
    "ratio",
    "raw_ms",
    "script",
    "settle_heap",
    "summarize",
    "target",
    "token_times",
]

API_KEY = "sk_bench_any_key_accepted"
SAMPLE_RATE = 24000
BYTES_PER_SECOND = SAMPLE_RATE * 2  # pcm_s16le mono
NO_RETRY = APIConnectOptions(max_retry=0, timeout=10.0)  # a retry would open a second context

OURS_MODES = ("clause", "sentence", "tokens")
BASELINE = "baseline"
OURS = "ours-clause"  # the default policy: the one the targets are about
VARIANTS = ("ours-clause", "ours-sentence", "ours-tokens", BASELINE)
FLOOR = "floor"  # benchmarks/floor.py: the least CPU a plugin can spend (scale only)


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
    scale_rounds: int = 6  # ... and this many rounds (one round at 50 streams lasts ~2 s: the
    # CPU ratio of a single round moved by +-15 % from run to run)
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
    scale_rounds=1,
    mem_streams=10,
)


# ---------------------------------------------------------------- engines under test
class Engine:
    """One TTS instance (ours with a chunking policy, the baseline, or the CPU floor) and
    its HTTP session."""

    def __init__(self, variant: str, url: str, *, name: str = "", **options: Any) -> None:
        """``name``: what reports call it (default: the variant); ``options`` go to the TTS."""
        self.variant = name or variant
        # No connection limit: the baseline needs one socket per concurrent stream.
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.tts: tts.TTS
        if variant == BASELINE:
            self.tts = cartesia.TTS(
                api_key=API_KEY, base_url=url, http_session=self.http, **options
            )
        elif variant == FLOOR:
            self.tts = FloorTTS(api_key=API_KEY, base_url=url, http_session=self.http)
        else:
            mode = variant.removeprefix("ours-")
            self.tts = plugin_cartesia_ws.TTS(
                api_key=API_KEY, base_url=url, http_session=self.http, chunking=mode, **options
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
    try:
        streamed = await stream_turn(
            engine.tts,
            plan.plan,
            conn_options=NO_RETRY,
            start_at=start_at,
            on_first_audio=on_first_audio,
            keep_audio=False,
        )
    except Exception as exc:  # a failed turn is a result too (integrity False)
        turn.error = f"{type(exc).__name__}: {exc}"
        return turn
    turn.ttfa_s = streamed.ttfa_s
    turn.context_id = streamed.segment_id
    turn.frames, turn.audio_bytes = streamed.frames, streamed.digest.bytes
    turn.sha256 = streamed.sha256
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
    # the turn's audio: its first context's and any it went on in (a quiet spell, pacing)
    sha, size = record["turn_audio_sha256"], record["turn_audio_bytes"]
    same = sha == turn.sha256 and size == turn.audio_bytes
    turn.integrity = same and bool(record["done_sent"])
    if not turn.integrity:
        turn.integrity_detail = (
            f"got {turn.audio_bytes} B sha {turn.sha256[:12]}, emulator sent "
            f"{size} B sha {sha[:12]} done={record['done_sent']}"
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
