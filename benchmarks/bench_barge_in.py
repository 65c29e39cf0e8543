"""Benchmark 3: barge-in, as AgentSession does it: the LLM feed is cancelled, then
``stream.aclose()`` is called while audio is still arriving.

Per engine: a warm TTS (prewarm + one completed short turn), then N consecutive turns of the
three-sentence reply, each closed after its fifth audio frame, then one more turn that
completes. Measured: time from ``aclose()`` (client ``time.monotonic()``) to the cancel frame
reaching the server (the emulator's ``cancel_received_at``, the same system-wide clock);
frames and bytes the stream yields after ``aclose()`` began; the emulator's chunks sent for
the context after its cancel; sockets opened over the interrupted turns; TTFA of the turn
after an interruption.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from agent.dev.audio_io import AudioHash, audio_sha256
from plugin_cartesia_ws.emulator.encoding import encode
from plugin_cartesia_ws.emulator.voices import ToneVoice

from .common import (
    BASELINE,
    NO_RETRY,
    OURS,
    SAMPLE_RATE,
    SHAPE_BY_NAME,
    Emulator,
    Engine,
    Script,
    Settings,
    Turn,
    check_integrity,
    integrity_summary,
    raw_ms,
    run_turn,
    script,
    sleep_until,
    summarize,
)

ENGINES = (OURS, BASELINE)
INTERRUPT_AFTER_FRAMES = 5
CANCEL_WAIT_S = 1.0


async def interrupted_turn(engine: Engine, plan: Script) -> Turn:
    turn = Turn(engine.variant, plan.shape.name, lower_bound_s=plan.lower_bound_s)
    stream = engine.tts.stream(conn_options=NO_RETRY)
    arrivals: list[tuple[float, int]] = []  # (time.monotonic(), bytes) of every frame
    enough = asyncio.Event()
    first_push: float | None = None
    digest = AudioHash()

    async def feed() -> None:
        nonlocal first_push
        start = time.perf_counter()
        for token, offset in zip(plan.tokens, plan.times, strict=True):
            await sleep_until(start + offset)
            if first_push is None:
                first_push = time.perf_counter()
            stream.push_text(token)
        stream.end_input()

    async def consume() -> None:
        async for ev in stream:
            if turn.ttfa_s is None:
                turn.ttfa_s = time.perf_counter() - (first_push or time.perf_counter())
                turn.context_id = ev.segment_id
            data = ev.frame.data.tobytes()
            arrivals.append((time.monotonic(), len(data)))
            digest.add(data)
            if len(arrivals) >= INTERRUPT_AFTER_FRAMES:
                enough.set()
        enough.set()  # the turn ended before the interruption point (reported as an error)

    feeder = asyncio.create_task(feed())
    consumer = asyncio.create_task(consume())
    await asyncio.wait_for(enough.wait(), 10)
    feeder.cancel()  # AgentSession stops the LLM->TTS forwarding first ...
    await asyncio.gather(feeder, return_exceptions=True)
    closed_at = time.monotonic()
    await stream.aclose()  # ... then closes the stream (barge-in)
    turn.extra["aclose_s"] = time.monotonic() - closed_at
    await asyncio.wait_for(consumer, 5)  # the stream ends: nothing more can be read
    late = [n for t, n in arrivals if t >= closed_at]
    late += [len(ev.frame.data.tobytes()) async for ev in stream]  # reading on after aclose
    turn.extra.update(
        closed_at=closed_at, frames_after_aclose=len(late), bytes_after_aclose=sum(late)
    )
    turn.frames = len(arrivals)
    turn.audio_bytes = sum(n for _, n in arrivals)
    turn.sha256 = digest.hexdigest()
    if len(arrivals) < INTERRUPT_AFTER_FRAMES:
        turn.error = "the turn ended before it could be interrupted"
    return turn


def expected_audio(record: dict[str, Any]) -> bytes:
    """What the emulator generates for a context with max_buffer_delay_ms=0 and the tone
    voice (deterministic): each received transcript rendered in order, as pcm_s16le."""
    voice = ToneVoice()
    return b"".join(
        encode(voice.render(m["transcript"], sample_rate=SAMPLE_RATE).samples, "pcm_s16le")
        for m in record["received"]
        if m.get("transcript")
    )


async def _check_interrupted(emu: Emulator, turn: Turn) -> dict[str, Any] | None:
    """An interrupted turn got a prefix of its context's audio: the bytes it yielded must
    equal the start of what the emulator generates for that context (re-rendered here from
    the transcripts the emulator received), so no audio of another context slipped in."""
    record = await emu.context(turn.context_id) if turn.context_id else None
    if record is None or turn.error is not None:
        turn.integrity, turn.integrity_detail = False, turn.error or "context unknown"
        return record
    expected = expected_audio(record)[: turn.audio_bytes]
    turn.integrity = (
        len(expected) == turn.audio_bytes
        and turn.audio_bytes <= record["audio_bytes"]
        and audio_sha256([expected]) == turn.sha256
    )
    if not turn.integrity:
        turn.integrity_detail = (
            f"{turn.audio_bytes} B received are not the first bytes of context "
            f"{turn.context_id} ({record['audio_bytes']} B sent)"
        )
    return record


async def _wait_for_cancel(emu: Emulator, context_id: str) -> None:
    """The cancel goes out in the background after aclose(): give it time to arrive."""
    deadline = time.monotonic() + CANCEL_WAIT_S
    while time.monotonic() < deadline:
        record = await emu.context(context_id)
        if record and record["cancel_received_at"] is not None:
            return
        await asyncio.sleep(0.01)  # polling another process's state; no event to wait on


async def run_engine(emu: Emulator, variant: str, settings: Settings, seed: int) -> dict[str, Any]:
    await emu.reset()
    engine = Engine(variant, emu.url)
    shape = SHAPE_BY_NAME["three"]
    checked: list[Turn] = []
    try:
        engine.prewarm()
        warm = await run_turn(engine, script(SHAPE_BY_NAME["short"], seed))
        await check_integrity(emu, warm)
        interrupted = [
            await interrupted_turn(engine, script(shape, seed + 1 + i))
            for i in range(settings.barge_turns)
        ]
        sockets_during = (await emu.stats())["sockets_opened"]
        after = await run_turn(engine, script(shape, seed + 10_000))
        await check_integrity(emu, after)
        checked += [warm, after]
        open_after = (await emu.stats())["open_sockets"]
    finally:
        await engine.aclose()
    if variant != BASELINE and interrupted and interrupted[-1].context_id:
        await _wait_for_cancel(emu, interrupted[-1].context_id)
    cancel_ms: list[float | None] = []
    chunks_after_cancel: list[int] = []
    for turn in interrupted:
        record = await _check_interrupted(emu, turn)
        checked.append(turn)
        if record is None or record["cancel_received_at"] is None:
            continue
        cancel_ms.append(record["cancel_received_at"] - turn.extra["closed_at"])
        chunks_after_cancel.append(record["chunks_after_cancel"])
    sent_cancel = bool(cancel_ms)
    ttfa_after = [t.ttfa_s for t in interrupted[1:]] + [after.ttfa_s]
    return {
        "turns": len(interrupted),
        "cancel_sent": sent_cancel,
        "cancel_to_server": summarize(cancel_ms) if sent_cancel else None,
        "cancel_to_server_raw_ms": raw_ms(cancel_ms),
        "cancel_note": "" if sent_cancel else "n/a (no cancel sent)",
        "cancels_received": len(cancel_ms),
        "aclose_duration": summarize([t.extra.get("aclose_s") for t in interrupted]),
        "frames_after_aclose": sum(t.extra.get("frames_after_aclose", 0) for t in interrupted),
        "bytes_after_aclose": sum(t.extra.get("bytes_after_aclose", 0) for t in interrupted),
        "server_chunks_after_cancel": (
            {"total": sum(chunks_after_cancel), "per_turn_max": max(chunks_after_cancel)}
            if sent_cancel
            else None
        ),
        "sockets_opened": sockets_during,
        "open_sockets_after": open_after,
        "ttfa_first_turn": summarize([interrupted[0].ttfa_s] if interrupted else []),
        "ttfa_after_interruption": summarize(ttfa_after),
        "ttfa_after_interruption_raw_ms": raw_ms(ttfa_after),
        "_turns": checked,
    }


async def run(emu: Emulator, settings: Settings, log: Any = print) -> dict[str, Any]:
    engines: dict[str, Any] = {}
    turns: list[Turn] = []
    for variant in ENGINES:
        result = await run_engine(emu, variant, settings, seed=settings.seed * 7919)
        turns += result.pop("_turns")
        engines[variant] = result
        log(f"  barge-in: {variant} done")
    return {
        "method": (
            f"{settings.barge_turns} consecutive turns of the three-sentence reply, each "
            f"closed with aclose() after its {INTERRUPT_AFTER_FRAMES}th frame (LLM feed "
            "cancelled first, as AgentSession does), then one completed turn"
        ),
        "engines": engines,
        "integrity": integrity_summary(turns),
        "integrity_note": (
            "completed turns: SHA-256 equal to the emulator's; interrupted turns: the bytes "
            "received equal the start of the context's audio (re-rendered with the tone voice "
            "from the transcripts the emulator received)"
        ),
    }
