"""The emulator driven by the official ``cartesia`` SDK, unchanged: WebSocket contexts with
flush and cancel, ``tts.generate`` (bytes) and ``tts.generate_sse``; every message must parse
with the SDK's own ``WebsocketResponse`` types."""

from __future__ import annotations

import asyncio
import base64
import json

import pydantic
import pytest
from cartesia import AsyncCartesia
from cartesia.types.websocket_response import Chunk, Done, FlushDone, Timestamps, WebsocketResponse

from plugin_cartesia_ws.emulator import CartesiaEmulator
from plugin_cartesia_ws.emulator.voices import ToneVoice
from plugin_cartesia_ws.models import TTSDefaultVoiceId

VOICE = {"mode": "id", "id": TTSDefaultVoiceId}
FORMAT = {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000}
STRICT = pydantic.TypeAdapter(WebsocketResponse)


def client(emu: CartesiaEmulator) -> AsyncCartesia:
    return AsyncCartesia(
        api_key=emu.api_key,
        base_url=emu.url,
        websocket_base_url=emu.url.replace("http://", "ws://"),
        max_retries=0,
    )


async def collect(ctx) -> list:  # noqa: ANN001
    return [event async for event in ctx.receive()]


@pytest.fixture
async def emu():
    async with CartesiaEmulator(voice="tone") as server:
        yield server


async def test_websocket_context_with_flush_and_end(emu: CartesiaEmulator) -> None:
    sdk = client(emu)
    async with sdk.tts.websocket_connect() as conn:
        ctx = conn.context(
            model_id="sonic-3",
            voice=VOICE,
            output_format=FORMAT,
            add_timestamps=True,
            max_buffer_delay_ms=0,
        )
        await ctx.push("Hello there, ")
        await ctx.push("how are you today? ")
        await ctx.push("", flush=True)
        await ctx.push("Fine, thanks. ")
        await ctx.no_more_inputs()
        events = await asyncio.wait_for(collect(ctx), 10)
    kinds = [e.type for e in events]
    assert kinds[-1] == "done" and kinds.count("done") == 1
    assert "flush_done" in kinds and "timestamps" in kinds
    flush = next(e for e in events if isinstance(e, FlushDone))
    assert flush.flush_id == 1
    chunks = [e for e in events if isinstance(e, Chunk)]
    # audio before the flush carries flush_id 1, after it 2
    assert {c.flush_id for c in chunks} == {1, 2}
    audio = b"".join(c.audio or b"" for c in chunks)
    tone = ToneVoice()
    expected = b"".join(
        tone.render(t, sample_rate=16000).samples.tobytes()
        for t in ("Hello there, ", "how are you today? ", "Fine, thanks. ")
    )
    assert audio == expected  # deterministic voice: byte-exact
    words = [w for e in events if isinstance(e, Timestamps) for w in e.word_timestamps.words]
    assert words == ["Hello", "there,", "how", "are", "you", "today?", "Fine,", "thanks."]
    starts = [s for e in events if isinstance(e, Timestamps) for s in e.word_timestamps.start]
    assert starts == sorted(starts) and starts[-1] < len(audio) / 2 / 16000
    for event in events:  # strict validation, not just the SDK's unchecked construct
        STRICT.validate_python(json.loads(event.to_json()))


async def test_cancel_stops_the_context_and_the_socket_serves_the_next_one(
    emu: CartesiaEmulator,
) -> None:
    sdk = client(emu)
    async with sdk.tts.websocket_connect() as conn:
        long_ctx = conn.context(model_id="sonic-3", voice=VOICE, output_format=FORMAT)
        await long_ctx.push("This is a long answer. " * 3)
        await long_ctx.push("It keeps going. " * 3)
        await long_ctx.cancel()
        await emu.wait_for(lambda: emu.record(long_ctx._context_id).cancelled)
        record = emu.record(long_ctx._context_id)
        assert record.cancelled and not record.done_sent

        nxt = conn.context(model_id="sonic-3", voice=VOICE, output_format=FORMAT)
        await nxt.push("Next turn.")
        await nxt.no_more_inputs()
        events = await asyncio.wait_for(collect(nxt), 10)
    assert events[-1].type == "done"
    assert emu.sockets_opened == 1
    # the second input of the cancelled context never started generating
    record = emu.record(long_ctx._context_id)
    assert record.audio_bytes <= len(
        ToneVoice().render("This is a long answer. " * 3, sample_rate=16000).samples.tobytes()
    )


