"""plugin_cartesia_ws.TTS against the emulator over a real socket."""

from __future__ import annotations

import asyncio
import json

import pytest
from livekit.agents import APIConnectionError, APIError, APIStatusError, APITimeoutError

import plugin_cartesia_ws
from agent.dev.scripted import llm_tokens, stream_turn
from plugin_cartesia_ws.emulator import CartesiaEmulator

from .conftest import FAST, assert_every_byte, connected, failed_turn, run_turn

REPLY = "Sure! It is sunny and twenty two degrees in Paris today. Would you like the forecast?"


async def test_multi_sentence_turn_token_by_token(
    emu: CartesiaEmulator, unpaced_tts: plugin_cartesia_ws.TTS
) -> None:
    tts = unpaced_tts  # one context per turn
    tokens = llm_tokens(REPLY)
    result = await run_turn(tts, tokens, token_gap=0.01)
    record = emu.record(result.context_id)
    assert record.done_sent
    # the audio LiveKit got is exactly the audio the server sent for this context
    assert result.audio and result.sha256 == record.turn_audio_sha256
    # every frame of the context carried the same options and an explicit buffer delay
    gens = [m for m in record.received if "transcript" in m]
    assert all(m["max_buffer_delay_ms"] == 0 for m in gens)
    assert gens[-1]["continue"] is False and gens[-1]["transcript"] == ""
    assert record.transcript.strip() == REPLY
    # the first clause went out on its own, before the rest of the reply existed
    first = gens[0]["transcript"]
    assert first.strip() == "Sure!" and len(gens) >= 3
    # aligned transcript: word-level TimedStrings covering what was sent
    assert "".join(result.transcript).strip() == REPLY
    assert all(t.end_time >= t.start_time for t in result.transcript)
    stats = result.stream.stats if result.stream else None
    assert stats is not None and stats.time_to_first_audio is not None and not stats.socket_reused


async def test_flush_sends_a_cartesia_flush(
    emu: CartesiaEmulator, tts: plugin_cartesia_ws.TTS
) -> None:
    stream = tts.stream(conn_options=FAST)
    stream.push_text("Hello there, how are you today? I am")
    stream.flush()
    got_flush_done = asyncio.create_task(
        emu.wait_for(
            lambda: any("flush_done" == t for r in emu.records.values() for t in r.event_types)
        )
    )
    await got_flush_done
    stream.end_input()
    frames = [ev async for ev in stream]
    await stream.aclose()
    assert frames
    [record] = emu.records.values()
    flushes = [i for i, m in enumerate(record.received) if m.get("flush")]
    assert flushes and all(record.received[i]["transcript"] == "" for i in flushes)
    # "I am" was pushed before the flush, so it went out, then a flush, before the end
    order = [m.get("transcript") for m in record.received]
    assert order.index("I am") + 1 in flushes
    assert record.transcript.strip() == "Hello there, how are you today? I am"


async def test_two_concurrent_streams_share_one_socket(
    emu: CartesiaEmulator, tts: plugin_cartesia_ws.TTS
) -> None:
    a, b = await asyncio.gather(
        run_turn(tts, llm_tokens("First stream speaking now."), token_gap=0.005),
        run_turn(tts, llm_tokens("Second stream, also speaking."), token_gap=0.005),
    )
    assert emu.sockets_opened == 1
    assert a.sha256 == emu.record(a.context_id).turn_audio_sha256
    assert b.sha256 == emu.record(b.context_id).turn_audio_sha256
    assert a.context_id != b.context_id


async def test_prewarm_opens_the_socket_before_the_first_turn(
    emu: CartesiaEmulator, tts: plugin_cartesia_ws.TTS
) -> None:
    tts.prewarm()
    await emu.wait_for(lambda: emu.open_sockets == 1)
    await connected(tts)  # joining a handshake is not reuse
    result = await run_turn(tts, ["Hello."])
    assert result.stream is not None and result.stream.stats is not None
    assert result.stream.stats.socket_reused
    assert emu.sockets_opened == 1


