"""Issue 19: the orders of events the real Cartesia sends that broke the turn engine, asked
of the emulator and checked for what the listener gets. Each test names its order; each
fails on the engine before the rewrite (tests/unit/test_turn_orders.py replays the same
orders on the pure machine)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from livekit.agents import APIConnectionError, APIConnectOptions

import plugin_cartesia_ws
from agent.dev.scripted import StreamedTurn, llm_tokens
from plugin_cartesia_ws import ReconnectPolicy
from plugin_cartesia_ws.connection import CartesiaSocket
from plugin_cartesia_ws.emulator import CartesiaEmulator
from plugin_cartesia_ws.emulator.contexts import ContextRules

from .conftest import run_turn

REPLY = (
    "Sure, I can help you with that. Your flight to Lisbon leaves at nine in the morning, "
    "and you arrive just after noon. Would you like me to book a taxi to the airport as "
    "well? I can also add a hotel for two nights near the old town."
)
PATIENT = APIConnectOptions(max_retry=0, timeout=60.0)
RETRY = APIConnectOptions(max_retry=2, timeout=2.0, retry_interval=0.0)


def _tts(emu: CartesiaEmulator, **kwargs: object) -> plugin_cartesia_ws.TTS:
    return plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url, **kwargs)  # type: ignore[arg-type]


def _words(turn: StreamedTurn) -> list[str]:
    return "".join(turn.transcript).split()


async def test_order1_unsolicited_flush_done_loses_no_audio_and_claims_no_word() -> None:
    """The server numbers flush_done ids of its own at each input; the turn must not take
    them for receipts of its chunks and cut the reply short."""
    rules = ContextRules(auto_flush_done=True)
    async with CartesiaEmulator(voice="tone", rules=rules, record_audio=True) as emu:
        tts = _tts(emu)
        try:
            result = await run_turn(tts, llm_tokens(REPLY), token_gap=0.01, conn_options=PATIENT)
            record = emu.record(result.context_id)
            sent = bytes(record.audio or b"")
        finally:
            await tts.aclose()
    assert sent and result.audio.startswith(sent)  # every sample the server made, in order
    assert _words(result) == REPLY.split()  # and the transcript says only what was heard
    assert record.cancel_received_at is None  # the context ended with its done


async def test_order1_a_resume_after_unsolicited_receipts_says_every_word() -> None:
    rules = ContextRules(auto_flush_done=True)
    async with CartesiaEmulator(voice="tone", rules=rules) as emu:
        emu.add_fault("drop", after_chunks=30, times=1)
        tts = _tts(emu)
        try:
            result = await run_turn(tts, llm_tokens(REPLY), token_gap=0.01, conn_options=RETRY)
        finally:
            await tts.aclose()
        assert result.stream is not None and result.stream.stats is not None
        assert result.stream.stats.resumes == 1
        said = " ".join(r.transcript for r in emu.records.values())
    for word in REPLY.split():  # no sentence skipped by a resume placed too late
        assert word in said.split()
    assert _words(result) == REPLY.split()


async def test_order2_the_breaker_closes_when_a_handshake_succeeds() -> None:
    policy = ReconnectPolicy(breaker_threshold=3, breaker_cooldown_s=60.0)
    async with CartesiaEmulator(voice="tone") as emu:
        emu.add_fault("refuse", status=503, times=3)
        tts = _tts(emu, reconnect_policy=policy)
        try:
            # one request, LiveKit's retries: three refused handshakes open the breaker,
            # the fourth attempt connects; the user barges in before any audio
            stream = tts.stream(conn_options=APIConnectOptions(max_retry=3, retry_interval=0.0))
            stream.push_text("This reply is interrupted before it is heard.")
            await emu.wait_for(lambda: emu.open_sockets == 1, timeout=10)
            await stream.aclose()
            result = await run_turn(tts, ["The next turn is not refused."])
        finally:
            await tts.aclose()
    assert result.audio


async def test_order2_new_settings_reset_the_breaker() -> None:
    policy = ReconnectPolicy(breaker_threshold=2, breaker_cooldown_s=60.0)
    async with CartesiaEmulator(voice="tone") as emu:
        emu.add_fault("refuse", status=404, times=2)  # e.g. an API version it does not know
        tts = _tts(emu, reconnect_policy=policy)
        try:
            for _ in range(2):
                with pytest.raises(Exception, match="404"):
                    await run_turn(tts, ["Hello."])
            assert tts.pool.breaker_open
            tts.update_options(api_version="2025-04-16")
            result = await run_turn(tts, ["Hello again."])
        finally:
            await tts.aclose()
    assert result.audio


async def test_order3_a_failed_send_resumes_on_a_new_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A transport reset reads as open until the reader runs: its sends fail, and a resume
    must never pick the same socket again."""
    async with CartesiaEmulator(voice="tone") as emu:
        tts = _tts(emu)
        try:
            await run_turn(tts, ["A warm socket first."])
            dead = tts.pool.socket
            real_send = CartesiaSocket.send

            async def send(self: CartesiaSocket, frame: str) -> None:
                if self is dead and self.contexts_served > 1:
                    raise APIConnectionError("sending to Cartesia failed (ConnectionResetError)")
                await real_send(self, frame)

            monkeypatch.setattr(CartesiaSocket, "send", send)
            result = await run_turn(tts, llm_tokens(REPLY), conn_options=RETRY)
        finally:
            await tts.aclose()
        assert emu.sockets_opened == 2
    assert _words(result) == REPLY.split()


