"""The worker: server options, prewarm, and `entrypoint` run in a fake job context with
the real Silero VAD, the real OpenAI plugins on the local fake, and a stub TTS."""

from __future__ import annotations

import asyncio
import logging
import math
import pickle
import ssl
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import AgentServer, AgentSession
from livekit.agents.testing import fake_job_context
from livekit.agents.worker import ServerEnvOption
from livekit.plugins import silero

from agent import worker
from agent.dev.audio_io import TranscriptCollector, VirtualSpeaker
from agent.settings import Settings
from tests.fakes import FakeOpenAI, StubTTS

REPLY = "It is sunny and twenty two degrees in Paris."
INSTRUCTIONS = "You are a weather bot. Answer in one sentence."
GREETING = "Hi, I am the weather bot."


# ---------------------------------------------------------------------- options
def test_server_options() -> None:
    settings = Settings(
        livekit_url="ws://lk:7880",
        livekit_api_key="k",
        livekit_api_secret="s",
        agent_name="helper",
        worker_port=9000,
        worker_load_threshold=0.85,
        log_level="WARNING",
    )
    opts = worker.server_options(settings)
    assert opts.entrypoint_fnc is worker.entrypoint
    assert opts.prewarm_fnc is worker.prewarm
    assert opts.agent_name == "helper"
    assert (opts.ws_url, opts.api_key, opts.api_secret) == ("ws://lk:7880", "k", "s")
    assert opts.log_level == "WARN"
    # production: our threshold and port; dev: never full, random port
    assert ServerEnvOption.getvalue(opts.load_threshold, devmode=False) == 0.85
    assert ServerEnvOption.getvalue(opts.load_threshold, devmode=True) == math.inf
    assert ServerEnvOption.getvalue(opts.port, devmode=False) == 9000
    assert ServerEnvOption.getvalue(opts.port, devmode=True) == 0
    # the functions travel to job processes by reference
    assert pickle.loads(pickle.dumps(opts.entrypoint_fnc)) is worker.entrypoint
    assert pickle.loads(pickle.dumps(opts.prewarm_fnc)) is worker.prewarm
    server = AgentServer.from_server_options(opts)
    assert server._agent_name == "helper"


def test_default_load_threshold_is_above_livekits_on_small_machines() -> None:
    opts = worker.server_options(Settings())
    assert ServerEnvOption.getvalue(opts.load_threshold, devmode=False) == 0.9
    assert ServerEnvOption.getvalue(opts.port, devmode=False) == 8081
    assert opts.agent_name == ""  # automatic dispatch


def test_the_vads_end_of_speech_silence_is_a_setting() -> None:
    """VAD_MIN_SILENCE reaches Silero; unset, it is LiveKit's own default."""
    default = silero.VAD.load()
    assert worker.load_vad(Settings())._opts.min_silence_duration == (
        default._opts.min_silence_duration
    )
    shorter = Settings.from_env(env={"VAD_MIN_SILENCE": "0.2"}, dotenv_path=None)
    assert worker.load_vad(shorter)._opts.min_silence_duration == 0.2


