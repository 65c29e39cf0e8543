"""Issue 20: paced turns. What leaves before the listener needs it, what a barge-in bills,
how ``text_pacing=`` maps, and a paced turn through each of Cartesia's context-expiry modes."""

from __future__ import annotations

import pytest
from livekit.agents import tts as lk_tts

import plugin_cartesia_ws
from agent.dev.scripted import llm_tokens, stream_turn
from plugin_cartesia_ws import PacingPolicy
from plugin_cartesia_ws.emulator import CartesiaEmulator, LatencyModel
from plugin_cartesia_ws.emulator.contexts import ContextRules

from .conftest import FAST

SENTENCES = [
    "The museum opens at nine in the morning.",
    "Tickets are cheaper online, and children under twelve go in for free.",
    "The east wing has the new exhibition about the history of the harbour.",
    "If you are hungry, the cafe on the top floor has a view of the whole city.",
]


def test_text_pacing_maps_onto_our_pacer() -> None:
    def pacing(value: object) -> PacingPolicy | None:
        engine = plugin_cartesia_ws.TTS(api_key="k", text_pacing=value)  # type: ignore[arg-type]
        return engine._opts.pacing

    assert pacing(True) == PacingPolicy()
    assert pacing(False) is None
    livekit = lk_tts.SentenceStreamPacer(min_remaining_audio=2.5, max_text_length=120)
    assert pacing(livekit) == PacingPolicy(lead_s=2.5, max_chars=120)
    ours = PacingPolicy(lead_s=1.0)
    assert pacing(ours) is ours
    assert plugin_cartesia_ws.TTS(api_key="k")._opts.pacing == PacingPolicy()  # on by default
    with pytest.raises(TypeError, match="text_pacing"):
        pacing("fast")


@pytest.mark.parametrize("expiry", ["off", "error", "ignore"])
async def test_a_paced_turn_goes_on_through_context_expiry(expiry: str) -> None:
    """Held text and an LLM pause outlive the context (expiry 1 s after its last audio): the
    turn goes on in new contexts, every word said once, timings on one timeline."""
    rules = ContextRules(expiry=expiry, expiry_s=1.0)  # type: ignore[arg-type]
    latency = LatencyModel(ttfa_ms=150, realtime_factor=4.0)  # faster than it is heard
    plan = [(0.02 * i, t) for i, t in enumerate(llm_tokens(" ".join(SENTENCES[:2]) + " "))]
    rest = llm_tokens(" ".join(SENTENCES[2:]))
    plan += [(2.5 + 0.02 * i, t) for i, t in enumerate(rest)]  # the LLM thinks for 2 s
    async with CartesiaEmulator(voice="tone", rules=rules, latency=latency) as emu:
        tts = plugin_cartesia_ws.TTS(
            api_key=emu.api_key, base_url=emu.url, text_pacing=PacingPolicy(lead_s=1.0)
        )
        try:
            result = await stream_turn(tts, plan, conn_options=FAST)
        finally:
            await tts.aclose()
        records = [emu.records[c] for c in sorted(emu.records, key=len)]
    reply = " ".join(SENTENCES).split()
    assert result.stream is not None and result.stream.stats is not None
    assert result.stream.stats.resumes == 0
    assert len(records) > 1  # it did go on in new contexts
    # none lost or repeated, and all of it accepted: no text went to an expired context
    assert "".join(r.transcript for r in records).split() == reply
    assert not any(r.phase == "open" for r in records)  # every context ended at the server
    assert "".join(result.transcript).split() == reply  # the aligned transcript runs on


async def test_a_barge_in_bills_no_more_than_the_lead() -> None:
    """A long reply arrives at once; the user barges in after the first audio. Paced, the
    server was sent the first chunk and about a lead of speech; unpaced, everything."""
    reply = " ".join(SENTENCES * 6)
    billed = {}
    for paced in (True, False):
        async with CartesiaEmulator(voice="tone") as emu:
            tts = plugin_cartesia_ws.TTS(
                api_key=emu.api_key,
                base_url=emu.url,
                text_pacing=PacingPolicy(lead_s=2.0) if paced else False,
            )
            try:
                await stream_turn(
                    tts, [(0.0, t) for t in llm_tokens(reply)], until=lambda t: bool(t.audio)
                )
            finally:
                await tts.aclose()
            billed[paced] = emu.spend().total
    assert billed[False] >= len(reply) - 5
    # the first chunk, and no more than fits within the 2 s lead (at 20 characters a second)
    assert billed[True] <= len(SENTENCES[0]) + 2.0 * 20
    assert billed[True] < billed[False] / 3
