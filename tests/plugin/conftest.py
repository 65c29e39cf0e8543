"""Shared fixtures: an in-process emulator and a TTS pointed at it, with a log capture that
fails any test whose logs or errors contain the API key."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from livekit.agents import APIConnectOptions, APIStatusError

import plugin_cartesia_ws
from plugin_cartesia_ws.emulator import CartesiaEmulator

FAST = APIConnectOptions(max_retry=0, timeout=2.0)


@pytest.fixture
async def emu() -> AsyncIterator[CartesiaEmulator]:
    async with CartesiaEmulator(voice="tone") as server:
        yield server


@pytest.fixture
async def tts(
    emu: CartesiaEmulator, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[plugin_cartesia_ws.TTS]:
    caplog.set_level(logging.DEBUG)
    engine = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url, sample_rate=24000)
    yield engine
    await engine.aclose()
    assert emu.api_key not in caplog.text, "the API key leaked into the logs"


@dataclass
class TurnResult:
    audio: bytes = b""
    frames: int = 0
    transcript: list[str] = field(default_factory=list)
    stream: plugin_cartesia_ws.SynthesizeStream | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.audio).hexdigest()

    @property
    def context_id(self) -> str:
        assert self.stream is not None and self.stream.stats is not None
        return self.stream.stats.context_id


async def run_turn(
    tts: plugin_cartesia_ws.TTS,
    tokens: list[str],
    *,
    token_gap: float = 0.0,
    conn_options: APIConnectOptions = FAST,
) -> TurnResult:
    """Push tokens like an LLM would, end the input, collect every frame."""
    stream = tts.stream(conn_options=conn_options)
    result = TurnResult(stream=stream)

    async def feed() -> None:
        for token in tokens:
            stream.push_text(token)
            if token_gap:
                await asyncio.sleep(token_gap)  # LLM token pacing, part of the scenario
        stream.end_input()

    feeder = asyncio.create_task(feed())
    audio = bytearray()
    try:
        async for ev in stream:
            audio += ev.frame.data.tobytes()
            result.frames += 1
            result.transcript += list(ev.frame.userdata.get("lk.timed_transcripts", []))
    finally:
        result.audio = bytes(audio)
        await feeder
        await stream.aclose()
    return result


async def failed_turn(
    tts: plugin_cartesia_ws.TTS, tokens: list[str] | None = None
) -> APIStatusError:
    """A turn that must fail with an APIStatusError; closes the TTS; returns the error."""
    try:
        with pytest.raises(APIStatusError) as info:
            await run_turn(tts, tokens or ["Hello."])
    finally:
        await tts.aclose()
    return info.value


async def connected(tts: plugin_cartesia_ws.TTS) -> None:
    """Until a connect under way (prewarm, background reconnect) has finished client-side."""
    connecting = tts.pool._connecting
    if connecting is not None:
        await asyncio.wait_for(asyncio.shield(connecting), 5)


def sentence_tokens(text: str) -> list[str]:
    """Split like a GPT tokenizer would: words with their leading space, punctuation apart."""
    tokens: list[str] = []
    for i, word in enumerate(text.split(" ")):
        lead = " " if i else ""
        core = word.rstrip(".,!?")
        tail = word[len(core) :]
        tokens.append(lead + core)
        tokens.extend(tail)
    return [t for t in tokens if t]
