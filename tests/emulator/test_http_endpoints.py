"""/tts/bytes and /tts/sse at the HTTP level: status codes, content types and error bodies
(structured with the page about the error from 2026-03-01, ``Title: message`` text before)."""

from __future__ import annotations

import json
import sys

import aiohttp
import pytest

from plugin_cartesia_ws.emulator import CartesiaEmulator
from plugin_cartesia_ws.models import TTSDefaultVoiceId

VOICE = {"mode": "id", "id": TTSDefaultVoiceId}
RAW = {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000}


@pytest.fixture
async def emu():
    async with CartesiaEmulator(voice="tone") as server:
        yield server


async def post(
    emu: CartesiaEmulator, path: str, body: dict, version: str = "2026-03-01"
) -> tuple[int, str, bytes]:
    headers = {"X-API-Key": emu.api_key, "Cartesia-Version": version}
    async with (
        aiohttp.ClientSession() as http,
        http.post(emu.url + path, json=body, headers=headers) as resp,
    ):
        return resp.status, resp.content_type, await resp.read()


def request(**changes: object) -> dict:
    return {
        "model_id": "sonic-3.6",
        "transcript": "Hi.",
        "voice": VOICE,
        "output_format": RAW,
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "status", "code", "page"),
    [
        ({"model_id": "sonic-9"}, 400, "model_not_found", "/build-with-cartesia/tts-models/latest"),
        (
            {"model_id": "sonic"},
            410,
            "model_sunsetted",
            "/build-with-cartesia/tts-models/api-changes",
        ),
        (
            {"output_format": {"container": "ogg"}},
            400,
            "invalid_request",
            "/api-reference/tts/bytes",
        ),
    ],
)
async def test_bytes_errors_carry_their_status_and_docs_page(
    emu: CartesiaEmulator, changes: dict, status: int, code: str, page: str
) -> None:
    got, content_type, body = await post(emu, "/tts/bytes", request(**changes))
    assert (got, content_type) == (status, "application/json")
    error = json.loads(body)
    assert error["error_code"] == code and error["title"] and error["request_id"]
    assert error["doc_url"] == "https://docs.cartesia.ai" + page


async def test_sse_errors_link_the_sse_reference(emu: CartesiaEmulator) -> None:
    mp3 = {"container": "mp3", "sample_rate": 44100, "bit_rate": 128000}
    status, _, body = await post(emu, "/tts/sse", request(output_format=mp3))
    assert status == 400 and b"/api-reference/tts/sse" in body


async def test_legacy_versions_get_plain_text_errors(emu: CartesiaEmulator) -> None:
    status, content_type, body = await post(
        emu, "/tts/bytes", request(model_id="nope"), version="2025-04-16"
    )
    assert (status, content_type) == (400, "text/plain")
    assert body == b"Invalid model: The model is not valid, make sure it is a valid model ID."


async def test_mp3_without_its_encoder_says_so(
    emu: CartesiaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "lameenc", None)  # as if the mp3 extra were missing
    mp3 = {"container": "mp3", "sample_rate": 44100, "bit_rate": 128000}
    status, _, body = await post(emu, "/tts/bytes", request(output_format=mp3))
    assert status == 501 and b"pip install -e" in body and b".[mp3]" in body