async def test_two_interleaved_contexts_on_one_socket(emu: CartesiaEmulator) -> None:
    sdk = client(emu)
    async with sdk.tts.websocket_connect() as conn:
        a = conn.context(model_id="sonic-3", voice=VOICE, output_format=FORMAT)
        b = conn.context(model_id="sonic-3", voice=VOICE, output_format=FORMAT)
        await a.push("Alpha one. ")
        await b.push("Bravo one. ")
        await a.push("Alpha two. ")
        await a.no_more_inputs()
        await b.no_more_inputs()
        ev_a, ev_b = await asyncio.wait_for(asyncio.gather(collect(a), collect(b)), 10)
    assert ev_a[-1].type == ev_b[-1].type == "done"
    assert all(e.context_id == a._context_id for e in ev_a)
    assert all(e.context_id == b._context_id for e in ev_b)


async def test_sdk_default_format_f32_44100_and_bare_voice(emu: CartesiaEmulator) -> None:
    sdk = client(emu)
    async with sdk.tts.websocket_connect() as conn:
        ctx = conn.context(voice=TTSDefaultVoiceId)  # SDK defaults
        await ctx.push("Hi.")
        await ctx.no_more_inputs()
        events = await asyncio.wait_for(collect(ctx), 10)
    audio = b"".join(e.audio or b"" for e in events if isinstance(e, Chunk))
    expected = ToneVoice().render("Hi.", sample_rate=44100).samples
    assert len(audio) == 4 * len(expected)  # pcm_f32le, 44.1 kHz


async def test_generate_bytes_and_sse(emu: CartesiaEmulator) -> None:
    sdk = client(emu)
    response = await sdk.tts.generate(
        model_id="sonic-3",
        transcript="Hello from the bytes endpoint.",
        voice={"mode": "id", "id": VOICE["id"]},
        output_format={"container": "wav", "encoding": "pcm_s16le", "sample_rate": 16000},
    )
    wav = await response.read()
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    expected = ToneVoice().render("Hello from the bytes endpoint.", sample_rate=16000)
    assert wav[44:] == expected.samples.tobytes()

    stream = await sdk.tts.generate_sse(
        model_id="sonic-3",
        transcript="Hello over SSE.",
        voice={"mode": "id", "id": VOICE["id"]},
        output_format={"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000},
        add_timestamps=True,
    )
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[-1] == "done" and "timestamps" in kinds
    audio = b"".join(base64.b64decode(e.data) for e in events if e.type == "chunk")
    assert audio == ToneVoice().render("Hello over SSE.", sample_rate=16000).samples.tobytes()


async def test_bad_key_is_refused_at_the_handshake(emu: CartesiaEmulator) -> None:
    sdk = AsyncCartesia(
        api_key="sk_car_wrong",
        base_url=emu.url,
        websocket_base_url=emu.url.replace("http://", "ws://"),
        max_retries=0,
    )
    with pytest.raises(Exception) as info:
        async with sdk.tts.websocket_connect():
            pass
    assert "401" in str(info.value)
    assert emu.sockets_opened == 0


async def test_unknown_model_error_parses_as_sdk_error(emu: CartesiaEmulator) -> None:
    sdk = client(emu)
    async with sdk.tts.websocket_connect() as conn:
        ctx = conn.context(model_id="sonic-99", voice=VOICE, output_format=FORMAT)
        await ctx.push("Hello.")
        events = await asyncio.wait_for(collect(ctx), 10)
    [err] = events
    assert err.type == "error" and err.status_code == 400 and err.error_code == "model_not_found"
    assert isinstance(STRICT.validate_python(json.loads(err.to_json())), object)
    assert not isinstance(err, Done)
