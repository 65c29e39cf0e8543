"""Benchmark 4: overhead and scale, N concurrent streams in one process and one TTS instance.

Per level N: a fresh TTS per engine, prewarmed, one warm-up round of N concurrent turns each
(so the baseline's pool holds warm sockets too), then enough rounds for ``scale_samples`` TTFA
samples (and at least ``scale_rounds``), the engines' rounds alternating so that load from elsewhere falls on all alike. A
round starts N turns of the one-sentence reply with LLM token pacing, their starts spread
uniformly over one second (independent sessions). Measured over the rounds: client CPU time
(``time.process_time``, the whole process: plugin, LiveKit's audio emitter and this harness)
per second of audio produced, the emulator process's CPU (psutil), TTFA p50/p95, sockets
opened (emulator stats). Engines: ours, the baseline, and the floor (``floor.py``: the least
a plugin with the baseline's features can spend, so a CPU ratio can be read against what is
possible at all). Memory
(ours and the baseline): N streams opened at once on a warm TTS, traced Python memory
(tracemalloc) and RSS once every stream has its first audio.
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
    FLOOR,
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

ENGINES = (OURS, BASELINE, FLOOR)  # the floor for CPU only: it waits for the whole reply
MEMORY_ENGINES = (OURS, BASELINE)
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


async def run_level(emu: Emulator, n: int, settings: Settings) -> dict[str, dict[str, Any]]:
    """Every engine at n streams. Their measured rounds alternate (ours, baseline, floor, ...)
    with the same token plans, so a change in the machine's load falls on both alike; CPU,
    emulator CPU, wall time and sockets are summed per engine over its own rounds."""
    await emu.reset()
    engines = {variant: Engine(variant, emu.url) for variant in ENGINES}
    rngs = {variant: random.Random(settings.seed + n) for variant in ENGINES}
    sums = {variant: {"cpu": 0.0, "emu": 0.0, "wall": 0.0, "sockets": 0} for variant in ENGINES}
    warm: dict[str, list[Turn]] = {}
    turns: dict[str, list[Turn]] = {variant: [] for variant in ENGINES}
    watches = {variant: GcWatch() for variant in ENGINES}

    async def sockets_opened() -> int:
        return int((await emu.stats())["sockets_opened"])

    try:
        for variant, engine in engines.items():
            before = await sockets_opened()
            engine.prewarm()
            warm[variant] = await _round(engine, n, rngs[variant], seed=-n * 1000)
            sums[variant]["sockets"] += await sockets_opened() - before
        rounds = max(settings.scale_rounds, math.ceil(settings.scale_samples / n))
        settle_heap()
        for r in range(rounds):
            for variant, engine in engines.items():
                before = await sockets_opened()
                cpu0, emu0, wall0 = time.process_time(), emu.cpu_seconds(), time.perf_counter()
                with watches[variant]:
                    seed = settings.seed * 10_000 + r * n
                    turns[variant] += await _round(engine, n, rngs[variant], seed=seed)
                sums[variant]["wall"] += time.perf_counter() - wall0
                sums[variant]["cpu"] += time.process_time() - cpu0
                sums[variant]["emu"] += emu.cpu_seconds() - emu0
                sums[variant]["sockets"] += await sockets_opened() - before
    finally:
        for engine in engines.values():
            await engine.aclose()
    results: dict[str, dict[str, Any]] = {}
    for variant in ENGINES:
        for turn in [*warm[variant], *turns[variant]]:
            await check_integrity(emu, turn)
        audio_s = sum(t.audio_s for t in turns[variant])
        cpu, emu_cpu, wall = (sums[variant][k] for k in ("cpu", "emu", "wall"))
        results[variant] = {
            "streams": n,
            "rounds": rounds,
            "ttfa": summarize([t.ttfa_s for t in turns[variant]]),
            "audio_s": round(audio_s, 2),
            "wall_s": round(wall, 2),
            "client_cpu_s": round(cpu, 3),
            "client_cpu_per_audio_s": round(cpu / audio_s, 5) if audio_s else None,
            "client_cpu_share": round(cpu / wall, 3),
            "emulator_cpu_share": round(emu_cpu / wall, 3),
            "emulator_busy": emu_cpu / wall > EMULATOR_BUSY,
            "sockets_opened": sums[variant]["sockets"],
            "gc": watches[variant].summary(),
            "_turns": [*warm[variant], *turns[variant]],
        }
    return results


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
        for variant, result in (await run_level(emu, n, settings)).items():
            turns += result.pop("_turns")
            levels[variant].append(result)
            log(
                f"  scale: {variant} x{n}: ttfa p95 {result['ttfa'].get('p95')} ms, "
                f"cpu/audio-s {result['client_cpu_per_audio_s']}, "
                f"emulator cpu {result['emulator_cpu_share']:.0%}"
            )
    for variant in MEMORY_ENGINES:
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
        "note_floor": (
            "floor: benchmarks/floor.py, the least CPU a plugin with the baseline's features can "
            "spend on this protocol and LiveKit's stream API (whole reply sent at once, so its "
            "TTFA means nothing)"
        ),
    }
