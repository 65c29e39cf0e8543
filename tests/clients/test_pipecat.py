"""pipecat's CartesiaTTSService (WebSocket) and CartesiaHttpTTSService (/tts/bytes), from PyPI,
against the emulator over TLS, with pipecat's defaults (model sonic-3.6, API 2026-03-01)."""

from __future__ import annotations

import base64
from pathlib import Path

from plugin_cartesia_ws.emulator import CartesiaEmulator, Catalogue, LatencyModel
from plugin_cartesia_ws.emulator.voices import ToneVoice

from .conftest import client_env, run_pipecat

TEXT = ["Hello there, how are you today?", "Fine, thanks."]


async def test_pipecat_websocket_service(
    pipecat_python: Path, tls_emulator: CartesiaEmulator
) -> None:
    result = await run_pipecat(
        {"scenario": "websocket", "url": tls_emulator.ws_url, "text": TEXT},
        client_env(tls_emulator),
    )
    assert result["errors"] == [] and result["sample_rates"] == [24000]
    assert len(result["context_ids"]) == 2  # one context per spoken sentence
    for context_id, text in zip(result["context_ids"], TEXT, strict=True):
        record = tls_emulator.record(context_id)
        assert record.received[0]["model_id"] == "sonic-3.6"  # pipecat's default
        assert record.transcript.strip() == text and record.done_sent
        assert base64.b64decode(result["audio_b64"][context_id]) == record.audio
    words = " ".join(TEXT).split()
    assert result["words"] == words  # pipecat's transcript follows the word timestamps


async def test_pipecat_http_service(pipecat_python: Path, tls_emulator: CartesiaEmulator) -> None:
    result = await run_pipecat(
        {"scenario": "http", "url": tls_emulator.url, "text": TEXT}, client_env(tls_emulator)
    )
    assert result["errors"] == []
    for context_id, text in zip(result["context_ids"], TEXT, strict=True):
        expected = ToneVoice().render(text, sample_rate=24000).samples.tobytes()
        assert base64.b64decode(result["audio_b64"][context_id]) == expected


async def test_pipecat_reports_a_model_the_server_does_not_know(pipecat_python: Path) -> None:
    """What a pipecat user met before sonic-3.6 was listed: an error, no audio."""
    catalogue = Catalogue.strict(frozenset({"sonic-3.5"}))
    async with CartesiaEmulator(
        voice="tone", tls=True, catalogue=catalogue, latency=LatencyModel(ttfa_ms=5)
    ) as emu:
        result = await run_pipecat(
            {"scenario": "websocket", "url": emu.ws_url, "text": TEXT[:1]}, client_env(emu)
        )
    assert result["audio_b64"] == {}
    assert any("model" in error.lower() for error in result["errors"]), result["errors"]
