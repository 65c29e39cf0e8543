"""Issue 10: the failure orders that used to hang a turn or lose the rest of a reply, each
asked of the emulator and checked for what the listener gets. Each test fails on the
two-task engine that preceded ``turn.TurnMachine``."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest
from livekit.agents import APIConnectOptions, APIError, APIStatusError

import plugin_cartesia_ws
from agent.dev.scripted import StreamedTurn, llm_tokens
from plugin_cartesia_ws import ReconnectPolicy
from plugin_cartesia_ws import stream as stream_module
from plugin_cartesia_ws.emulator import CartesiaEmulator

from .conftest import FAST, connected, run_turn

SHORT = APIConnectOptions(max_retry=0, timeout=0.5)
LONG = "A long reply that will be cut off. It goes on for a while. And then it ends well. "


def _tts(emu: CartesiaEmulator, **kwargs: object) -> plugin_cartesia_ws.TTS:
    return plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url, **kwargs)  # type: ignore[arg-type]


async def _collect(stream: plugin_cartesia_ws.SynthesizeStream) -> StreamedTurn:
    result = StreamedTurn(stream)
    async for ev in stream:
        result.add(ev)
    return result


def _words(result: StreamedTurn) -> list[str]:
    return "".join(result.transcript).split()


# ---------------------------------------------------------------- case 1
async def test_a_drop_during_an_llm_pause_resumes_and_the_rest_is_heard(
    emu: CartesiaEmulator,
) -> None:
    """Everything so far was heard, the LLM pauses longer than the timeout, the socket
    drops: the resumed context is not taken for a stall, and the rest of the reply plays."""
    emu.add_fault("drop_idle", seconds=0.8)  # drops after 0.8 s without work: > timeout
    tts = _tts(emu)
    first, rest = "The first sentence is heard in full. ", "And the rest comes after a pause."
    try:
        stream = tts.stream(conn_options=SHORT)
        stream.push_text(first)  # the LLM pauses after this (no flush: same segment)
        collecting = asyncio.create_task(_collect(stream))
        await emu.wait_for(lambda: emu.sockets_opened == 1 and emu.open_sockets == 0)
        stream.push_text(rest)  # the LLM is back, after a pause longer than the timeout
        stream.end_input()
        result = await asyncio.wait_for(collecting, 10)
        await stream.aclose()
    finally:
        await tts.aclose()
    assert result.stream is not None and result.stream.stats is not None
    assert result.stream.stats.resumes == 1 and result.stream.stats.done
    assert _words(result) == (first + rest).split()
    assert emu.record(f"{result.context_id}-r1").transcript.strip() == rest


# ---------------------------------------------------------------- case 2
class _ExplodingTokenizer:
    """A user's SentenceTokenizer with a bug: it raises on some input."""

    def tokenize(self, text: str, language: str | None = None) -> list[str]:
        if "boom" in text:
            raise ValueError("tokenizer bug")
        return [s for s in re.split(r"(?<=[.!?])\s+", text) if s]


async def test_an_error_in_the_sender_ends_the_turn_and_cancels_its_context(
    emu: CartesiaEmulator,
) -> None:
    tts = _tts(emu, tokenizer=_ExplodingTokenizer())
    try:
        stream = tts.stream(conn_options=FAST)
        stream.push_text("The first sentence goes out. Then ")
        collecting = asyncio.create_task(_collect(stream))
        await emu.wait_for(lambda: len(emu.records) == 1)
        stream.push_text("boom.")
        stream.end_input()
        with pytest.raises(APIError) as info:
            await asyncio.wait_for(collecting, 10)  # the old engine never ended this turn
        await stream.aclose()
        assert not info.value.retryable and "ValueError" in info.value.message
        [context_id] = emu.records
        await emu.wait_for(lambda: emu.record(context_id).cancel_received_at is not None)
        assert tts.pool.socket is not None and not tts.pool.socket.contexts
        assert len(emu.records) == 1  # no second context was opened
    finally:
        await tts.aclose()


# ---------------------------------------------------------------- case 3
async def test_a_context_without_done_does_not_take_the_shared_socket_down(
    emu: CartesiaEmulator,
) -> None:
    emu.add_fault("no_done")  # the first context that starts: A
    tts = _tts(emu)
    try:
        a = tts.stream(conn_options=FAST)
        a.push_text("Turn A is complete, but its done never comes.")
        a.end_input()
        a_done = asyncio.create_task(_collect(a))
        await emu.wait_for(lambda: len(emu.records) == 1)
        b = tts.stream(conn_options=FAST)
        b.push_text("Turn B shares the socket. ")
        b_done = asyncio.create_task(_collect(b))
        await asyncio.wait_for(a_done, 10)
        b.push_text("It carries on after A has ended.")
        b.end_input()
        b_result = await asyncio.wait_for(b_done, 10)
        await a.aclose()
        await b.aclose()
    finally:
        await tts.aclose()
    assert b_result.stream is not None and b_result.stream.stats is not None
    assert b_result.stream.stats.resumes == 0 and b_result.stream.stats.done
    assert emu.sockets_opened == 1  # A's missing done never cost B its socket


