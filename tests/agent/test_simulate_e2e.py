"""End to end, headless, no room: the worker's AgentSession with the real Silero VAD on
eSpeak speech, the real livekit-plugins-openai STT and LLM against the local OpenAI fake,
and plugin_cartesia_ws.TTS against the Cartesia emulator. Also `agent.worker.entrypoint`
in LiveKit's fake job context with the real TTS, and `python -m agent simulate` itself."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable

import numpy as np
import pytest
from livekit.agents import AgentSession, vad
from livekit.agents.testing import fake_job_context

from agent import simulate, worker
from agent.dev.audio_io import VirtualSpeaker
from agent.settings import Settings
from plugin_cartesia_ws.emulator import CartesiaEmulator
from plugin_cartesia_ws.emulator.voices import EspeakVoice, VoiceUnavailable
from tests.fakes import FakeOpenAI, TranscriptionRequest

QUESTION = "What is the weather like in Paris?"
REPLY = "It is sunny in Paris today. The afternoon will be warm, about twenty four degrees."
LONG_REPLY = (
    "Here is the full weather report for Paris. The morning starts cool and cloudy, with "
    "a light breeze from the west. By noon the clouds clear and the sun comes out. The "
    "afternoon is warm, around twenty four degrees, and the evening stays dry and mild."
)
STOP = "Stop. What time is it?"
SHORT_REPLY = "It is three in the afternoon."

try:
    EspeakVoice()
    NO_ESPEAK = ""
except VoiceUnavailable as exc:  # pragma: no cover - depends on the machine
    NO_ESPEAK = f"eSpeak NG is not available for user speech: {exc}"

needs_espeak = pytest.mark.skipif(bool(NO_ESPEAK), reason=NO_ESPEAK or "-")


@functools.cache
def shared_vad() -> vad.VAD:
    """One Silero model for the module, as a worker process shares its prewarmed VAD."""
    return worker.load_vad()


def settings_for(fake: FakeOpenAI, emu: CartesiaEmulator, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "openai_api_key": "sk-test",
        "openai_base_url": fake.base_url,
        "openai_stt_model": "whisper-1",
        "cartesia_api_key": emu.api_key,
        "cartesia_base_url": emu.url,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def transcribe_speech(*texts: str):
    """A transcription callback for the fake that only answers real speech: the next text
    when the uploaded WAV holds at least a second of loud audio, else ""."""
    queue = list(texts)

    def answer(req: TranscriptionRequest) -> str:
        pcm = req.pcm.astype(np.float64)
        loud = np.abs(pcm) > 1000
        if req.duration < 1.0 or loud.sum() < 0.3 * req.sample_rate:
            return ""
        return queue.pop(0) if queue else ""

    return answer


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def espeak_seconds(text: str) -> float:
    return EspeakVoice().render(text, sample_rate=24000).duration


# ---------------------------------------------------------------------- a turn
@needs_espeak
async def test_a_voice_turn_through_the_workers_session() -> None:
    async with (
        FakeOpenAI(replies=[REPLY], transcripts=transcribe_speech(QUESTION)) as fake,
        CartesiaEmulator(voice="espeak") as emu,
    ):
        sim = simulate.Simulation(settings_for(fake, emu), vad=shared_vad())
        try:
            await sim.start()
            await sim.turn(simulate.espeak_utterance(QUESTION), timeout=30)
        finally:
            await sim.aclose()

    # the real OpenAI STT uploaded the VAD-cut utterance, the LLM got its transcript
    (upload,) = fake.transcription_requests
    assert upload.fields["model"] == "whisper-1"
    assert 1.5 < upload.duration < 6.0
    (chat,) = fake.chat_requests
    assert chat["messages"][-1] == {"role": "user", "content": QUESTION}

    # the history holds the exchange, the reply in full (TTS-aligned words)
    user, reply = sim.messages
    assert (user.role, user.text_content) == ("user", QUESTION)
    assert reply.role == "assistant" and not reply.interrupted
    assert words(reply.text_content or "") == words(REPLY)

    # LiveKit's per-turn metrics
    assert reply.metrics["llm_node_ttft"] >= fake.ttft  # the fake's model latency shows
    assert 0 < reply.metrics["tts_node_ttfb"] < 2
    assert 0 < reply.metrics["e2e_latency"] < 10
    assert user.metrics["transcription_delay"] > 0
    assert user.metrics["end_of_turn_delay"] > 0

    # the listener heard non-silent speech as long as the text implies, and exactly what
    # the server sent for this turn's context
    (segment,) = sim.speaker.segments
    heard = segment.heard_pcm()
    assert np.abs(heard).max() > 5000
    assert not segment.interrupted and segment.played_s == pytest.approx(segment.received_s)
    expected = espeak_seconds(REPLY)
    assert 0.8 * expected < segment.played_s < 1.6 * expected
    ((context_id, record),) = emu.records.items()
    assert record.done_sent and not record.cancelled
    assert segment.sha256() == record.audio_sha256
    assert words(record.transcript) == words(REPLY)
    assert emu.sockets_opened == 1

    # the simulation's own account of the turn agrees
    (turn,) = sim.turns()
    assert turn.context_id == context_id
    assert turn.heard == QUESTION and not turn.interrupted
    assert 0.3 < turn.vad_delay < 1.5  # Silero's 0.55 s silence window and a bit
    assert turn.speech_end < turn.vad_end_at <= turn.stt_final_at < turn.llm_first_token_at
    assert turn.llm_first_token_at < turn.tts_first_audio_at <= turn.playback_start
    assert turn.tts_time_to_first_audio is not None and turn.tts_time_to_first_audio > 0
    assert turn.heard_after == pytest.approx(turn.playback_start - turn.speech_end)


# ---------------------------------------------------------------------- barge-in
@needs_espeak
async def test_barge_in_cancels_the_context_and_the_next_turn_reuses_the_socket() -> None:
    async with (
        FakeOpenAI(
            replies=[LONG_REPLY, SHORT_REPLY], transcripts=transcribe_speech(QUESTION, STOP)
        ) as fake,
        CartesiaEmulator(voice="espeak", record_audio=True) as emu,
    ):
        sim = simulate.Simulation(settings_for(fake, emu), vad=shared_vad())
        try:
            await sim.start()
            overlapped = await sim.turn_with_barge_in(
                simulate.espeak_utterance(QUESTION),
                simulate.espeak_utterance(STOP),
                after=0.8,
                timeout=40,
            )
        finally:
            await sim.aclose()

    assert overlapped, "the user spoke while the reply was playing"
    user1, first, user2, second = sorted(
        sim.messages, key=lambda m: m.metrics.get("started_speaking_at", m.created_at)
    )
    assert [m.role for m in (user1, first, user2, second)] == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert (user1.text_content, user2.text_content) == (QUESTION, STOP)

    # the reply stopped: interrupted, and the history holds only the words that were heard
    assert first.interrupted and not second.interrupted
    heard_words = words(first.text_content or "")
    assert len(heard_words) < len(words(LONG_REPLY))
    assert heard_words == words(LONG_REPLY)[: len(heard_words)]
    assert words(second.text_content or "") == words(SHORT_REPLY)
    # ... and that is what the LLM sees as the agent's last words
    assert fake.chat_requests[1]["messages"][-2] == {
        "role": "assistant",
        "content": first.text_content,
    }

    # the speaker: the first reply cut short, then the second reply, nothing else
    cut, nxt = sim.speaker.segments
    assert cut.interrupted and not nxt.interrupted
    assert cut.played_s < 0.6 * espeak_seconds(LONG_REPLY)
    assert cut.started_at + cut.played_s < nxt.started_at

    # the server got a cancel for the first context and sent no `done` for it
    turns = sim.turns()
    first_ctx = next(t.context_id for t in turns if t.interrupted)
    second_ctx = next(t.context_id for t in turns if t.barge_in)
    assert set(emu.records) == {first_ctx, second_ctx}
    cancelled, completed = emu.records[first_ctx], emu.records[second_ctx]
    assert cancelled.cancelled and not cancelled.done_sent
    assert completed.done_sent and not completed.cancelled

    # no audio of the cancelled context played after the cut: the first segment is a
    # prefix of that context's audio and the second is exactly the next context's
    assert cancelled.audio is not None and completed.audio is not None
    assert bytes(cancelled.audio).startswith(cut.audio_bytes())
    assert nxt.audio_bytes() == bytes(completed.audio)
    assert nxt.sha256() == completed.audio_sha256

    # the next turn ran on the same warm socket
    assert emu.sockets_opened == 1


# ---------------------------------------------------------------------- the job entrypoint
GREETING = "Hi, I am the weather bot."


async def test_worker_entrypoint_with_the_real_tts_against_the_emulator(
    clean_env: pytest.MonkeyPatch, headless_session: dict[str, object]
) -> None:
    """`entrypoint` builds everything from the environment: the real plugin TTS (no
    build_tts patching) talks to the emulator, the real OpenAI LLM to the fake. Only the
    room's audio track is replaced by a virtual speaker (the fake job's room is offline)."""
    async with (
        FakeOpenAI(replies=[REPLY], ttft=0.1, token_interval=0.01) as fake,
        CartesiaEmulator(voice="auto") as emu,
    ):
        for name, value in {
            "OPENAI_BASE_URL": fake.base_url,
            "CARTESIA_API_KEY": emu.api_key,
            "CARTESIA_BASE_URL": emu.url,
            "CARTESIA_SAMPLE_RATE": "16000",
            "AGENT_GREETING": GREETING,
        }.items():
            clean_env.setenv(name, value)

        with fake_job_context() as ctx:
            worker.prewarm(ctx.proc)
            try:
                await asyncio.wait_for(worker.entrypoint(ctx), 20)
                session = headless_session["session"]
                speaker = headless_session["speaker"]
                assert isinstance(session, AgentSession) and isinstance(speaker, VirtualSpeaker)
                assert type(session.tts).__module__.startswith("plugin_cartesia_ws")

                def played_out(segments: int) -> Callable[[], bool]:
                    return lambda: not speaker.playing and len(speaker.segments) >= segments

                # the greeting: TTS only, spoken through the emulator
                await speaker.playing_changed.wait_until(played_out(1), 20)
                assert fake.chat_requests == []
                result = await asyncio.wait_for(session.run(user_input="Weather in Paris?"), 30)
                replies = [
                    ev.item
                    for ev in result.events
                    if ev.type == "message" and ev.item.role == "assistant"
                ]
                assert [words(m.text_content or "") for m in replies] == [words(REPLY)]
                assert replies[0].metrics.get("tts_node_ttfb") is not None
                assert replies[0].metrics.get("llm_node_ttft") is not None
                await speaker.playing_changed.wait_until(played_out(2), 30)
            finally:
                if "session" in headless_session:
                    await headless_session["session"].aclose()  # type: ignore[attr-defined]
                    await headless_session["session"].tts.aclose()  # type: ignore[attr-defined]

    greeting_ctx, reply_ctx = emu.records.values()
    assert words(greeting_ctx.transcript) == words(GREETING)
    assert words(reply_ctx.transcript) == words(REPLY)
    assert all(r.done_sent and not r.cancelled for r in (greeting_ctx, reply_ctx))
    # what played is exactly what the server sent, at the configured rate
    for segment, record in zip(speaker.segments, (greeting_ctx, reply_ctx), strict=True):
        assert segment.frames[0].sample_rate == 16000
        assert segment.sha256() == record.audio_sha256
        assert np.abs(segment.heard_pcm()).max() > 1000
    assert emu.sockets_opened == 1  # prewarmed at start, reused by both turns
    (chat,) = fake.chat_requests
    assert chat["messages"][-1] == {"role": "user", "content": "Weather in Paris?"}


# ---------------------------------------------------------------------- the CLI
