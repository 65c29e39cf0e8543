"""Benchmark 1: time to first audio of a turn while the LLM is still streaming the reply.

Every round streams one scripted reply (GPT-like tokens, first at t=0, then 15-25 ms apart)
into all four engines (37 ms apart): ours with each chunking policy and the baseline,
each a warm TTS (prewarmed, one warm-up turn done) on the same emulator. TTFA is first
``push_text`` -> first audio frame out of the stream. The lower bound of a reply is when its
first speakable clause is complete + the emulator's 90 ms. Cold: the first turn of a fresh TTS
that was never prewarmed (it has to open its socket inside the turn). Two such sets of four
engines run side by side (``LANES``), each through half of the rounds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .common import (
    BASELINE,
    OURS,
    VARIANTS,
    Engine,
    Settings,
    Turn,
    check_integrity,
    integrity_summary,
    run_turn,
)
from .emulator import Emulator
from .measure import ratio, raw_ms, summarize
from .replies import SHAPE_BY_NAME, SHAPES, script

COLD_SHAPE = "three"
ROUND_LEAD_S = 0.01  # streams are created this long before the first token (as in a session)
# Two independent sets of four engines work through the rounds side by side, so a full run
# fits in its time budget; every engine sees the same (light: 8 streams) load.
LANES = 2
ENGINE_OFFSET_S = 0.037


async def _round(engines: list[Engine], emu: Emulator, plan: Any, rotate: int) -> list[Turn]:
    """The same scripted reply into every engine, each starting ENGINE_OFFSET_S after the
    previous one (order rotated every round), so their texts never reach the emulator in the
    same instant: it renders synchronously, and the engine whose text came last would wait."""
    order = engines[rotate % len(engines) :] + engines[: rotate % len(engines)]
    start_at = time.perf_counter() + ROUND_LEAD_S
    turns = await asyncio.gather(
        *(run_turn(e, plan, start_at=start_at + i * ENGINE_OFFSET_S) for i, e in enumerate(order))
    )
    for turn in turns:
        await check_integrity(emu, turn)
    return list(turns)


async def _lane(emu: Emulator, rounds: list[tuple[int, Any]], log: Any) -> list[Turn]:
    """A set of four warm engines working through its share of the rounds."""
    engines = [Engine(v, emu.url) for v in VARIANTS]
    turns: list[Turn] = []
    try:
        for engine in engines:
            engine.prewarm()
        turns += await _round(engines, emu, script(SHAPE_BY_NAME["short"], seed=-1), 0)
        for n, (seed, shape) in enumerate(rounds):
            turns += await _round(engines, emu, script(shape, seed), seed)
            if log is not None and (n + 1) % (4 * len(SHAPES)) == 0:
                log(f"  ttfa: {n + 1}/{len(rounds)} rounds (each lane)")
    finally:
        for engine in engines:
            await engine.aclose()
    return turns


async def _cold_lane(emu: Emulator, seeds: list[int]) -> list[Turn]:
    turns: list[Turn] = []
    for seed in seeds:
        fresh = [Engine(v, emu.url) for v in VARIANTS]  # never prewarmed
        try:
            turns += await _round(fresh, emu, script(SHAPE_BY_NAME[COLD_SHAPE], seed), seed)
        finally:
            for engine in fresh:
                await engine.aclose()
    return turns


async def run(emu: Emulator, settings: Settings, log: Any = print) -> dict[str, Any]:
    rounds = [
        (settings.seed * 100_000 + i * len(SHAPES) + k, shape)
        for i in range(settings.turns)
        for k, shape in enumerate(SHAPES)
    ]
    lanes = await asyncio.gather(
        *(_lane(emu, rounds[j::LANES], log if j == 0 else None) for j in range(LANES))
    )
    warmups = [lane[: len(VARIANTS)] for lane in lanes]
    turns = [t for lane in lanes for t in lane[len(VARIANTS) :]]
    warm = [t for w in warmups for t in w]
    seeds = [900_000 + settings.seed * 1000 + i for i in range(settings.cold_turns)]
    cold_lanes = await asyncio.gather(*(_cold_lane(emu, seeds[j::LANES]) for j in range(LANES)))
    cold = [t for lane in cold_lanes for t in lane]
    log(f"  ttfa: {settings.cold_turns} cold rounds")
    return report(turns, cold, warm)


def _values(turns: list[Turn], variant: str, shape: str | None = None) -> list[float | None]:
    return [t.ttfa_s for t in turns if t.variant == variant and shape in (None, t.shape)]


def report(turns: list[Turn], cold: list[Turn], warm: list[Turn]) -> dict[str, Any]:
    shapes: dict[str, Any] = {}
    for shape in SHAPES:
        mine = [t for t in turns if t.shape == shape.name]
        bound = summarize([t.lower_bound_s for t in mine if t.variant == BASELINE])
        cells = {v: summarize(_values(mine, v)) for v in VARIANTS}
        first_text = {
            v: next((t.extra.get("first_text", "") for t in mine if t.variant == v), "")
            for v in VARIANTS
        }
        shapes[shape.name] = {
            "label": shape.label,
            "group": shape.group,
            "text": shape.text,
            "lower_bound": bound,
            "engines": cells,
            "vs_baseline": {
                v: ratio(cells[v].get("median"), cells[BASELINE].get("median")) for v in VARIANTS
            },
            "vs_lower_bound": {
                v: ratio(cells[v].get("median"), bound.get("median")) for v in VARIANTS
            },
            "first_text_sent": first_text,
            "raw_ms": {v: raw_ms(_values(mine, v)) for v in VARIANTS}
            | {"lower_bound": raw_ms([t.lower_bound_s for t in mine if t.variant == BASELINE])},
        }
    helped = [s["vs_baseline"].get(OURS) for s in shapes.values() if s["group"] != "short"]
    helped_ratios = [r for r in helped if r is not None]
    overall_bound = summarize([t.lower_bound_s for t in turns if t.variant == BASELINE])
    overall = {v: summarize(_values(turns, v)) for v in VARIANTS}
    cold_cells = {v: summarize(_values(cold, v)) for v in VARIANTS}
    warm_same = {v: summarize(_values(turns, v, COLD_SHAPE)) for v in VARIANTS}
    return {
        "method": (
            "first push_text -> first audio frame out of the stream; all engines warm "
            "(prewarm + one warm-up turn) and fed the same scripted tokens, 37 ms apart, "
            f"in {LANES} lanes of four engines"
        ),
        "turns_per_cell": len(_values(turns, BASELINE, SHAPES[0].name)),
        "shapes": shapes,
        "per_shape": {
            "ratios": {k: s["vs_baseline"].get(OURS) for k, s in shapes.items()},
            "worst": max((r for r in helped_ratios), default=None),
            "worst_any": max(
                (s["vs_baseline"][OURS] for s in shapes.values() if s["vs_baseline"].get(OURS)),
                default=None,
            ),
            "mean_early_or_long": round(sum(helped_ratios) / len(helped_ratios), 3)
            if helped_ratios
            else None,
            "worst_early_or_long": max(helped_ratios, default=None),
        },
        "overall": {
            "lower_bound": overall_bound,
            "engines": overall,
            "vs_baseline": {
                v: ratio(overall[v].get("median"), overall[BASELINE].get("median"))
                for v in VARIANTS
            },
            "vs_lower_bound": {
                v: ratio(overall[v].get("median"), overall_bound.get("median")) for v in VARIANTS
            },
        },
        "cold": {
            "shape": COLD_SHAPE,
            "method": "first turn of a fresh TTS, no prewarm: the socket opens inside the turn",
            "engines": cold_cells,
            "warm_same_shape": warm_same,
            "raw_ms": {v: raw_ms(_values(cold, v)) for v in VARIANTS},
        },
        "integrity": integrity_summary([*warm, *turns, *cold]),
    }
