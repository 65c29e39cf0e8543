"""Failure behaviour: fallback, backoff and the breaker, idle refresh, bad input, malformed
server frames, and secrets. Each asserts what the listener gets and what the log says."""

from __future__ import annotations

import asyncio
import logging

import pytest
from livekit.agents import APIConnectionError, APIConnectOptions, APIStatusError, APITimeoutError
from livekit.agents import tts as lk_tts
from livekit.agents.metrics import TTSMetrics

import plugin_cartesia_ws
from agent.dev.scripted import llm_tokens
from plugin_cartesia_ws import ReconnectPolicy
from plugin_cartesia_ws import stream as stream_module
from plugin_cartesia_ws.chunking import is_speakable
from plugin_cartesia_ws.emulator import CartesiaEmulator, LatencyModel

from .conftest import FAST, assert_every_byte, connected, run_turn

QUICK = ReconnectPolicy(
    base_delay_s=0.05, max_delay_s=0.2, breaker_threshold=3, breaker_cooldown_s=30
)


async def test_fallback_adapter_switches_away_and_back() -> None:
    async with (
        CartesiaEmulator(voice="tone") as primary_emu,
        CartesiaEmulator(voice="tone") as backup_emu,
    ):
        primary = plugin_cartesia_ws.TTS(
            api_key=primary_emu.api_key,
            base_url=primary_emu.url,
            reconnect_policy=ReconnectPolicy(
                base_delay_s=0.01, max_delay_s=0.02, breaker_threshold=100
            ),
        )
        backup = plugin_cartesia_ws.TTS(api_key=backup_emu.api_key, base_url=backup_emu.url)
        adapter = lk_tts.FallbackAdapter([primary, backup])
        availability: list[bool] = []
        recovered = asyncio.Event()

        def on_change(ev: lk_tts.AvailabilityChangedEvent) -> None:
            availability.append(ev.available)
            if ev.available:
                recovered.set()

        adapter.on("tts_availability_changed", on_change)
        try:
            primary_emu.add_fault("refuse", status=503, times=None)  # Cartesia is down
            first = await run_turn(adapter, ["Cartesia is down right now."])  # type: ignore[arg-type]
            assert first.audio and len(backup_emu.records) == 1 and not primary_emu.records
            assert availability == [False]

            primary_emu.clear_faults()  # Cartesia is back
            await run_turn(adapter, ["Still on the backup."])  # type: ignore[arg-type]
            await asyncio.wait_for(recovered.wait(), 10)  # the adapter re-tested the primary
            before = len(backup_emu.records)
            third = await run_turn(adapter, ["Back on Cartesia."])  # type: ignore[arg-type]
            assert third.audio and len(backup_emu.records) == before
            assert any(
                r.transcript.strip() == "Back on Cartesia." for r in primary_emu.records.values()
            )
        finally:
            await adapter.aclose()
            await primary.aclose()
            await backup.aclose()


async def test_backoff_and_breaker_stop_hammering_a_failing_server(
    emu: CartesiaEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    emu.add_fault("refuse", status=500, times=None)
    tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url, reconnect_policy=QUICK)
    try:
        for _ in range(3):
            with pytest.raises(APIStatusError) as info:
                await run_turn(tts, ["Hello."])
            assert info.value.status_code == 500 and info.value.retryable
        attempts = emu.stats["handshakes"]
        assert attempts == 3 and tts.pool.breaker_open
        with pytest.raises(APIConnectionError) as info:  # the breaker is open: fail at once
            await run_turn(tts, ["Hello?"])
        assert "unavailable after 3 failed attempts" in info.value.message
        assert not info.value.retryable  # LiveKit's loop gives up at once: fail fast
        assert emu.stats["handshakes"] == attempts  # and did not touch the server
        assert "pausing connection attempts" in caplog.text
    finally:
        await tts.aclose()


async def test_429_at_the_handshake_is_retryable_and_backs_off(emu: CartesiaEmulator) -> None:
    emu.add_fault("refuse", status=429, times=1)
    tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url, reconnect_policy=QUICK)
    try:
        with pytest.raises(APIStatusError) as info:
            await run_turn(tts, ["Hello."])
        assert info.value.status_code == 429 and info.value.retryable
        assert tts.pool.failures == 1 and tts.pool.last_error is not None
        ok = await run_turn(tts, ["Hello again."])  # a new request tries at once, and works
        assert ok.audio and emu.stats["handshakes"] == 2
    finally:
        await tts.aclose()


async def test_idle_socket_is_refreshed_before_the_server_closes_it() -> None:
    async with CartesiaEmulator(voice="tone", idle_timeout_s=1.0) as emu:
        tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url, idle_refresh_s=0.3)
        try:
            await run_turn(tts, ["First."])
            await emu.wait_for(lambda: emu.sockets_opened == 2, timeout=5)
            await connected(tts)  # joining a handshake is not reuse
            result = await run_turn(tts, ["Second."])
            assert result.stream is not None and result.stream.stats is not None
            assert result.stream.stats.socket_reused
            assert emu.stats["idle_closes"] == 0  # we refreshed first; the server never had to
        finally:
            await tts.aclose()


