"""Benchmark 2: end-to-end turn latency in a headless AgentSession, ours vs the baseline.

Same everything else: real Silero VAD on eSpeak speech played in real time (SpeechInput),
a scripted STT (final transcript when LiveKit flushes it after end of speech), a scripted
LLM (fixed time to first token, then GPT-like tokens 15-25 ms apart) answering the
three-sentence reply, and a speaker that "plays" a reply the moment the TTS has finished it
(``e2e_latency`` ends at the first frame, so playout speed does not change it, and turns
are shorter). The figure is LiveKit's own ``e2e_latency`` on the assistant ChatMessage:
agent started speaking - user stopped speaking. Each round runs one session per engine side
by side (0.5 s apart), with the same script, so both see the same machine load.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit.agents import Agent, AgentSession

from agent.dev.audio_io import AudioHash, SpeechInput, VirtualSpeaker
from agent.dev.scripted import ScriptedLLM, ScriptedSTT, SessionProbe, TokenPlan, watch_tts_streams

from .common import BASELINE, OURS, Engine, Settings, Turn, check_integrity, integrity_summary
from .emulator import Emulator
from .measure import ratio, raw_ms, summarize
from .replies import SHAPE_BY_NAME, script

ENGINES = (OURS, BASELINE)
SHAPE = "three"
USER_TEXT = "What is the weather in Paris?"
LLM_TTFT_S = 0.4
TURN_TIMEOUT_S = 60.0
# The two sessions of a round run side by side, this far apart, so that their identical
# scripts do not hit the emulator (which renders synchronously) in the same instant.
SESSION_OFFSET_S = 0.5
SESSION_OPTIONS: dict[str, Any] = {
    "turn_handling": {
        "turn_detection": "vad",
        "endpointing": {"min_delay": 0.3},
        "interruption": {"mode": "vad", "min_duration": 0.3, "resume_false_interruption": False},
    },
    "aec_warmup_duration": None,
    "user_away_timeout": None,
}


def scripted_llm(seed: int) -> ScriptedLLM:
    """Answers every turn with the three-sentence reply, streamed like a real LLM."""
    rng = random.Random(seed)

    def next_plan() -> TokenPlan:
        return script(SHAPE_BY_NAME[SHAPE], rng.randrange(1 << 30)).plan

    return ScriptedLLM(next_plan, ttft=LLM_TTFT_S)


# ---------------------------------------------------------------- a tap on the streams
@dataclass
class StreamTap:
    """What one TTS stream yielded inside the session: its context id and a hash."""

    context_id: str = ""
    audio: AudioHash = field(default_factory=AudioHash)


def tap_streams(engine: Engine) -> list[StreamTap]:
    """Every stream the session opens on this TTS gets a tap (for the integrity check)."""
    taps: list[StreamTap] = []

    def on_audio(index: int, ev: Any) -> None:
        if index == len(taps):
            taps.append(StreamTap(context_id=ev.segment_id))
        taps[index].audio.add(ev.frame)

    watch_tts_streams(engine.tts, on_audio)
    return taps


# ---------------------------------------------------------------- the benchmark
def user_speech() -> np.ndarray:
    """The user's question, spoken by eSpeak NG at 16 kHz after 0.3 s of silence."""
    from plugin_cartesia_ws.emulator.voices import EspeakVoice

    rendering = EspeakVoice().render(USER_TEXT, sample_rate=16000)
    return np.concatenate([np.zeros(4800, np.int16), rendering.samples])


