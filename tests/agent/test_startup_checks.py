"""Issue 22: bad settings are caught when the worker starts, in one line with exit status 2,
not when a call arrives (a job that fails, an agent that never joins, a caller who hears
silence) and not as a traceback. Also: LiveKit's tracebacks of a failed reply are folded
into our one line."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest
from livekit.agents import APIStatusError

from agent.cli import main
from agent.preflight import ServerCheckFailed, check_cartesia
from agent.quiet_logs import FoldTtsTracebacks
from agent.settings import Settings
from plugin_cartesia_ws.emulator import CartesiaEmulator
from plugin_cartesia_ws.models import TTSDefaultVoiceId

LIVEKIT = {
    "LIVEKIT_URL": "ws://127.0.0.1:7880",
    "LIVEKIT_API_KEY": "APIkey",
    "LIVEKIT_API_SECRET": "a-test-secret-that-is-at-least-32-characters",
    "OPENAI_API_KEY": "sk-test",
    "CARTESIA_API_KEY": "sk_car_test",
}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "LIVEKIT_URL",
            "localhost:7880",
            "LIVEKIT_URL='localhost:7880' is not valid: expected a URL starting with http:// "
            "or https:// or ws:// or wss:// and a host, e.g. ws://127.0.0.1:7880",
        ),
        (
            "CARTESIA_SAMPLE_RATE",
            "12345",
            "CARTESIA_SAMPLE_RATE='12345' is not valid: use one of "
            "8000, 16000, 22050, 24000, 44100, 48000",
        ),
        (
            "CARTESIA_BASE_URL",
            "127.0.0.1:8787",
            "CARTESIA_BASE_URL='127.0.0.1:8787' is not valid: expected a URL starting with "
            "http:// or https:// or ws:// or wss:// and a host, e.g. https://api.cartesia.ai",
        ),
        ("CARTESIA_BASE_URL", "ftp://files.example", "CARTESIA_BASE_URL='ftp://files.example'"),
        ("OPENAI_BASE_URL", "localhost:11434/v1", "OPENAI_BASE_URL='localhost:11434/v1'"),
    ],
)
def test_a_setting_no_client_can_use_stops_the_start_in_one_line(
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    message: str,
) -> None:
    for key, setting in {**LIVEKIT, name: value}.items():
        clean_env.setenv(key, setting)
    assert main(["start"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


def test_livekit_url_from_the_command_line_is_checked_too(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, setting in LIVEKIT.items():
        clean_env.setenv(key, setting)
    assert main(["start", "--url", "localhost:7880"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: LIVEKIT_URL='localhost:7880' is not valid") and err.count("\n") == 1
    )


def test_the_official_plugin_must_be_installed_for_tts_plugin_livekit(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setitem(sys.modules, "livekit.plugins.cartesia", None)  # as if not installed
    settings = Settings(tts_plugin="livekit", cartesia_check="off")
    with pytest.raises(ServerCheckFailed) as e:
        asyncio.run(check_cartesia(settings))
    assert str(e.value) == (
        "TTS_PLUGIN=livekit needs LiveKit's Cartesia plugin: pip install "
        "livekit-plugins-cartesia (or unset TTS_PLUGIN)"
    )


async def _check(emu: CartesiaEmulator, **fields: str) -> str | None:
    given = {"cartesia_api_key": emu.api_key, "cartesia_base_url": emu.url, **fields}
    settings = Settings(**given)  # type: ignore[arg-type]
    try:
        await check_cartesia(settings)
    except ServerCheckFailed as e:
        return str(e)
    return None


async def test_cartesia_key_and_voice_are_checked_with_one_request() -> None:
    async with CartesiaEmulator() as emu:
        assert await _check(emu) is None  # LiveKit's default voice: known
        before = emu.stats["handshakes"]
        assert await _check(emu, cartesia_voice=TTSDefaultVoiceId) is None
        assert emu.stats["handshakes"] == before + 1  # one request
        assert await _check(emu, cartesia_api_key="sk_car_wrong_4711") == (
            f"Cartesia at {emu.url} rejected CARTESIA_API_KEY (HTTP 401): check the key"
        )
        assert await _check(emu, cartesia_voice="f786b574-typo") == (
            f"Cartesia at {emu.url} does not know CARTESIA_VOICE='f786b574-typo' (HTTP 404): "
            "use a voice id from your Cartesia voice library"
        )
        # the WebSocket form of the base URL works as well
        ws_url = emu.url.replace("http", "ws", 1)
        assert await _check(emu, cartesia_base_url=ws_url) is None
        port = emu.url.rsplit(":", 1)[1]
    message = await _check(emu, cartesia_base_url=f"http://127.0.0.1:{port}")
    assert message is not None and message.startswith(
        f"cannot reach Cartesia at http://127.0.0.1:{port} ("
    )
    assert message.endswith(
        "check CARTESIA_BASE_URL, or set CARTESIA_CHECK=off to start without this check"
    )
    assert "4711" not in (message or "")


async def test_cartesia_check_off_starts_offline() -> None:
    settings = Settings(cartesia_base_url="http://127.0.0.1:9", cartesia_check="off")
    await check_cartesia(settings)  # no request


async def test_the_worker_command_stops_on_a_wrong_cartesia_key(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with CartesiaEmulator() as emu:
        for key, setting in {**LIVEKIT, "CARTESIA_BASE_URL": emu.url}.items():
            clean_env.setenv(key, setting)
        clean_env.setattr("agent.preflight.check_livekit_sync", lambda settings: None)
        # main() runs its own event loop: a thread, while the emulator serves from this one
        rc = await asyncio.to_thread(main, ["start"])
    err = capsys.readouterr().err
    assert rc == 2
    assert (
        err == f"error: Cartesia at {emu.url} rejected CARTESIA_API_KEY (HTTP 401): check the key\n"
    )


def _record(message: str, error: BaseException) -> logging.LogRecord:
    return logging.LogRecord(
        "livekit.agents", logging.ERROR, __file__, 1, message, (), (type(error), error, None)
    )


def test_livekits_tracebacks_of_a_tts_failure_are_folded_others_kept() -> None:
    folding = FoldTtsTracebacks()
    failure = APIStatusError("Cartesia rejected the API key", status_code=401, retryable=False)
    assert not folding.filter(_record("Error in _tts_inference_task", failure))
    assert not folding.filter(_record("Error in _tts_task", failure))
    assert folding.filter(_record("Error in _tts_task", TypeError("a bug")))  # keeps its traceback
    assert folding.filter(_record("Error in _llm_inference_task", failure))
