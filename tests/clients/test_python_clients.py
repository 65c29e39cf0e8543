"""The Python clients over TLS, pointed at the emulator by base URL only: Cartesia's SDK (which
always dials wss:// from an https base URL), LiveKit's Python plugin and ours. They run in
this process, so they trust the emulator's CA the way a user's process would: the SDK through
SSL_CERT_FILE, the aiohttp-based plugins through an ``http_session`` whose connector trusts it
(aiohttp reads SSL_CERT_FILE once, at import)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from cartesia import AsyncCartesia
from cartesia.types.websocket_response import Chunk
from livekit.agents import APIConnectOptions
from livekit.plugins import cartesia as lk_cartesia

import plugin_cartesia_ws
from plugin_cartesia_ws.emulator import CartesiaEmulator
from plugin_cartesia_ws.emulator.voices import ToneVoice
from tests.mp3frames import parse_mp3

from .conftest import VOICE_ID

VOICE = {"mode": "id", "id": VOICE_ID}
NO_RETRY = APIConnectOptions(max_retry=0, timeout=10.0)


def tone(text: str, rate: int) -> bytes:
    return ToneVoice().render(text, sample_rate=rate).samples.tobytes()


@pytest.fixture
async def sdk(
    tls_emulator: CartesiaEmulator, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AsyncCartesia]:
    assert tls_emulator.ca_path is not None
    monkeypatch.setenv("SSL_CERT_FILE", tls_emulator.ca_path)
    client = AsyncCartesia(api_key=tls_emulator.api_key, base_url=tls_emulator.url, max_retries=0)
    yield client
    await client.close()


def trusting_session(emu: CartesiaEmulator) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=emu.client_ssl_context()))


async def test_sdk_websocket_over_wss_with_sonic_3_6(
    sdk: AsyncCartesia, tls_emulator: CartesiaEmulator
) -> None:
    async with sdk.tts.websocket_connect() as conn:
        ctx = conn.context(
            model_id="sonic-3.6",
            voice=VOICE,
            output_format={"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000},
        )
        await ctx.push("Hello over a secure socket. ")
        await ctx.no_more_inputs()
        events = await asyncio.wait_for(_collect(ctx), 10)
    assert events[-1].type == "done"
    audio = b"".join(e.audio or b"" for e in events if isinstance(e, Chunk))
    assert audio == tls_emulator.record(ctx._context_id).audio
    assert audio == tone("Hello over a secure socket. ", 24000)


async def _collect(ctx) -> list:  # noqa: ANN001
    return [event async for event in ctx.receive()]


@pytest.mark.parametrize(("rate", "bit_rate"), [(44100, 128000), (22050, 64000), (8000, 32000)])
async def test_sdk_generate_mp3(sdk: AsyncCartesia, rate: int, bit_rate: int) -> None:
    text = "An mp3 from the bytes endpoint."
    response = await sdk.tts.generate(
        model_id="sonic-3.6",
        transcript=text,
        voice=VOICE,
        output_format={"container": "mp3", "sample_rate": rate, "bit_rate": bit_rate},
    )
    assert response.headers["content-type"] == "audio/mpeg"
    mp3 = parse_mp3(await response.read())
    assert mp3.sample_rates == {rate} and mp3.bit_rates == {bit_rate}
    seconds = len(tone(text, rate)) / 2 / rate
    assert seconds <= mp3.duration_s < seconds + 0.25


async def test_sdk_generate_raw_is_audio(sdk: AsyncCartesia) -> None:
    response = await sdk.tts.generate(
        model_id="sonic-3.6",
        transcript="Raw samples.",
        voice=VOICE,
        output_format={"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000},
    )
    assert response.headers["content-type"] == "audio/pcm"
    assert await response.read() == tone("Raw samples.", 16000)


async def test_livekit_python_plugin_over_tls(tls_emulator: CartesiaEmulator) -> None:
    async with trusting_session(tls_emulator) as http:
        tts = lk_cartesia.TTS(
            api_key=tls_emulator.api_key, base_url=tls_emulator.url, http_session=http
        )
        stream = tts.stream(conn_options=NO_RETRY)
        stream.push_text("Hello from LiveKit over TLS. ")
        stream.end_input()
        frames = [ev.frame async for ev in stream]
        chunked = [
            ev.frame async for ev in tts.synthesize("And over https.", conn_options=NO_RETRY)
        ]
        await stream.aclose()
        await tts.aclose()
    [ctx_id] = list(tls_emulator.records)
    streamed = b"".join(bytes(f.data) for f in frames)
    assert streamed == tls_emulator.record(ctx_id).audio
    got, want = b"".join(bytes(f.data) for f in chunked), tone("And over https.", 24000)
    # LiveKit's emitter pads its last frame with silence
    assert got[: len(want)] == want and not any(got[len(want) :])
    assert len(got) - len(want) < 2 * 24000 // 10


async def test_our_plugin_over_tls(tls_emulator: CartesiaEmulator) -> None:
    async with trusting_session(tls_emulator) as http:
        tts = plugin_cartesia_ws.TTS(
            api_key=tls_emulator.api_key, base_url=tls_emulator.url, http_session=http
        )
        stream = tts.stream(conn_options=NO_RETRY)
        stream.push_text("Hello from our plugin over TLS.")
        stream.end_input()
        frames = [ev.frame async for ev in stream]
        await stream.aclose()
        await tts.aclose()
    [ctx_id] = list(tls_emulator.records)
    assert b"".join(bytes(f.data) for f in frames) == tls_emulator.record(ctx_id).audio
