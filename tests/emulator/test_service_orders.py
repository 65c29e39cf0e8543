"""The orders of events Cartesia sends (issue 19) and context expiry (issue 20), each as a
named fault or rule, over a real socket: what a client on the wire sees."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from plugin_cartesia_ws.emulator import CartesiaEmulator, ContextRules, LatencyModel
from plugin_cartesia_ws.models import TTSDefaultVoiceId

FAST = LatencyModel(ttfa_ms=1, realtime_factor=200.0, chunk_ms=200)


def gen(ctx: str, transcript: str, *, more: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "context_id": ctx,
        "model_id": "sonic-3",
        "transcript": transcript,
        "voice": {"mode": "id", "id": TTSDefaultVoiceId},
        "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000},
        "language": "en",
        "max_buffer_delay_ms": 0,
        "continue": more,
        **extra,
    }


@pytest.fixture
async def emu() -> AsyncIterator[CartesiaEmulator]:
    async with CartesiaEmulator(voice="tone", latency=FAST) as server:
        yield server


async def connect(
    http: aiohttp.ClientSession, emu: CartesiaEmulator, version: str = "2026-03-01"
) -> aiohttp.ClientWebSocketResponse:
    headers = {"X-API-Key": emu.api_key, "Cartesia-Version": version}
    return await http.ws_connect(emu.ws_url, headers=headers)


async def until_done(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Every event up to and including the context's done or error."""
    events = []
    async for msg in ws:
        event = json.loads(msg.data)
        events.append(event)
        if event["type"] in ("done", "error"):
            break
    return events


async def turn(emu: CartesiaEmulator, *frames: dict[str, Any], version: str = "2026-03-01"):
    async with aiohttp.ClientSession() as http, await connect(http, emu, version) as ws:
        for frame in frames:
            await ws.send_json(frame)
        return await until_done(ws)


def flush_ids(events: list[dict[str, Any]]) -> list[int]:
    return [e["flush_id"] for e in events if e["type"] == "flush_done"]


async def test_auto_flush_done_sends_receipts_the_client_never_asked_for(
    emu: CartesiaEmulator,
) -> None:
    emu.add_fault("auto_flush_done")
    events = await turn(emu, gen("c", "One. "), gen("c", "Two. "), gen("c", "", more=False))
    assert flush_ids(events) == [1, 2] and events[-1]["type"] == "done"


@pytest.mark.parametrize("how", ["fault", "version"])
async def test_no_flush_done_even_for_the_clients_flushes(emu: CartesiaEmulator, how: str) -> None:
    version = "2024-06-10" if how == "version" else "2026-03-01"
    if how == "fault":
        emu.add_fault("no_flush_done")
    frames = (gen("c", "One. "), gen("c", "", flush=True), gen("c", "", more=False))
    events = await turn(emu, *frames, version=version)
    assert flush_ids(events) == [] and events[-1]["type"] == "done"
    assert any(e["type"] == "chunk" for e in events)


async def test_late_done_holds_the_done_after_the_last_audio(emu: CartesiaEmulator) -> None:
    emu.add_fault("late_done", seconds=60)
    async with aiohttp.ClientSession() as http, await connect(http, emu) as ws:
        await ws.send_json(gen("c", "Hello there.", more=False))
        await emu.wait_for(lambda: emu.record("c").done_delay_s == 60)
        record = emu.record("c")
        assert record.chunks_sent > 0 and not record.done_sent
    # and a short one does come
    emu.add_fault("late_done", seconds=0.05)
    events = await turn(emu, gen("d", "Hi.", more=False))
    assert events[-1]["type"] == "done" and emu.record("d").done_delay_s == 0.05


async def test_a_handshake_refused_n_times_is_then_accepted(emu: CartesiaEmulator) -> None:
    emu.add_fault("refuse", status=503, times=3)
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await connect(http, emu)
            assert info.value.status == 503
        async with await connect(http, emu) as ws:
            await ws.send_json(gen("c", "Hi.", more=False))
            assert (await until_done(ws))[-1]["type"] == "done"
    assert emu.stats["handshakes"] == 4 and emu.sockets_opened == 1


async def test_skip_lets_the_first_handshake_through_and_refuses_the_resume(
    emu: CartesiaEmulator,
) -> None:
    emu.add_fault("refuse", status=503, skip=1)
    async with aiohttp.ClientSession() as http:
        async with await connect(http, emu):
            pass
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await connect(http, emu)
        async with await connect(http, emu):
            pass