async def run_session(
    emu: Emulator, variant: str, vad: Any, speech: np.ndarray, turns: int, seed: int, delay: float
) -> tuple[list[dict[str, Any]], list[Turn]]:
    await asyncio.sleep(delay)  # the two sessions of a round start apart (see SESSION_OFFSET_S)
    engine = Engine(variant, emu.url)
    taps = tap_streams(engine)
    session = AgentSession(
        vad=vad,
        stt=ScriptedSTT([USER_TEXT] * turns),
        llm=scripted_llm(seed),
        tts=engine.tts,
        **SESSION_OPTIONS,
    )
    # a reply has "played" once the TTS delivered it: e2e_latency ends at its first frame
    mic, speaker = SpeechInput(), VirtualSpeaker(instant=True)
    session.input.audio = mic
    session.output.audio = speaker
    probe = SessionProbe(session, speaker.playing_changed)
    metrics: list[dict[str, Any]] = []
    try:
        await session.start(Agent(instructions="You are a helpful voice assistant."))
        for i in range(turns):
            mic.play(speech)
            await probe.wait(
                lambda i=i: len(probe.assistant()) > i and not speaker.playing, TURN_TIMEOUT_S
            )
        metrics = [dict(m.metrics) | {"interrupted": m.interrupted} for m in probe.assistant()]
    finally:
        mic.close()
        await session.aclose()
        await engine.aclose()
    checked = []
    for tap in taps:
        turn = Turn(variant, SHAPE, context_id=tap.context_id, audio_bytes=tap.audio.bytes)
        turn.sha256 = tap.audio.hexdigest()
        await check_integrity(emu, turn)
        checked.append(turn)
    return metrics, checked


def _metric(rows: list[dict[str, Any]], key: str) -> list[float | None]:
    return [r.get(key) for r in rows]


async def run(emu: Emulator, settings: Settings, log: Any = print) -> dict[str, Any]:
    if settings.e2e_turns <= 0:
        return {"skipped": "e2e_turns=0 (smoke setting)"}
    try:
        speech = user_speech()
    except Exception as exc:  # eSpeak NG missing: say so instead of failing the whole run
        return {"skipped": f"no eSpeak NG for the user's speech: {exc}"}
    from livekit.plugins import silero

    per_session = max(1, min(settings.e2e_turns_per_session, settings.e2e_turns))
    sessions = math.ceil(settings.e2e_turns / per_session)
    rows: dict[str, list[dict[str, Any]]] = {v: [] for v in ENGINES}
    turns: list[Turn] = []
    for k in range(sessions):
        n = min(per_session, settings.e2e_turns - k * per_session)
        results = await asyncio.gather(
            *(
                run_session(
                    emu,
                    v,
                    silero.VAD.load(min_silence_duration=0.4),
                    speech,
                    n,
                    settings.seed + k,
                    SESSION_OFFSET_S * ((i + k) % 2),  # who goes first alternates
                )
                for i, v in enumerate(ENGINES)
            )
        )
        for variant, (metrics, checked) in zip(ENGINES, results, strict=True):
            rows[variant] += metrics
            turns += checked
        log(f"  e2e: session round {k + 1}/{sessions}")
    engines = {
        v: {
            "e2e_latency": summarize(_metric(rows[v], "e2e_latency")),
            "tts_node_ttfb": summarize(_metric(rows[v], "tts_node_ttfb")),
            "llm_node_ttft": summarize(_metric(rows[v], "llm_node_ttft")),
            "llm_node_ttfs": summarize(_metric(rows[v], "llm_node_ttfs")),
            "raw_ms": raw_ms(_metric(rows[v], "e2e_latency")),
            "interrupted_replies": sum(bool(r.get("interrupted")) for r in rows[v]),
            "turns": len(rows[v]),
        }
        for v in ENGINES
    }
    ours, base = (engines[v]["e2e_latency"].get("median") for v in ENGINES)
    return {
        "method": (
            "headless AgentSession: Silero VAD on eSpeak speech, scripted STT, scripted LLM "
            f"(TTFT {LLM_TTFT_S * 1000:.0f} ms, tokens 15-25 ms), the three-sentence reply; "
            "e2e_latency from the assistant ChatMessage metrics; one session per engine run "
            "side by side"
        ),
        "shape": SHAPE,
        "reply": SHAPE_BY_NAME[SHAPE].text,
        "engines": engines,
        "median_gain_ms": round(base - ours, 1) if ours is not None and base is not None else None,
        "ratio": ratio(ours, base),
        "integrity": integrity_summary(turns),
    }