BAD_INPUTS = [
    ["😀😀", " 🎉"],
    ["**Bold** and _italic_ with `code` and # heading"],
    ["<break time=", '"1s"/> then', " <spell>AB", "C123</spell> done."],
    ["", "   ", "\n", "\t"],
    ["Null\x00byte and \u200bzero width and e\u0301 combining."],
    ["שלום עולם. مرحبا بالعالم."],
    ["</spell> <break/> < > <<>>"],
    llm_tokens("This is a very long reply that goes on and on. " * 110),  # > 5000 chars
]


@pytest.mark.parametrize("tokens", BAD_INPUTS, ids=[f"input{i}" for i in range(len(BAD_INPUTS))])
async def test_bad_input_never_crashes_a_turn(tokens: list[str]) -> None:
    # A fast server: the long reply is ~5 minutes of audio (unpaced: paced, it would take
    # as long as a listener takes to hear it).
    async with CartesiaEmulator(
        voice="tone", latency=LatencyModel(ttfa_ms=5, realtime_factor=500, chunk_ms=500)
    ) as emu:
        tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url, text_pacing=False)
        try:
            result = await run_turn(tts, tokens)
        finally:
            await tts.aclose()
    speakable = is_speakable("".join(tokens))
    assert result.stream is not None and result.stream.stats is not None
    assert result.stream.stats.done
    if speakable:
        assert result.audio and result.sha256 == emu.record(result.context_id).turn_audio_sha256
        words = "".join(tokens).split()
        while words and not is_speakable(words[-1]):
            words.pop()  # an unspeakable tail is not sent (chunking's whitespace rule)
        sent = emu.record(result.context_id).transcript
        assert sent.split() == words  # no word lost or altered


async def test_malformed_server_frames_are_logged_once_and_skipped(
    emu: CartesiaEmulator, tts: plugin_cartesia_ws.TTS, caplog: pytest.LogCaptureFixture
) -> None:
    garbage = [
        "not json at all",
        "[1, 2, 3]",
        '{"type": "mystery", "context_id": "{ctx}"}',
        '{"type": "chunk", "context_id": "{ctx}"}',
        '{"type": "chunk", "context_id": "{ctx}", "data": "%%%", "done": false, "status_code": 206, "step_time": 1.0}',
        "binary:\x00\x01\x02",
    ]
    emu.add_fault("inject", frames=garbage, times=2)
    first = await run_turn(tts, ["Some audio despite the garbage."])
    second = await run_turn(tts, ["And again."])
    for result in (first, second):
        assert result.audio
        assert_every_byte(result, emu)
    for message in (
        "skipped a malformed Cartesia frame",
        "skipped a Cartesia event of unknown type",
        "skipped a Cartesia chunk that is not base64",
        "Cartesia sent a binary frame; skipped",
    ):
        assert caplog.text.count(message) >= 1, message
    assert caplog.text.count("skipped a Cartesia chunk that is not base64") == 1  # not per frame


async def test_secrets_never_appear_in_logs_errors_or_reprs(
    emu: CartesiaEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "sk_car_this_is_a_secret_key_12345"
    tts = plugin_cartesia_ws.TTS(api_key=secret, base_url=emu.url)
    seen: list[str] = [repr(tts), str(tts)]
    try:
        with pytest.raises(APIStatusError) as info:
            await run_turn(tts, ["Hello."])
        seen += [str(info.value), repr(info.value), repr(info.value.__cause__)]
        emu.add_fault("error", status=500, times=1)
        good = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url)
        with pytest.raises(APIStatusError) as info2:
            await run_turn(good, ["Hello."], conn_options=FAST)
        seen += [str(info2.value), repr(info2.value), repr(good)]
        await good.aclose()
    finally:
        await tts.aclose()
    for text in [*seen, caplog.text]:
        assert secret not in text and emu.api_key not in text


def test_the_emulator_listens_on_loopback_by_default() -> None:
    assert CartesiaEmulator().config.host == "127.0.0.1"


async def test_missing_done_ends_the_turn_when_all_audio_arrived(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(stream_module, "DONE_WAIT_S", 0.3)
    async with CartesiaEmulator(voice="tone", record_audio=True) as emu:
        emu.add_fault("no_done")
        tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url)
        try:
            result = await run_turn(tts, ["All of this arrives, but no done follows."])
            record = emu.record(result.context_id)
            await emu.wait_for(lambda: record.cancel_received_at is not None)  # after the bound
        finally:
            await tts.aclose()
        sent = bytes(record.audio or b"")
    assert result.stream is not None and result.stream.stats is not None
    assert result.stream.stats.done and result.stream.stats.resumes == 0
    assert sent and result.audio.startswith(sent)  # every byte the server sent, in order
    assert set(result.audio[len(sent) :]) <= {0}  # LiveKit may pad the last frame
    assert "Cartesia sent no done for context" in caplog.text