async def test_barge_in_cancels_the_context_and_keeps_the_socket(
    emu: CartesiaEmulator, tts: plugin_cartesia_ws.TTS
) -> None:
    # closed after 2 frames: what AgentSession does on barge-in
    cut = await stream_turn(
        tts,
        [(0.0, "This is a long answer that keeps going. " * 6)],
        conn_options=FAST,
        until=lambda t: t.frames == 2,
    )
    context_id = cut.context_id
    after_close = [ev async for ev in cut.stream]
    assert after_close == []  # nothing of the cancelled context reaches LiveKit
    await emu.wait_for(lambda: emu.record(context_id).cancelled)
    assert not emu.record(context_id).done_sent
    # the next turn runs on the same socket and gets only its own audio
    nxt = await run_turn(tts, ["Okay, ", "stopping", "."])
    assert emu.sockets_opened == 1
    assert (
        nxt.stream is not None and nxt.stream.stats is not None and nxt.stream.stats.socket_reused
    )
    assert nxt.sha256 == emu.record(nxt.context_id).turn_audio_sha256


async def test_stale_frames_of_a_cancelled_context_never_reach_the_next_turn(
    emu: CartesiaEmulator, unpaced_tts: plugin_cartesia_ws.TTS
) -> None:
    tts = unpaced_tts  # one context per turn
    emu.add_fault("stale_frames")  # this server ignores the cancel and keeps sending
    stream = tts.stream(conn_options=FAST)
    stream.push_text("Old answer that will be interrupted. " * 4)
    stream.end_input()
    async for _ev in stream:
        break
    old_id = stream.stats.context_id if stream.stats else ""
    await stream.aclose()
    nxt = await run_turn(tts, ["New", " answer", "."])
    # the whole old answer is generated first: ~6 s at the cartesia profile's speed
    await emu.wait_for(lambda: emu.record(old_id).done_sent, timeout=30)
    assert emu.record(old_id).chunks_after_cancel > 0
    assert nxt.sha256 == emu.record(nxt.context_id).turn_audio_sha256
    socket = tts.pool.socket
    assert socket is not None and socket.stale_frames_dropped > 0


async def test_bad_key_is_a_clear_non_retryable_error(emu: CartesiaEmulator) -> None:
    tts = plugin_cartesia_ws.TTS(api_key="sk_car_definitely_wrong", base_url=emu.url)
    err = await failed_turn(tts)
    assert err.status_code == 401 and not err.retryable
    assert "API key" in err.message and "sk_car_definitely_wrong" not in repr(err)


async def test_error_frame_raises_instead_of_ending_silently(
    emu: CartesiaEmulator, tts: plugin_cartesia_ws.TTS
) -> None:
    emu.add_fault("error", status=500, code="internal_server_error", after_chunks=0)
    with pytest.raises(APIStatusError) as info:
        await run_turn(tts, ["Hello there."])
    assert info.value.status_code == 500 and info.value.retryable


async def test_unknown_model_is_fatal_400(emu: CartesiaEmulator) -> None:
    tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url, model="sonic-99")
    err = await failed_turn(tts)
    assert err.status_code == 400 and not err.retryable
    assert "model_not_found" in err.message and "CARTESIA_MODEL" in str(err)


async def test_concurrency_limit_429_is_retryable() -> None:
    async with CartesiaEmulator(voice="tone", max_contexts_per_key=1) as emu:
        tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url)
        try:
            hold = tts.stream(conn_options=FAST)
            hold.push_text("Holding the only slot. ")
            await emu.wait_for(lambda: len(emu.records) == 1)
            with pytest.raises(APIStatusError) as info:
                await run_turn(tts, ["Second."])
            assert info.value.status_code == 429 and info.value.retryable
            await hold.aclose()
        finally:
            await tts.aclose()


