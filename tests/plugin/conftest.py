"""Shared fixtures: an in-process emulator and a TTS pointed at it, with a log capture that
fails any test whose logs or errors contain the API key."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from livekit.agents import APIConnectOptions, APIStatusError

import plugin_cartesia_ws
from agent.dev.scripted import StreamedTurn, stream_turn
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


async def run_turn(
    tts: plugin_cartesia_ws.TTS,
    tokens: list[str],
    *,
    token_gap: float = 0.0,
    conn_options: APIConnectOptions = FAST,
) -> StreamedTurn:
    """Push tokens like an LLM would, `token_gap` s apart, end the input, collect every frame."""
    plan = [(i * token_gap, token) for i, token in enumerate(tokens)]
    return await stream_turn(tts, plan, conn_options=conn_options)


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