async def test_reset_fails_the_socket_on_the_nth_input_without_acting_on_it(
    emu: CartesiaEmulator,
) -> None:
    emu.add_fault("reset", after_inputs=2)
    async with aiohttp.ClientSession() as http, await connect(http, emu) as ws:
        await ws.send_json(gen("c", "One. "))
        await emu.wait_for(lambda: emu.record("c").chunks_sent > 0)
        await ws.send_json(gen("c", "Two. "))
        await emu.wait_for(lambda: emu.open_sockets == 0)
        async for msg in ws:
            assert msg.type is not aiohttp.WSMsgType.TEXT or json.loads(msg.data)["type"] in (
                "chunk",
                "timestamps",
            )
        assert ws.closed and ws.close_code == 1006
    record = emu.record("c")
    assert len(record.received) == 2 and not record.done_sent
    assert emu.spend().by_context["c"] == len("One. ")  # the reset frame was never taken


@pytest.mark.parametrize("mode", ["error", "ignore"])
async def test_input_to_an_expired_context(mode: str) -> None:
    rules = ContextRules(expiry=mode, expiry_s=0.05)  # type: ignore[arg-type]
    async with (
        CartesiaEmulator(voice="tone", latency=FAST, rules=rules) as emu,
        aiohttp.ClientSession() as http,
        await connect(http, emu) as ws,
    ):
        await ws.send_json(gen("c", "One. "))
        await emu.wait_for(lambda: emu.record("c").phase == "expired")
        await ws.send_json(gen("c", "Two. ", more=False))
        if mode == "error":
            events = await until_done(ws)
            assert events[-1]["type"] == "error"
            assert events[-1]["error_code"] == "context_expired"
        else:  # nothing comes for it; a later context on the socket proves the frame was read
            await ws.send_json(gen("d", "Next.", more=False))
            await emu.wait_for(lambda: emu.record("d").done_sent)
            assert not emu.record("c").done_sent and emu.record("c").errors == []
        assert emu.record("c").transcript == "One. Two. "  # received...
        assert emu.spend().by_context["c"] == len("One. ")  # ...but never billed


async def test_the_expire_fault_expires_one_context(emu: CartesiaEmulator) -> None:
    emu.add_fault("expire", context="c", seconds=0.05, mode="error")
    async with aiohttp.ClientSession() as http, await connect(http, emu) as ws:
        await ws.send_json(gen("c", "One. "))
        await emu.wait_for(lambda: emu.record("c").phase == "expired")
        await ws.send_json(gen("c", "Two. "))
        assert (await until_done(ws))[-1]["error_code"] == "context_expired"


async def test_spend_counts_characters_per_context_per_socket_and_in_total(
    emu: CartesiaEmulator,
) -> None:
    async with aiohttp.ClientSession() as http:
        async with await connect(http, emu) as one:
            await one.send_json(gen("a", "Hello, "))
            await one.send_json(gen("a", "world. "))
            await one.send_json({"context_id": "a", "cancel": True})
            await one.send_json(gen("a", "After the cancel: not taken."))
            await one.send_json(gen("b", "Bye.", more=False))
            await until_done(one)
        async with await connect(http, emu) as two:
            await two.send_json(gen("c", "Hi.", more=False))
            await until_done(two)
        body = {k: v for k, v in gen("", "Hey.").items() if k not in ("context_id", "continue")}
        async with http.post(
            emu.url + "/tts/bytes", json=body, headers={"X-API-Key": emu.api_key}
        ) as resp:
            assert resp.status == 200
            await resp.read()
        await emu.wait_for(lambda: emu.spend().total == 14 + 4 + 3 + 4)
        spend = emu.spend()
        assert spend.by_context == {"a": 14, "b": 4, "c": 3}
        assert spend.http == 4 and sorted(spend.by_socket.values()) == [3, 18]
        assert emu.record("a").billed_chars == 14 and emu.record("a").cancelled
        async with http.get(emu.url + "/_emulator/spend") as resp:
            assert await resp.json() == spend.to_dict()
        async with http.get(emu.url + "/_emulator/stats") as resp:
            assert (await resp.json())["billed_chars"] == 25
        async with http.post(emu.url + "/_emulator/reset") as resp:
            assert resp.status == 200
        assert emu.spend().total == 0 and emu.spend().by_socket == {}


async def test_a_socket_streaming_audio_is_not_closed_as_idle() -> None:
    slow = LatencyModel(ttfa_ms=1, realtime_factor=2.0, chunk_ms=100)
    async with (
        CartesiaEmulator(voice="tone", latency=slow, idle_timeout_s=0.2) as emu,
        aiohttp.ClientSession() as http,
        await connect(http, emu) as ws,
    ):
        await ws.send_json(
            gen("c", "A reply whose audio takes longer than the idle timeout.", more=False)
        )
        events = await until_done(ws)  # about 1.5 s of audio made at 2x: well past 0.2 s
        assert events[-1]["type"] == "done" and emu.stats["idle_closes"] == 0
        assert [msg async for msg in ws] == []  # idle now: the server closes it
        assert ws.close_code == 1000 and emu.stats["idle_closes"] == 1