# ---------------------------------------------------------------------- entrypoint
@pytest.fixture
def vad_loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every silero.VAD.load() call (the real one runs)."""
    loads: list[object] = []
    real_load = silero.VAD.load

    def counting_load(*args: object, **kwargs: object) -> silero.VAD:
        vad = real_load(*args, **kwargs)
        loads.append(vad)
        return vad

    monkeypatch.setattr(silero.VAD, "load", staticmethod(counting_load))
    return loads


@pytest.fixture
def headless(
    headless_session: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> dict[str, object]:
    """The headless session with a stub TTS instead of plugin_cartesia_ws."""
    monkeypatch.setattr(
        worker, "build_tts", lambda settings: headless_session.setdefault("tts", StubTTS())
    )
    return headless_session


async def _wait_for_assistant_message(session: AgentSession, timeout: float = 10.0) -> str:
    got: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_item(ev: object) -> None:
        item = ev.item  # type: ignore[attr-defined]
        if getattr(item, "role", None) == "assistant" and not got.done():
            got.set_result(item.text_content or "")

    session.on("conversation_item_added", on_item)
    try:
        return await asyncio.wait_for(got, timeout)
    finally:
        session.off("conversation_item_added", on_item)


async def test_entrypoint_runs_a_session_with_the_prewarmed_vad(
    clean_env: pytest.MonkeyPatch,
    vad_loads: list[object],
    headless: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="agent")
    async with FakeOpenAI(
        replies=[REPLY],
        transcripts=["what's the weather in paris"],
        ttft=0.05,
        token_interval=0.005,
    ) as fake:
        for name, value in {
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_LLM_MODEL": "llama3.2",
            "OPENAI_STT_MODEL": "whisper-1",
            "CARTESIA_API_KEY": "ck",
            "AGENT_INSTRUCTIONS": INSTRUCTIONS,
            "AGENT_GREETING": GREETING,
        }.items():
            clean_env.setenv(name, value)

        with fake_job_context() as ctx:
            worker.prewarm(ctx.proc)
            assert len(vad_loads) == 1
            greeted = None
            try:
                # the OpenAI clients' SSL contexts were made in prewarm, not on the job's loop
                loaded: list[object] = []
                real_load = ssl.SSLContext.load_verify_locations

                def load(context: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
                    loaded.append(args)
                    real_load(context, *args, **kwargs)

                clean_env.setattr(ssl.SSLContext, "load_verify_locations", load)
                await asyncio.wait_for(worker.entrypoint(ctx), 20)
                assert loaded == []
                clean_env.setattr(ssl.SSLContext, "load_verify_locations", real_load)
                session = headless["session"]
                assert isinstance(session, AgentSession)
                greeted = asyncio.ensure_future(_wait_for_assistant_message(session))

                # the session is up, with the process's VAD: no second load
                assert session.agent_state in ("listening", "speaking")
                assert session.vad is ctx.proc.userdata["vad"] is vad_loads[0]
                assert len(vad_loads) == 1

                # the greeting is spoken by the TTS alone
                assert await greeted == GREETING
                stub = headless["tts"]
                assert isinstance(stub, StubTTS) and stub.texts[0] == GREETING
                assert fake.chat_requests == []

                # a turn: the real openai.LLM against the fake, the reply through the TTS
                result = await asyncio.wait_for(session.run(user_input="Weather in Paris?"), 20)
                replies = [
                    ev.item.text_content
                    for ev in result.events
                    if ev.type == "message" and ev.item.role == "assistant"
                ]
                assert replies == [REPLY]
                assert stub.texts[1] == REPLY
                speaker = headless["speaker"]
                assert isinstance(speaker, VirtualSpeaker) and speaker.received_s > 0
                text = headless["text"]
                assert isinstance(text, TranscriptCollector)
                assert text.replies == [GREETING, REPLY]

                (request,) = fake.chat_requests
                assert request["model"] == "llama3.2"
                assert request["messages"][0] == {"role": "system", "content": INSTRUCTIONS}
                assert request["messages"][-1] == {"role": "user", "content": "Weather in Paris?"}

                # the session's STT is the real openai.STT on the fake server
                pcm = (np.sin(np.arange(8000) / 8) * 4000).astype(np.int16)
                event = await session.stt.recognize(  # type: ignore[union-attr]
                    buffer=[rtc.AudioFrame(pcm.tobytes(), 16000, 1, len(pcm))]
                )
                assert event.alternatives[0].text == "what's the weather in paris"
                assert fake.transcription_requests[0].fields["model"] == "whisper-1"
            finally:
                if greeted is not None:
                    greeted.cancel()
                if "session" in headless:
                    await headless["session"].aclose()  # type: ignore[attr-defined]

    # per-turn latency and component metrics at INFO, transcripts only at DEBUG
    info = [
        r.getMessage() for r in caplog.records if r.name == "agent" and r.levelno >= logging.INFO
    ]
    assert any(
        m.startswith("agent turn: e2e ") and "llm ttft" in m and "tts ttfb" in m for m in info
    )
    assert any(m.startswith("llm: ttft ") for m in info)
    assert any(m.startswith("tts: ttfb ") for m in info)
    # the session's start names what answers, and where (issue 22: it named OpenAI's
    # defaults while local stand-ins answered)
    [started] = [r for r in caplog.records if r.getMessage() == "starting session"]
    assert started.llm == f"llama3.2 at {fake.base_url}"  # type: ignore[attr-defined]
    assert started.stt == f"whisper-1 at {fake.base_url}"  # type: ignore[attr-defined]
    assert started.tts.startswith("sonic-3 by cartesia_ws at ")  # type: ignore[attr-defined]
    for message in info:
        assert (
            REPLY not in message and "Weather in Paris?" not in message and GREETING not in message
        )


async def test_entrypoint_loads_the_vad_itself_when_not_prewarmed(
    clean_env: pytest.MonkeyPatch,
    vad_loads: list[object],
    headless: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    clean_env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # never called here
    clean_env.setenv("CARTESIA_API_KEY", "ck")
    with fake_job_context() as ctx:
        try:
            await asyncio.wait_for(worker.entrypoint(ctx), 20)
            assert len(vad_loads) == 1
            assert headless["session"].vad is ctx.proc.userdata["vad"]  # type: ignore[attr-defined]
        finally:
            if "session" in headless:
                await headless["session"].aclose()  # type: ignore[attr-defined]
    assert any("VAD was not prewarmed" in r.getMessage() for r in caplog.records)


async def test_entrypoint_refuses_to_start_without_model_keys(
    clean_env: pytest.MonkeyPatch, headless: dict[str, object]
) -> None:
    from agent.settings import MissingSetting

    with fake_job_context() as ctx, pytest.raises(MissingSetting, match="CARTESIA_API_KEY"):
        await worker.entrypoint(ctx)
    assert "session" not in headless


async def test_build_session_wiring(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings(
        cartesia_api_key="ck",
        openai_base_url="http://127.0.0.1:11434/v1",
        openai_llm_model="qwen2.5",
        openai_stt_model="whisper-1",
        interruption_mode="vad",
    )
    stub = StubTTS()
    clean_env.setattr(worker, "build_tts", lambda s: stub)
    vad = object.__new__(silero.VAD)  # identity only: not used before start()
    session = worker.build_session(settings, vad=vad)  # type: ignore[arg-type]
    assert session.tts is stub and session.vad is vad
    assert session.llm.model == "qwen2.5"  # type: ignore[union-attr]
    assert session.stt.model == "whisper-1"  # type: ignore[union-attr]
    assert str(session.stt._client.base_url) == "http://127.0.0.1:11434/v1/"  # type: ignore[union-attr]
    assert str(session.llm._client.base_url) == "http://127.0.0.1:11434/v1/"  # type: ignore[union-attr]
    assert not session.stt.capabilities.streaming  # type: ignore[union-attr]
    assert session.turn_detection == "vad"
    assert session.options.use_tts_aligned_transcript is True
    assert session.options.interruption["enabled"] is True
    assert session.options.interruption["mode"] == "vad"
    assert session.interruption_detection == "vad"  # explicit: never "adaptive" by accident
    assert session.options.endpointing["min_delay"] == 0.5  # LiveKit's default
    longer = Settings.from_env(env={"ENDPOINTING_MIN_DELAY": "0.9"}, dotenv_path=None)
    assert worker.build_session(longer, vad=vad).options.endpointing["min_delay"] == 0.9  # type: ignore[arg-type]


async def test_build_tts_is_the_websocket_plugin() -> None:
    plugin = pytest.importorskip("plugin_cartesia_ws", reason="plugin_cartesia_ws not importable")
    settings = Settings(
        cartesia_api_key="ck",
        cartesia_base_url="http://127.0.0.1:9",  # never contacted: no session runs here
        cartesia_model="sonic-2",
        cartesia_sample_rate=16000,
        tts_chunking="sentence",
    )
    tts = worker.build_tts(settings)
    try:
        assert isinstance(tts, plugin.TTS)
        assert tts.model == "sonic-2"
        assert tts.sample_rate == 16000
        # use_tts_aligned_transcript only helps if the TTS sends word timings
        assert tts.capabilities.streaming and tts.capabilities.aligned_transcript
    finally:
        await tts.aclose()


async def test_stt_can_use_its_own_server(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings(
        openai_api_key="sk",
        openai_base_url="http://127.0.0.1:11434/v1",
        openai_stt_base_url="http://127.0.0.1:8000/v1",
    )
    stt, llm = worker.build_stt(settings), worker.build_llm(settings)
    try:
        assert str(stt._client.base_url) == "http://127.0.0.1:8000/v1/"
        assert str(llm._client.base_url) == "http://127.0.0.1:11434/v1/"
    finally:
        await stt.aclose()
        await llm.aclose()


@pytest.mark.parametrize(
    ("plugin", "setting", "speculative"),
    [("cartesia_ws", "on", True), ("cartesia_ws", "off", False), ("livekit", "on", False)],
)
async def test_speculative_tts_is_on_with_our_plugin_only(
    clean_env: pytest.MonkeyPatch, plugin: str, setting: str, speculative: bool
) -> None:
    settings = Settings(
        cartesia_api_key="ck", openai_api_key="ok", tts_plugin=plugin, preemptive_tts=setting
    )  # type: ignore[arg-type]
    clean_env.setattr(worker, "build_tts", lambda s: StubTTS())
    session = worker.build_session(settings, vad=object.__new__(silero.VAD))  # type: ignore[arg-type]
    preemptive = session.options.preemptive_generation
    assert preemptive["enabled"] is True
    assert preemptive["preemptive_tts"] is speculative
