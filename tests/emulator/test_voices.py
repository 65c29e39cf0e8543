"""Issue 22: the emulator knows its voices by default, as Cartesia does, so a typo in a
voice id fails here and not first against the service; `--accept-any-voice` (or
`Catalogue(voices=None)`) accepts every id. `GET /voices/{id}` answers like Cartesia's, so a
client (the worker's start-up check) can ask whether a key and a voice are good."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest

from plugin_cartesia_ws.emulator import CartesiaEmulator, Catalogue
from plugin_cartesia_ws.emulator.__main__ import config_from_args, parse_args
from plugin_cartesia_ws.emulator.catalogue import VOICES
from plugin_cartesia_ws.models import TTSDefaultVoiceId

REPO = Path(__file__).resolve().parents[2]
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


async def get(emu: CartesiaEmulator, path: str, key: str | None = None) -> tuple[int, dict]:
    headers = {"X-API-Key": key or emu.api_key, "Cartesia-Version": "2026-03-01"}
    async with aiohttp.ClientSession() as http, http.get(emu.url + path, headers=headers) as r:
        return r.status, await r.json(content_type=None)


def test_the_known_voices_include_livekits_default_and_every_voice_the_docs_name() -> None:
    assert TTSDefaultVoiceId in VOICES
    named = set()
    for page in [REPO / "README.md", *(REPO / "docs").glob("*.md"), REPO / ".env.example"]:
        named |= set(UUID.findall(page.read_text()))
    assert named and named <= set(VOICES)


async def test_a_voice_typo_is_a_404_by_default_and_accepted_when_any_voice_is() -> None:
    typo = TTSDefaultVoiceId[:-1] + "d"
    async with CartesiaEmulator() as emu:
        status, body = await get(emu, f"/voices/{TTSDefaultVoiceId}")
        assert (status, body["id"]) == (200, TTSDefaultVoiceId) and body["name"]
        status, body = await get(emu, f"/voices/{typo}")
        assert (status, body["error_code"]) == (404, "voice_not_found")
        status, body = await get(emu, "/voices")
        assert status == 200 and {v["id"] for v in body["data"]} == set(VOICES)
        assert (await get(emu, f"/voices/{TTSDefaultVoiceId}", key="sk_car_wrong"))[0] == 401
    async with CartesiaEmulator(catalogue=Catalogue(voices=None)) as emu:
        status, body = await get(emu, f"/voices/{typo}")
        assert (status, body["id"]) == (200, typo)


@pytest.mark.parametrize(
    ("argv", "voices"),
    [
        ([], frozenset(VOICES)),
        (["--accept-any-voice"], None),
        (["--voices", "a,b"], frozenset({"a", "b"})),
        (["--strict-models"], frozenset(VOICES)),
    ],
)
def test_command_line_voice_options(argv: list[str], voices: frozenset[str] | None) -> None:
    assert config_from_args(parse_args(argv)).catalogue.voices == voices