async def test_close_1011_mid_turn_resumes(
    emu: CartesiaEmulator, tts: plugin_cartesia_ws.TTS
) -> None:
    emu.add_fault("close", close_code=1011, after_chunks=10)
    text = "The server closes this socket with an internal error, and the reply still ends well."
    result = await run_turn(tts, llm_tokens(text))
    assert result.stream is not None and result.stream.stats is not None
    assert result.stream.stats.resumes == 1
    assert "".join(result.transcript).split() == text.split()


RETRY_3 = APIConnectOptions(max_retry=3, timeout=2.0, retry_interval=0.0)


@pytest.mark.parametrize("how", ["stream", "synthesize"])
async def test_one_request_keeps_all_its_retries_and_the_next_one_fails_fast(
    emu: CartesiaEmulator, how: str
) -> None:
    """The breaker opens after the third failed attempt, but the request that is retrying
    still makes its fourth attempt and ends with the server's error (LiveKit's contract);
    the next request is refused without touching the server."""
    emu.add_fault("refuse", status=503, times=None)
    tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url)
    errors: list[lk_tts.TTSError] = []
    tts.on("error", errors.append)

    async def request() -> None:
        if how == "stream":
            await run_turn(tts, ["Hello."], conn_options=RETRY_3)
        else:
            async with tts.synthesize("Hello.", conn_options=RETRY_3) as chunked:
                async for _ev in chunked:
                    pass

    try:
        with pytest.raises(APIStatusError) as first:
            await request()
        assert first.value.status_code == 503
        assert emu.stats["handshakes"] == 4 and tts.pool.breaker_open
        assert [e.recoverable for e in errors] == [True, True, True, False]  # one per attempt
        errors.clear()
        with pytest.raises(APIConnectionError) as second:
            await request()
        assert "unavailable after 4 failed attempts" in second.value.message
        assert not second.value.retryable and len(errors) == 1  # LiveKit does not retry it
        assert emu.stats["handshakes"] == 4
    finally:
        await tts.aclose()


async def test_fallback_adapter_moves_on_at_once_while_the_breaker_is_open() -> None:
    async with (
        CartesiaEmulator(voice="tone") as primary_emu,
        CartesiaEmulator(voice="tone") as backup_emu,
    ):
        primary = plugin_cartesia_ws.TTS(api_key=primary_emu.api_key, base_url=primary_emu.url)
        backup = plugin_cartesia_ws.TTS(api_key=backup_emu.api_key, base_url=backup_emu.url)
        adapter = lk_tts.FallbackAdapter([primary, backup])
        try:
            primary_emu.add_fault("refuse", status=503, times=None)
            with pytest.raises(APIStatusError):
                await run_turn(primary, ["Open the breaker."], conn_options=RETRY_3)
            handshakes = primary_emu.stats["handshakes"]
            result = await run_turn(adapter, ["Straight to the backup."])  # type: ignore[arg-type]
            assert result.audio and len(backup_emu.records) == 1
            assert primary_emu.stats["handshakes"] == handshakes  # the primary was not tried
        finally:
            await adapter.aclose()
            await primary.aclose()
            await backup.aclose()


async def test_a_turn_joining_a_prewarm_connect_keeps_its_own_timeout() -> None:
    """prewarm() connects with a 10 s timeout; a turn that finds it under way still gives up
    after its own conn_options.timeout, with APITimeoutError."""
    accepted = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def never_answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        accepted.set()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tts = plugin_cartesia_ws.TTS(api_key="k", base_url=f"http://127.0.0.1:{port}")
    try:
        tts.prewarm()
        await asyncio.wait_for(accepted.wait(), 5)
        with pytest.raises(APITimeoutError):
            await asyncio.wait_for(
                run_turn(tts, ["Hello."], conn_options=APIConnectOptions(max_retry=0, timeout=0.5)),
                5,  # well under the prewarm's 10 s: the turn did not wait for it
            )
        assert tts.pool.failures == 0  # the prewarm connect is still the only attempt
    finally:
        await tts.aclose()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_synthesize_reports_one_metrics_event(emu: CartesiaEmulator) -> None:
    tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url)
    metrics: list[TTSMetrics] = []
    tts.on("metrics_collected", metrics.append)
    try:
        async with tts.synthesize("One request, counted once.") as chunked:
            frames = [ev async for ev in chunked]
    finally:
        await tts.aclose()
    assert frames and frames[-1].is_final
    [only] = metrics
    assert not only.streamed and only.characters_count == len("One request, counted once.")
    assert only.audio_duration == pytest.approx(sum(ev.frame.duration for ev in frames))
