"""Issue 11: a TTS that cannot speak says why as soon as its socket opens (prewarm), in one
log line naming the cause and what to do, and never the key; the error's ``str()`` is that
sentence, not LiveKit's ``message='...', status_code=401, retryable=False``."""

from __future__ import annotations

import logging

import pytest
from livekit.agents import APIStatusError

import plugin_cartesia_ws
from plugin_cartesia_ws import protocol
from plugin_cartesia_ws.emulator import CartesiaEmulator, Catalogue

from .conftest import failed_turn, run_turn

WRONG_KEY = "sk_car_wrong_key_do_not_log_4711"
PLUGIN_LOGGER = "livekit.plugins.cartesia_ws"


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == PLUGIN_LOGGER and r.levelno >= logging.ERROR
    ]


async def test_prewarm_reports_a_bad_key_before_any_turn(
    emu: CartesiaEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tts = plugin_cartesia_ws.TTS(api_key=WRONG_KEY, base_url=emu.url)
    try:
        tts.prewarm()  # what AgentSession does when the agent starts
        error = await tts.check_connection(timeout=5)  # joins prewarm's connect
        assert emu.stats["handshakes"] == 1  # the prewarm's handshake, no second one
        assert emu.records == {}  # no turn has asked for audio
        assert isinstance(error, APIStatusError) and error.status_code == 401
        assert not error.retryable and protocol.is_fatal(error)
        expected = "Cartesia rejected the API key (HTTP 401): check CARTESIA_API_KEY (or api_key=)"
        assert str(error) == expected  # not "message='...', status_code=401, ..."
        assert _errors(caplog) == [f"{expected}. The TTS cannot speak until this is fixed."]

        # the turn that follows fails with the same sentence; the cause is not logged twice
        with pytest.raises(APIStatusError) as info:
            await run_turn(tts, ["Hello."])
        assert str(info.value) == expected
        assert len(_errors(caplog)) == 1
    finally:
        await tts.aclose()
    assert WRONG_KEY not in caplog.text


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (403, "use a key with TTS access in CARTESIA_API_KEY"),
        (404, "check CARTESIA_BASE_URL"),
    ],
)
async def test_prewarm_reports_a_refused_handshake(
    emu: CartesiaEmulator, caplog: pytest.LogCaptureFixture, status: int, says: str
) -> None:
    emu.add_fault("refuse", status=status, times=None)
    tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url)
    try:
        error = await tts.check_connection(timeout=5)
    finally:
        await tts.aclose()
    assert isinstance(error, APIStatusError) and error.status_code == status
    (line,) = _errors(caplog)
    assert f"(HTTP {status})" in line and says in line and str(error) in line
    assert emu.api_key not in caplog.text


async def test_prewarm_reports_a_429_as_a_warning_and_it_retries(
    emu: CartesiaEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu.add_fault("refuse", status=429, times=1)
    tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url)
    try:
        error = await tts.check_connection(timeout=5)
        assert isinstance(error, APIStatusError) and error.retryable
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.name == PLUGIN_LOGGER and r.levelno == logging.WARNING
        ]
        assert len(warnings) == 1 and "too many open WebSockets" in warnings[0]
        assert _errors(caplog) == []  # retrying can help: not an error yet
        result = await run_turn(tts, ["Hello."])  # the fault fired once: the turn works
        assert result.sha256 == emu.record(result.context_id).turn_audio_sha256
    finally:
        await tts.aclose()


async def test_an_unknown_voice_says_which_setting_to_check(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with CartesiaEmulator(voice="tone", catalogue=Catalogue(voices=frozenset({"v1"}))) as emu:
        tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url, voice="nope")
        err = await failed_turn(tts)
    assert err.status_code == 404 and not err.retryable
    assert str(err).startswith("Cartesia error 404 [voice_not_found]")
    assert "nope" in str(err) and "CARTESIA_VOICE" in str(err)


@pytest.mark.parametrize("base_url", ["127.0.0.1:8787", "ftp://files.example", "https://"])
def test_a_base_url_without_a_web_scheme_and_host_is_refused_at_once(base_url: str) -> None:
    """Issue 22: such a URL was treated as an outage (retries, backoff, a pause and a
    NonHttpUrlClientError after 6.5 s)."""
    with pytest.raises(ValueError) as e:
        plugin_cartesia_ws.TTS(api_key="sk_car_x", base_url=base_url)
    assert repr(base_url) in str(e.value) and "CARTESIA_BASE_URL" in str(e.value)