async def test_server_stall_is_detected_and_the_turn_resumes_on_a_new_socket(
    emu: CartesiaEmulator, tts: plugin_cartesia_ws.TTS, caplog: pytest.LogCaptureFixture
) -> None:
    emu.add_fault("stall_after", after_chunks=1)  # audio starts, then nothing, no done
    text = "This answer will stall after its first chunk."
    result = await run_turn(tts, [text])
    assert result.stream is not None and result.stream.stats is not None
    assert result.stream.stats.resumes == 1 and result.stream.stats.done
    assert "".join(result.transcript).split() == text.split()  # every word once, in order
    assert "resuming the turn" in caplog.text
    assert emu.sockets_opened == 2  # the stalled socket was replaced


async def test_a_server_that_keeps_stalling_gives_a_timeout_error(
    emu: CartesiaEmulator, tts: plugin_cartesia_ws.TTS
) -> None:
    emu.add_fault("stall", seconds=30, times=None)  # never a first chunk
    with pytest.raises(APITimeoutError) as info:
        await run_turn(tts, ["Nobody answers this."])
    assert info.value.retryable


async def test_socket_dropped_mid_turn_resumes_with_no_word_lost_or_repeated(
    emu: CartesiaEmulator, unpaced_tts: plugin_cartesia_ws.TTS, caplog: pytest.LogCaptureFixture
) -> None:
    tts = unpaced_tts  # one context per turn
    emu.add_fault("drop", after_chunks=12)
    text = "A reply that will be cut off by a dropped socket, and then it carries on to the end."
    result = await run_turn(tts, llm_tokens(text), token_gap=0.005)
    stats = result.stream.stats if result.stream else None
    assert stats is not None and stats.resumes == 1 and stats.done
    heard = "".join(result.transcript).split()
    assert heard == text.split()  # the listener's words: all of them, in order, none twice
    resumed = emu.record(f"{stats.context_id}-r1").transcript.strip()
    assert text.endswith(resumed) and len(resumed) < len(text)  # only the unheard rest
    assert "resuming the turn" in caplog.text
    nxt = await run_turn(tts, ["Back again."])
    assert nxt.sha256 == emu.record(nxt.context_id).turn_audio_sha256


async def test_dropped_socket_without_word_timestamps_fails_clearly(emu: CartesiaEmulator) -> None:
    """Nothing locates the cut: no word timings, and "tokens" chunking (server-side
    buffering) leaves no per-chunk receipts. With receipts the turn resumes instead
    (tests/plugin/test_turn_failures.py)."""
    tts = plugin_cartesia_ws.TTS(
        api_key=emu.api_key, base_url=emu.url, word_timestamps=False, chunking="tokens"
    )
    emu.add_fault("drop", after_chunks=25)
    try:
        with pytest.raises(APIConnectionError) as info:
            await run_turn(tts, ["A long reply that will be cut off. " * 3])
        assert info.value.retryable and "word timestamps" in info.value.message
        nxt = await run_turn(tts, ["Back again."])
        assert_every_byte(nxt, emu)
    finally:
        await tts.aclose()


async def test_idle_close_is_replaced_before_the_next_turn() -> None:
    async with CartesiaEmulator(voice="tone", idle_timeout_s=0.3) as emu:
        tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url)
        try:
            await run_turn(tts, ["First."])
            # the server closes the idle socket; the pool reconnects in the background
            await emu.wait_for(lambda: emu.sockets_opened == 2, timeout=5)
            await connected(tts)  # joining a handshake is not reuse
            result = await run_turn(tts, ["Second."])
            assert result.audio
            assert result.stream is not None and result.stream.stats is not None
            assert result.stream.stats.socket_reused  # the turn did not pay the handshake
        finally:
            await tts.aclose()


async def test_punctuation_only_and_empty_input_never_fail(
    emu: CartesiaEmulator, tts: plugin_cartesia_ws.TTS
) -> None:
    empty = await run_turn(tts, ["", "   "])
    dots = await run_turn(tts, ["...", " !"])
    assert empty.audio == b""
    assert dots.frames >= 1  # a short silence, so LiveKit does not report "no audio"
    assert emu.records == {}  # nothing unspeakable went to the server


