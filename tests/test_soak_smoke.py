"""The soak test's short form (the full one: python -m benchmarks.soak --turns 1000)."""

from __future__ import annotations

from benchmarks.soak import SCENARIOS, run_soak


async def test_short_soak_keeps_audio_intact_and_leaks_nothing() -> None:
    report = await run_soak(turns=60, seed=3)
    assert sum(report.outcomes.values()) == 60
    assert not report.integrity_failures
    assert not report.leaks
    # the seed exercises every failure path at least once
    kinds = {outcome.split(":")[0] for outcome in report.outcomes}
    assert set(SCENARIOS) <= kinds
