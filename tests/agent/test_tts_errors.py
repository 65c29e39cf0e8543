"""Issue 11: a Cartesia key the server rejects is reported when the session starts (the
TTS's prewarm opens the socket), as one line naming the cause and what to do, never the
key: by `python -m agent simulate` before the user speaks, and in the worker's log while
the agent keeps running."""

from __future__ import annotations

import asyncio
import logging
import wave
from pathlib import Path

import numpy as np
import pytest
from livekit.agents import AgentSession
from livekit.agents.testing import fake_job_context
from livekit.agents.voice.events import ErrorEvent

from agent import simulate, worker
from agent.dev.audio_io import TranscriptCollector, VirtualSpeaker
from agent.settings import Settings
from plugin_cartesia_ws.emulator import CartesiaEmulator
from tests.fakes import FakeOpenAI

WRONG_KEY = "sk_car_wrong_key_do_not_log_4711"
CAUSE = "Cartesia rejected the API key (HTTP 401): check CARTESIA_API_KEY (or api_key=)"


def _wav(path: Path) -> Path:
    pcm = (np.sin(np.arange(16000) / 5) * 8000).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return path


async def test_simulate_reports_a_bad_key_before_the_user_speaks(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeOpenAI() as fake, CartesiaEmulator(voice="tone") as emu:
        for name, value in {
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": fake.base_url,
            "CARTESIA_API_KEY": WRONG_KEY,  # the emulator accepts only its own key
            "CARTESIA_BASE_URL": emu.url,
        }.items():
            clean_env.setenv(name, value)
        out = tmp_path / "out"
        argv = ["--input", str(_wav(tmp_path / "in.wav")), "--out-dir", str(out)]
        # main() runs its own event loop: give it a thread, the servers serve from this one
        rc = await asyncio.to_thread(simulate.main, [*argv, "--timeout", "20"])
    printed = capsys.readouterr()
    assert rc == 1  # a turn (here: the TTS) failed
    assert printed.err.strip() == f"error: TTS: {CAUSE}"
    # reported before the user's speech was played: nothing was transcribed or answered,
    # no turn asked the emulator for audio
    assert fake.transcription_requests == [] and fake.chat_requests == []
    assert emu.records == {}
    log = (out / "simulate.log").read_text()
    assert log.count(f"ERROR livekit.plugins.cartesia_ws: {CAUSE}.") == 1
    assert WRONG_KEY not in printed.out + printed.err + log


async def test_worker_logs_a_bad_key_at_session_start_and_keeps_running(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    made: dict[str, AgentSession] = {}
    real_build_session = worker.build_session

    def build_session(settings: Settings, **kwargs: object) -> AgentSession:
        session = real_build_session(settings, **kwargs)  # type: ignore[arg-type]
        session.output.audio = VirtualSpeaker()
        session.output.transcription = TranscriptCollector()
        made["session"] = session
        return session

    reported = asyncio.Event()

    class OnError(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR and record.name == "livekit.plugins.cartesia_ws":
                reported.set()

    handler = OnError()
    logging.getLogger("livekit.plugins.cartesia_ws").addHandler(handler)
    clean_env.setattr(worker, "build_session", build_session)
    try:
        async with FakeOpenAI() as fake, CartesiaEmulator(voice="tone") as emu:
            for name, value in {
                "OPENAI_BASE_URL": fake.base_url,
                "CARTESIA_API_KEY": WRONG_KEY,
                "CARTESIA_BASE_URL": emu.url,
            }.items():
                clean_env.setenv(name, value)
            with fake_job_context() as ctx:
                worker.prewarm(ctx.proc)
                closed: list[object] = []
                try:
                    await asyncio.wait_for(worker.entrypoint(ctx), 20)
                    session = made["session"]
                    session.on("close", closed.append)
                    # the session's start prewarmed the TTS: the refusal is logged now,
                    # before any reply was asked for
                    await asyncio.wait_for(reported.wait(), 10)
                    assert emu.records == {} and fake.chat_requests == []

                    # a reply then fails with the same cause, in one clear worker line
                    errors: list[ErrorEvent] = []
                    failed = asyncio.Event()
                    session.on("error", lambda ev: (errors.append(ev), failed.set()))
                    session.generate_reply(user_input="Hello there.")
                    await asyncio.wait_for(failed.wait(), 10)
                    assert closed == []  # the agent keeps running
                finally:
                    if "session" in made:
                        await made["session"].aclose()
                        await made["session"].tts.aclose()  # type: ignore[union-attr]
    finally:
        logging.getLogger("livekit.plugins.cartesia_ws").removeHandler(handler)

    plugin_errors = [
        r.getMessage()
        for r in caplog.records
        if r.name == "livekit.plugins.cartesia_ws" and r.levelno >= logging.ERROR
    ]
    assert plugin_errors == [f"{CAUSE}. The TTS cannot speak until this is fixed."]
    worker_lines = [r.getMessage() for r in caplog.records if r.name == "agent"]
    assert f"session error from TTS: {CAUSE} (gave up on this reply)" in worker_lines
    # LiveKit's own tracebacks of the same failure are folded into those lines
    livekit_tracebacks = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("Error in _tts")
    ]
    assert livekit_tracebacks == []
    assert WRONG_KEY not in caplog.text