async def test_update_options_applies_at_the_next_turn(
    emu: CartesiaEmulator, tts: plugin_cartesia_ws.TTS
) -> None:
    stream = tts.stream(conn_options=FAST)
    tts.update_options(language="fr", speed=1.2)
    stream.push_text("Bonjour.")
    stream.end_input()
    [ev async for ev in stream]
    await stream.aclose()
    nxt = await run_turn(tts, ["Salut."])
    first = emu.record(stream.stats.context_id if stream.stats else "").received[0]
    second = emu.record(nxt.context_id).received[0]
    assert first["language"] == "en" and "generation_config" not in first
    assert second["language"] == "fr" and second["generation_config"] == {"speed": 1.2}


@pytest.mark.parametrize("encoding", ["pcm_s16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw"])
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
async def test_every_encoding_and_rate_reaches_livekit_as_16_bit(
    emu: CartesiaEmulator, encoding: str, rate: int
) -> None:
    tts = plugin_cartesia_ws.TTS(
        api_key=emu.api_key, base_url=emu.url, encoding=encoding, sample_rate=rate
    )
    try:
        result = await run_turn(tts, ["Testing one two."])
    finally:
        await tts.aclose()
    record = emu.record(result.context_id)
    width = {"pcm_s16le": 2, "pcm_f32le": 4, "pcm_mulaw": 1, "pcm_alaw": 1}[encoding]
    assert len(result.audio) == 2 * record.audio_bytes // width
    assert tts.sample_rate == rate


async def test_synthesize_uses_the_socket() -> None:
    async with CartesiaEmulator(voice="tone", record_audio=True) as emu:
        tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url)
        audio = b""
        try:
            async with tts.synthesize("One whole sentence at once.", conn_options=FAST) as stream:
                async for ev in stream:
                    audio += ev.frame.data.tobytes()
        finally:
            await tts.aclose()
        [record] = emu.records.values()
    assert record.audio is not None and audio.startswith(bytes(record.audio))
    assert set(audio[len(record.audio) :]) <= {0}  # LiveKit pads the last frame with silence


async def test_phoneme_timestamps_are_exposed(emu: CartesiaEmulator) -> None:
    tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url, add_phoneme_timestamps=True)
    try:
        result = await run_turn(tts, ["Hello world."])
    finally:
        await tts.aclose()
    assert result.stream is not None and result.stream.phoneme_timestamps
    assert json.dumps(emu.record(result.context_id).received[0]["add_phoneme_timestamps"]) == "true"


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARTESIA_API_KEY", raising=False)
    with pytest.raises(ValueError, match="CARTESIA_API_KEY"):
        plugin_cartesia_ws.TTS()


async def test_errors_do_not_hang_when_nothing_is_listening() -> None:
    tts = plugin_cartesia_ws.TTS(api_key="k", base_url="http://127.0.0.1:9")
    try:
        with pytest.raises(APIError):
            await run_turn(tts, ["Hello."])
    finally:
        await tts.aclose()


async def test_an_explicit_tokenizer_decides_the_sentences(emu: CartesiaEmulator) -> None:
    from livekit.agents import tokenize

    tts = plugin_cartesia_ws.TTS(
        api_key=emu.api_key,
        base_url=emu.url,
        tokenizer=tokenize.blingfire.SentenceTokenizer(),
        text_pacing=False,  # the tokenizer's sentences as sent, in one context
    )
    try:
        result = await run_turn(tts, llm_tokens(REPLY), token_gap=0.002)
    finally:
        await tts.aclose()
    sent = [m["transcript"] for m in emu.record(result.context_id).received if m.get("transcript")]
    assert sent[0] == "Sure! It is sunny and twenty two degrees in Paris today. "
    assert "".join(sent).split() == REPLY.split()
    assert result.sha256 == emu.record(result.context_id).turn_audio_sha256