# ---------------------------------------------------------------- case 4
async def test_timings_before_their_audio_are_held_never_dropped_or_repeated(
    emu: CartesiaEmulator,
) -> None:
    """Server-side buffering ("tokens": no per-chunk receipts), so only the word timings
    locate the cut, and they all arrive before their audio."""
    emu.add_fault("timings_first", times=None)
    emu.add_fault("drop", after_chunks=25)
    tts = _tts(emu, chunking="tokens")
    try:
        result = await run_turn(tts, [LONG])
    finally:
        await tts.aclose()
    assert result.stream is not None and result.stream.stats is not None
    assert result.stream.stats.resumes == 1
    assert _words(result) == LONG.split()  # every word once, in order


# ---------------------------------------------------------------- case 5
@pytest.mark.parametrize("timings", ["none", "per_generation"])
async def test_resuming_without_per_word_timings_uses_flush_receipts(
    emu: CartesiaEmulator, timings: str
) -> None:
    if timings == "per_generation":
        emu.add_fault("timings_per_generation", times=None)
    emu.add_fault("drop", after_chunks=25)  # well past 1.5 s of audio
    tts = _tts(emu, word_timestamps=timings != "none")
    try:
        result = await run_turn(tts, llm_tokens(LONG), token_gap=0.005)
    finally:
        await tts.aclose()
    stats = result.stream.stats if result.stream else None
    assert stats is not None and stats.resumes == 1 and stats.done
    first = emu.record(stats.context_id)
    chunks = [m["transcript"] for m in first.received if m.get("transcript")]
    resumed = emu.record(f"{stats.context_id}-r1").transcript
    assert LONG.endswith(resumed) and resumed
    # It starts right after the last chunk whose flush_done (receipt) the server sent, so
    # only the chunk the drop cut is said again.
    receipted = first.event_types.count("flush_done")
    assert len(LONG) - len(resumed) == len("".join(chunks[:receipted]))
    if timings == "per_generation":
        assert _words(result) == LONG.split()


# ---------------------------------------------------------------- case 6
async def test_barge_in_while_resuming_leaves_nothing_open(emu: CartesiaEmulator) -> None:
    tts = _tts(emu)
    try:
        await run_turn(tts, ["A warm socket first."])
        emu.add_fault("drop", after_chunks=3)
        emu.add_fault("slow_handshake", seconds=30)  # the socket the turn resumes on
        stream = tts.stream(conn_options=FAST)
        stream.push_text(LONG)
        stream.end_input()
        collecting = asyncio.create_task(_collect(stream))
        await emu.wait_for(lambda: emu.open_sockets == 0)  # dropped: the turn is resuming
        await asyncio.wait_for(stream.aclose(), 5)  # barge-in
        collecting.cancel()
        await asyncio.gather(collecting, return_exceptions=True)
        assert stream.stats is not None and stream.stats.cancelled
        assert stream._routed is None  # nothing left routed on any socket
        emu.clear_faults()
    finally:
        await tts.aclose()


# ---------------------------------------------------------------- case 7
async def test_api_version_changed_while_a_connect_is_in_flight_is_applied(
    emu: CartesiaEmulator,
) -> None:
    emu.add_fault("slow_handshake", seconds=0.5)
    tts = _tts(emu, api_version="2025-04-16")
    try:
        tts.prewarm()
        await emu.wait_for(lambda: emu.stats["handshakes"] == 1)
        tts.update_options(api_version="2026-03-01")
        result = await run_turn(tts, ["Hello with the new version."])
    finally:
        await tts.aclose()
    assert emu.version_of(result.context_id) == "2026-03-01"


async def test_update_options_chunking_keeps_max_buffer_delay_ms(emu: CartesiaEmulator) -> None:
    tts = _tts(emu, max_buffer_delay_ms=300)
    try:
        tts.update_options(chunking="sentence")
        result = await run_turn(tts, ["Hello there, this is a whole sentence."])
    finally:
        await tts.aclose()
    assert emu.record(result.context_id).received[0]["max_buffer_delay_ms"] == 300


# ---------------------------------------------------------------- case 8
async def test_after_a_401_the_breaker_refusal_keeps_the_status(emu: CartesiaEmulator) -> None:
    emu.add_fault("refuse", status=401, times=None)
    policy = ReconnectPolicy(base_delay_s=0.01, max_delay_s=0.02, breaker_threshold=3)
    tts = _tts(emu, reconnect_policy=policy)
    try:
        for _ in range(3):
            with pytest.raises(APIStatusError):
                await run_turn(tts, ["Hello."])
        with pytest.raises(APIStatusError) as info:
            await run_turn(tts, ["Hello?"])
    finally:
        await tts.aclose()
    assert info.value.status_code == 401 and not info.value.retryable
    assert "unavailable after 3 failed attempts" in info.value.message


async def test_a_turn_that_waited_for_a_handshake_is_not_reuse(emu: CartesiaEmulator) -> None:
    emu.add_fault("slow_handshake", seconds=0.3)
    tts = _tts(emu)
    try:
        tts.prewarm()
        result = await run_turn(tts, ["Hello."])
    finally:
        await tts.aclose()
    assert result.stream is not None and result.stream.stats is not None
    assert not result.stream.stats.socket_reused and emu.sockets_opened == 1


