"""plugin_cartesia_ws.TTS inside a real, headless AgentSession (real Silero VAD on eSpeak
speech, scripted STT/LLM), where livekit.plugins.cartesia.TTS would normally sit."""

from __future__ import annotations

import numpy as np
import pytest
from livekit.agents import Agent, AgentSession
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer
from livekit.plugins import silero

import plugin_cartesia_ws
from agent.dev.audio_io import SpeechInput, TranscriptCollector, VirtualSpeaker
from agent.dev.scripted import ScriptedLLM, ScriptedSTT, SessionProbe
from plugin_cartesia_ws.emulator import CartesiaEmulator, LatencyModel
from plugin_cartesia_ws.emulator.voices import EspeakVoice, VoiceUnavailable

LONG_REPLY = (
    "Sure! It is sunny and twenty two degrees in Paris today. There is a light breeze from "
    "the west, and no rain is expected until the weekend. Would you like the forecast for "
    "tomorrow as well?"
)


def speech(text: str) -> np.ndarray:
    try:
        voice = EspeakVoice()
    except VoiceUnavailable as exc:
        pytest.skip(f"eSpeak NG not available for user speech: {exc}")
    rendering = voice.render(text, sample_rate=16000)
    return np.concatenate([np.zeros(8000, np.int16), rendering.samples])


async def start_session(tts: plugin_cartesia_ws.TTS, transcripts: list[str], replies: list[str]):
    session = AgentSession(
        vad=silero.VAD.load(min_silence_duration=0.4),
        stt=ScriptedSTT(transcripts),
        llm=ScriptedLLM(replies),
        tts=tts,
        turn_handling={
            "turn_detection": "vad",
            "endpointing": {"min_delay": 0.3},
            "interruption": {
                "mode": "vad",
                "min_duration": 0.3,
                "resume_false_interruption": False,
            },
        },
        use_tts_aligned_transcript=True,
        aec_warmup_duration=None,
        user_away_timeout=None,
    )
    mic, speaker, text = SpeechInput(), VirtualSpeaker(), TranscriptCollector()
    sync = TranscriptSynchronizer(next_in_chain_audio=speaker, next_in_chain_text=text)
    session.input.audio = mic
    session.output.audio = sync.audio_output
    session.output.transcription = sync.text_output
    probe = SessionProbe(session, speaker.playing_changed)
    await session.start(Agent(instructions="You are a helpful voice assistant."))
    return session, sync, mic, speaker, probe


async def test_a_voice_turn_with_our_tts() -> None:
    async with CartesiaEmulator(voice="tone") as emu:
        tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url)
        session, sync, mic, speaker, probe = await start_session(
            tts, ["What is the weather like in Paris?"], [LONG_REPLY]
        )
        try:
            mic.play(speech("What is the weather like in Paris?"))
            await probe.wait(lambda: bool(probe.assistant()) and not speaker.playing)
        finally:
            mic.close()
            await session.aclose()
            await sync.aclose()
            await tts.aclose()
        [reply] = probe.assistant()
        assert not reply.interrupted
        assert reply.text_content and "Paris" in reply.text_content
        assert reply.metrics.get("tts_node_ttfb") is not None
        assert reply.metrics.get("e2e_latency") is not None
        [segment] = speaker.segments
        heard = segment.heard_pcm()
        assert len(heard) and np.abs(heard).max() > 1000  # non-silent
        # as long as the text implies (the tone voice: ~60 ms per letter)
        assert segment.played_s > 0.04 * sum(c.isalnum() for c in LONG_REPLY)
        # one turn: its first context and, paced, the ones it went on in after a quiet spell
        [turn_id] = {cid.split("-")[0] for cid in emu.records}
        assert emu.sockets_opened == 1 and all(c.startswith(turn_id) for c in emu.records)
        said = "".join(emu.records[cid].transcript for cid in sorted(emu.records, key=len))
        assert said.split() == reply.text_content.split()  # every word once, in order


async def test_barge_in_cancels_and_the_next_turn_reuses_the_socket() -> None:
    # Real-time generation, so the reply is still being generated when the user barges in.
    async with CartesiaEmulator(voice="tone", latency=LatencyModel(realtime_factor=1.0)) as emu:
        tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url)
        session, sync, mic, speaker, probe = await start_session(
            tts,
            ["Tell me the weather.", "Stop. What time is it?"],
            [LONG_REPLY, "It is noon."],
        )
        try:
            mic.play(speech("Tell me the weather."))
            await probe.wait(lambda: speaker.playing, timeout=30)
            mic.play(speech("Stop. What time is it?"))  # the user talks over the reply
            await probe.wait(lambda: len(probe.assistant()) == 2 and not speaker.playing)
        finally:
            mic.close()
            await session.aclose()
            await sync.aclose()
            await tts.aclose()
        first, second = probe.assistant()
        assert first.interrupted and not second.interrupted
        assert len(first.text_content or "") < len(LONG_REPLY)  # only what was heard
        assert speaker.segments[0].interrupted
        assert speaker.segments[0].played_s < speaker.segments[0].received_s + 1e-6
        cancelled = [r for r in emu.records.values() if r.cancelled]
        assert len(cancelled) == 1 and not cancelled[0].done_sent
        assert "noon" in (second.text_content or "")
        assert emu.sockets_opened == 1  # the next turn ran on the same socket
