"""Benchmark 4: overhead and scale, N concurrent streams in one process and one TTS instance.

Per level N and engine: a fresh TTS, prewarmed, one warm-up round of N concurrent turns (so
the baseline's pool holds warm sockets too), then enough rounds for ``scale_samples`` TTFA
samples. A round starts N turns of the one-sentence reply with LLM token pacing, their
starts spread uniformly over one second (independent sessions). Measured over the rounds:
client CPU time (``time.process_time``, the whole process: plugin, LiveKit's audio emitter
and this harness) per second of audio produced, the emulator process's CPU (psutil), TTFA
p50/p95, sockets opened (emulator stats). Memory: N streams opened at once on a warm TTS,
traced Python memory (tracemalloc) and RSS once every stream has its first audio.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import time
import tracemalloc
from typing import Any

import psutil

from .common import (
    BASELINE,
    OURS,
    SHAPE_BY_NAME,
    Emulator,
    Engine,
    GcWatch,
    Settings,
    Turn,
    check_integrity,
    integrity_summary,
    run_turn,
    script,
    settle_heap,
    summarize,
)

ENGINES = (OURS, BASELINE)
SHAPE = "short"
MEMORY_SHAPE = "short"
STAGGER_S = 1.0
EMULATOR_BUSY = 0.8  # above this share of one core the emulator may be the bottleneck


async def _round(engine: Engine, n: int, rng: random.Random, seed: int) -> list[Turn]:
    start = time.perf_counter() + 0.01
    offsets = [rng.uniform(0, STAGGER_S) if n > 1 else 0.0 for _ in range(n)]
    plans = [script(SHAPE_BY_NAME[SHAPE], seed + i) for i in range(n)]
    return list(
        await asyncio.gather(
            *(run_turn(engine, p, start_at=start + o) for p, o in zip(plans, offsets, strict=True))
        )
    )


async def run_level(emu: Emulator, variant: str, n: int, settings: Settings) -> dict[str, Any]:
    await emu.reset()
    rng = random.Random(settings.seed + n)
    engine = Engine(variant, emu.url)
    try:
        engine.prewarm()
        warm = await _round(engine, n, rng, seed=-n * 1000)
        rounds = max(1, math.ceil(settings.scale_samples / n))
        settle_heap()
        cpu0, emu0, wall0 = time.process_time(), emu.cpu_seconds(), time.perf_counter()
        turns: list[Turn] = []
        with GcWatch() as gc_watch:
            for r in range(rounds):
                turns += await _round(engine, n, rng, seed=settings.seed * 10_000 + r * n)
        wall = time.perf_counter() - wall0
        cpu, emu_cpu = time.process_time() - cpu0, emu.cpu_seconds() - emu0
        stats = await emu.stats()
    finally:
        await engine.aclose()
    for turn in [*warm, *turns]:
        await check_integrity(emu, turn)
    audio_s = sum(t.audio_s for t in turns)
    return {
        "streams": n,
        "rounds": rounds,
        "ttfa": summarize([t.ttfa_s for t in turns]),
        "audio_s": round(audio_s, 2),
        "wall_s": round(wall, 2),
        "client_cpu_s": round(cpu, 3),
        "client_cpu_per_audio_s": round(cpu / audio_s, 5) if audio_s else None,
        "client_cpu_share": round(cpu / wall, 3),
        "emulator_cpu_share": round(emu_cpu / wall, 3),
        "emulator_busy": emu_cpu / wall > EMULATOR_BUSY,
        "sockets_opened": stats["sockets_opened"],
        "gc": gc_watch.summary(),
        "_turns": [*warm, *turns],
    }


async def memory_per_stream(emu: Emulator, variant: str, n: int, seed: int) -> dict[str, Any]:
    """Traced memory and RSS growth with n streams open (each past its first audio), on a
    TTS that was warm with one socket: the baseline's extra sockets count as its cost."""
    await emu.reset()
    engine = Engine(variant, emu.url)
    proc = psutil.Process()
    turns: list[Turn] = []
    try:
        engine.prewarm()
        turns.append(await run_turn(engine, script(SHAPE_BY_NAME[SHAPE], seed)))
        all_started = asyncio.Event()
        started = 0

        def one_started() -> None:
            nonlocal started
            started += 1
            if started == n:
                all_started.set()

        gc.collect()
        tracemalloc.start()
        traced0, rss0 = tracemalloc.get_traced_memory()[0], proc.memory_info().rss
        start = time.perf_counter() + 0.01
        plans = [script(SHAPE_BY_NAME[MEMORY_SHAPE], seed + 1 + i) for i in range(n)]
        tasks = [
            asyncio.create_task(run_turn(engine, p, start_at=start, on_first_audio=one_started))
            for p in plans
        ]
        await asyncio.wait_for(all_started.wait(), 60)
        traced1, rss1 = tracemalloc.get_traced_memory()[0], proc.memory_info().rss
        tracemalloc.stop()
        turns += await asyncio.gather(*tasks)
        sockets = (await emu.stats())["sockets_opened"]
    finally:
        if tracemalloc.is_tracing():
            tracemalloc.stop()
        await engine.aclose()
    for turn in turns:
        await check_integrity(emu, turn)
    return {
        "streams": n,
        "traced_kib_per_stream": round((traced1 - traced0) / n / 1024, 1),
        "rss_kib_per_stream": round((rss1 - rss0) / n / 1024, 1),
        "sockets_opened": sockets,
        "_turns": turns,
    }


async def run(emu: Emulator, settings: Settings, log: Any = print) -> dict[str, Any]:
    levels: dict[str, list[dict[str, Any]]] = {v: [] for v in ENGINES}
    memory: dict[str, Any] = {}
    turns: list[Turn] = []
    for n in settings.levels:
        for variant in ENGINES:
            result = await run_level(emu, variant, n, settings)
            turns += result.pop("_turns")
            levels[variant].append(result)
            log(
                f"  scale: {variant} x{n}: ttfa p95 {result['ttfa'].get('p95')} ms, "
                f"cpu/audio-s {result['client_cpu_per_audio_s']}, "
                f"emulator cpu {result['emulator_cpu_share']:.0%}"
            )
    for variant in ENGINES:
        result = await memory_per_stream(emu, variant, settings.mem_streams, settings.seed * 31)
        turns += result.pop("_turns")
        memory[variant] = result
    log("  scale: memory done")
    return {
        "method": (
            f"N concurrent turns of the one-sentence reply on one TTS instance, starts spread "
            f"over {STAGGER_S:.0f} s, token pacing as an LLM; CPU of the client process per "
            "second of audio produced; emulator CPU share of one core"
        ),
        "levels": levels,
        "memory": memory,
        "integrity": integrity_summary(turns),
        "emulator_busy_threshold": EMULATOR_BUSY,
        "note_baseline_sockets": BASELINE + " opens one socket per concurrent stream",
    }