async def test_a_prewarmed_socket_is_refreshed_before_any_turn() -> None:
    async with CartesiaEmulator(voice="tone", idle_timeout_s=1.0) as emu:
        tts = _tts(emu, idle_refresh_s=0.3)
        try:
            tts.prewarm()
            await emu.wait_for(lambda: emu.sockets_opened == 2, timeout=5)
            await connected(tts)
            assert emu.stats["idle_closes"] == 0
        finally:
            await tts.aclose()


async def test_phoneme_timestamps_are_reset_between_livekit_retries(
    emu: CartesiaEmulator,
) -> None:
    phoneme = {
        "type": "phoneme_timestamps",
        "context_id": "{ctx}",
        "done": False,
        "status_code": 206,
        "phoneme_timestamps": {"phonemes": ["zz"], "start": [0.0], "end": [0.1]},
    }
    error = {
        "type": "error",
        "context_id": "{ctx}",
        "done": True,
        "status_code": 500,
        "title": "Injected",
        "message": "retry me",
    }
    emu.add_fault("inject", frames=[json.dumps(phoneme), json.dumps(error)])
    tts = _tts(emu, add_phoneme_timestamps=True)
    retry = APIConnectOptions(max_retry=1, timeout=2.0, retry_interval=0.0)
    try:
        result = await run_turn(tts, ["Hello again."], conn_options=retry)
    finally:
        await tts.aclose()
    assert result.stream is not None and result.audio
    phonemes = [p for p, _s, _e in result.stream.phoneme_timestamps]
    assert phonemes and "zz" not in phonemes  # only the attempt that was heard


async def test_a_missing_done_ends_the_turn_once_every_receipt_is_in(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listener's end comes with the last receipt; the protocol's end (the context
    cancelled at the server) comes quietly after the done's bound."""
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(stream_module, "DONE_WAIT_S", 0.3)
    async with CartesiaEmulator(voice="tone") as emu:
        emu.add_fault("no_done")
        tts = _tts(emu)
        patient = APIConnectOptions(max_retry=0, timeout=60.0)
        try:
            # the old engine waited out the whole 60 s timeout after the last audio
            result = await asyncio.wait_for(
                run_turn(tts, ["All of this arrives, no done follows."], conn_options=patient),
                10,
            )
            record = emu.record(result.context_id)
            await emu.wait_for(lambda: record.cancel_received_at is not None)
        finally:
            await tts.aclose()
        assert result.audio and result.stream is not None and result.stream.stats is not None
        assert result.stream.stats.resumes == 0
    assert "Cartesia sent no done for context" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------- a bug in the turn
async def test_a_bug_handling_audio_ends_the_turn_not_the_socket(
    emu: CartesiaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the turn's handling of audio must end that turn with a clear error and its
    context, and leave the shared socket serving."""
    from plugin_cartesia_ws import turn

    real_server = turn.TurnMachine.server

    def exploding(self: turn.TurnMachine, event: object, now: float) -> list[object]:
        if isinstance(event, plugin_cartesia_ws.protocol.Chunk):
            raise RuntimeError("bug handling audio")
        return real_server(self, event, now)

    tts = _tts(emu)
    try:
        monkeypatch.setattr(turn.TurnMachine, "server", exploding)
        with pytest.raises(APIError) as info:
            await asyncio.wait_for(run_turn(tts, llm_tokens("This turn breaks.")), 10)
        assert not info.value.retryable and "RuntimeError" in info.value.message
        [context_id] = emu.records
        await emu.wait_for(lambda: emu.record(context_id).cancel_received_at is not None)
        monkeypatch.setattr(turn.TurnMachine, "server", real_server)
        result = await asyncio.wait_for(run_turn(tts, llm_tokens("This one plays.")), 10)
    finally:
        await tts.aclose()
    assert result.audio and emu.sockets_opened == 1  # the reader survived the bug
    assert emu.record(result.context_id).audio_sha256 == result.sha256


async def test_audio_takes_the_direct_path_only_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The documented exception to one owner: while the turn's loop waits on an empty inbox,
    audio goes from the reader to the machine; every byte still arrives in order."""
    taken: list[bool] = []
    real = plugin_cartesia_ws.SynthesizeStream._direct

    def counting(self: plugin_cartesia_ws.SynthesizeStream, *args: object) -> bool:
        took = real(self, *args)  # type: ignore[arg-type]
        taken.append(took)
        return took

    monkeypatch.setattr(plugin_cartesia_ws.SynthesizeStream, "_direct", counting)
    async with CartesiaEmulator(voice="tone", record_audio=True) as emu:
        tts = _tts(emu)
        try:
            result = await run_turn(tts, llm_tokens(LONG), token_gap=0.01)
        finally:
            await tts.aclose()
        record = emu.record(result.context_id)
    assert any(taken) and not all(taken)  # audio took it; receipts and done the inbox
    assert result.sha256 == record.turn_audio_sha256  # over the paced turn's contexts