async def test_order4_a_resume_retries_a_refused_handshake() -> None:
    async with CartesiaEmulator(voice="tone") as emu:
        tts = _tts(emu)
        try:
            await run_turn(tts, ["A warm socket first."])
            emu.add_fault("drop", after_chunks=10, times=1)
            emu.add_fault("refuse", status=503, times=1)  # the resume's first handshake
            result = await run_turn(tts, llm_tokens(REPLY), conn_options=RETRY)
        finally:
            await tts.aclose()
    assert result.stream is not None and result.stream.stats is not None
    assert result.stream.stats.resumes == 1
    assert _words(result) == REPLY.split()


async def test_order5_end_of_input_after_the_last_receipt_ends_the_stream() -> None:
    """No done comes, and the LLM ends its input after every receipt is in: the stream
    ends then, not after the whole timeout (60 s here)."""
    async with CartesiaEmulator(voice="tone") as emu:
        emu.add_fault("no_done")
        tts = _tts(emu)
        try:
            stream = tts.stream(conn_options=PATIENT)
            stream.push_text("Every receipt arrives before the input ends. ")
            stream.flush()
            frames = []

            async def collect() -> None:
                async for ev in stream:
                    frames.append(ev)

            collecting = asyncio.create_task(collect())
            await emu.wait_for(
                lambda: (
                    bool(emu.records)
                    and "flush_done" in next(iter(emu.records.values())).event_types
                )
            )
            stream.end_input()
            await asyncio.wait_for(collecting, 10)  # a hang guard, not a timing
        finally:
            await tts.aclose()
    assert frames


async def test_order6_a_closed_http_session_opens_no_new_socket() -> None:
    """LiveKit closes a job's HTTP session when the job ends; the idle socket's close must
    not make the pool open a new one in a session nobody closes."""
    async with CartesiaEmulator(voice="tone") as emu:
        session = aiohttp.ClientSession()
        tts = _tts(emu, http_session=session)
        try:
            await run_turn(tts, ["The job's only reply."])
            socket = tts.pool.socket
            assert socket is not None
            await session.close()  # the job ended: LiveKit closes its session, and the socket
            await asyncio.wait_for(socket._reader, 5)  # our reader saw the close
            assert tts.pool._connecting is None and emu.sockets_opened == 1
        finally:
            await tts.aclose()


async def test_order7_an_api_version_without_flush_done_gets_no_flushes() -> None:
    async with CartesiaEmulator(voice="tone") as emu:
        tts = _tts(emu, api_version="2024-06-10")
        try:
            result = await run_turn(tts, llm_tokens(REPLY), token_gap=0.01)
        finally:
            await tts.aclose()
        received = emu.record(result.context_id).received
    assert not [m for m in received if m.get("flush")]  # nothing asks for a receipt
    assert result.stream is not None and result.stream.stats is not None
    assert result.stream.stats.resumes == 0 and _words(result) == REPLY.split()


async def test_order8_a_drop_during_an_llm_pause_repeats_and_fuses_nothing() -> None:
    """All of the first sentence is heard, the LLM thinks longer than the timeout, the idle
    socket drops, the rest arrives: it is said once, with the reply's own space before it."""
    first, rest = "Sure, I can book that for you.", " Your flight to Lisbon leaves at nine."
    rules = ContextRules(auto_flush_done=True)  # the real service's receipts
    async with CartesiaEmulator(voice="tone", rules=rules) as emu:
        emu.add_fault("drop_idle", seconds=0.8, times=1)
        tts = _tts(emu)
        try:
            stream = tts.stream(conn_options=APIConnectOptions(max_retry=1, timeout=0.5))
            turn = StreamedTurn(stream)
            for token in llm_tokens(first):  # no flush: one segment, as LiveKit sends it
                stream.push_text(token)

            async def collect() -> None:
                async for ev in stream:
                    turn.add(ev)

            collecting = asyncio.create_task(collect())
            await emu.wait_for(lambda: emu.sockets_opened == 1 and emu.open_sockets == 0)
            for token in llm_tokens(rest):
                stream.push_text(token)
            stream.end_input()
            await asyncio.wait_for(collecting, 20)
        finally:
            await tts.aclose()
        sent = [r.transcript for r in emu.records.values()]
    assert not any("you.Your" in t for t in sent)
    assert "".join(sent).split() == (first + rest).split()  # nothing said twice
    assert _words(turn) == (first + rest).split()


async def test_order9_a_late_done_is_waited_for_not_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A done 300 ms after the last audio is ordinary jitter: the context is not cancelled,
    nothing is logged as a warning, and the done releases it."""
    caplog.set_level(logging.INFO)
    async with CartesiaEmulator(voice="tone") as emu:
        emu.add_fault("late_done", seconds=0.3)
        tts = _tts(emu)
        try:
            result = await run_turn(tts, llm_tokens(REPLY), token_gap=0.01)
            record = emu.record(result.context_id)
            await emu.wait_for(lambda: "done" in record.event_types, timeout=10)
            socket = tts.pool.socket
            assert socket is not None
            await emu.wait_for(lambda: result.context_id not in socket.contexts, timeout=10)
        finally:
            await tts.aclose()
    assert record.cancel_received_at is None  # waited for, not cancelled
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert _words(result) == REPLY.split()
