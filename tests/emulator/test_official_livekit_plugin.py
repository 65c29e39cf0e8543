"""The emulator driven by the official ``livekit-plugins-cartesia`` TTS, unchanged."""

from __future__ import annotations

import aiohttp
import pytest
from livekit.agents import APIConnectOptions
from livekit.plugins import cartesia

from agent.dev.scripted import stream_turn
from plugin_cartesia_ws.emulator import CartesiaEmulator
from plugin_cartesia_ws.emulator.voices import ToneVoice

REPLY_TOKENS = ["Sure", "!", " It", " is", " sunny", " today", ".", " Anything", " else", "?"]
NO_RETRY = APIConnectOptions(max_retry=0, timeout=5.0)


@pytest.fixture
async def emu():
    async with CartesiaEmulator(voice="tone") as server:
        yield server


async def test_official_plugin_streams_a_multi_sentence_turn(emu: CartesiaEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        tts = cartesia.TTS(api_key=emu.api_key, base_url=emu.url, http_session=http)
        stream = tts.stream(conn_options=NO_RETRY)
        for token in REPLY_TOKENS:
            stream.push_text(token)
        stream.end_input()
        frames = [ev async for ev in stream]
        await stream.aclose()
        await tts.aclose()
    audio = sum(ev.frame.samples_per_channel for ev in frames) / tts.sample_rate
    assert frames[-1].is_final
    [ctx_id] = list(emu.records)
    record = emu.record(ctx_id)
    assert record.done_sent and record.received[0]["max_buffer_delay_ms"] == 0
    sent = record.transcript
    assert "Sure!" in sent and "Anything else?" in sent
    # what the official plugin got equals what the emulator sent, sample for sample
    expected = sum(
        len(ToneVoice().render(m["transcript"], sample_rate=24000).samples)
        for m in record.received
        if m.get("transcript")
    )
    assert audio == pytest.approx(expected / 24000, abs=1e-6)
    assert record.audio_bytes == 2 * expected


async def test_official_plugin_closed_mid_turn(emu: CartesiaEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        tts = cartesia.TTS(api_key=emu.api_key, base_url=emu.url, http_session=http)
        sentences = [(0.0, "This is the first long sentence of the answer. ")] * 4
        # closed after 3 frames: what AgentSession does on barge-in
        await stream_turn(tts, sentences, conn_options=NO_RETRY, until=lambda t: t.frames == 3)
        # the official plugin sends no cancel: it drops the socket instead
        [ctx_id] = list(emu.records)
        assert not emu.record(ctx_id).cancelled

        second = tts.stream(conn_options=NO_RETRY)
        second.push_text("Next turn. ")
        second.end_input()
        frames = [ev async for ev in second]
        await second.aclose()
        await tts.aclose()
    assert frames and frames[-1].is_final
    assert emu.sockets_opened == 2  # it paid a second handshake for the next turn
