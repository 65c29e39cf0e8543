"""`python -m agent simulate`: full voice turns with no LiveKit server, no sound card and
no cloud account. What `make demo` runs.

User speech (a WAV file, or text spoken by eSpeak) goes through a paced virtual microphone
into the AgentSession that `agent.worker` builds for a room: real Silero VAD, STT, LLM
and `plugin_cartesia_ws.TTS`. The agent's audio plays on a virtual real-time speaker, so
barge-in behaves as it would in a room. Out come the reply as a WAV, a timeline plot, the
conversation as JSON, and a per-turn latency table on the console.

Each component is the real one when configured, else an offline stand-in:

    STT  OpenAI (OPENAI_API_KEY or OPENAI_STT_BASE_URL)  else local Whisper tiny.en
    LLM  OpenAI-compatible (OPENAI_API_KEY or OPENAI_BASE_URL)  else an echo responder
    TTS  Cartesia (CARTESIA_API_KEY, CARTESIA_BASE_URL)  else the emulator, in process
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import sys
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from livekit.agents import AgentSession, vad
from livekit.agents import llm as lk_llm
from livekit.agents import stt as lk_stt
from livekit.agents import tts as lk_tts
from livekit.agents.voice.events import (
    CloseEvent,
    ConversationItemAddedEvent,
    ErrorEvent,
    UserInputTranscribedEvent,
    UserStateChangedEvent,
)
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

from plugin_cartesia_ws.pulse import Pulse

from . import worker
from .audio_io import (
    FRAME_MS,
    PlayedSegment,
    SpeechInput,
    TranscriptCollector,
    VirtualSpeaker,
    read_wav,
    write_wav,
)
from .settings import Settings, SettingsError
from .timeline import LEGEND, Turn, latency_table, plot_timeline

log = logging.getLogger("agent.simulate")

PROG = "python -m agent simulate"
USER_RATE = 16000
DEFAULT_QUESTION = "Hello! What is the weather like in Paris today?"
DEFAULT_BARGE_IN = "Sorry, stop. What time is it?"
CARTESIA_DEFAULT_URL = "https://api.cartesia.ai"
EXIT_FAILED, EXIT_USAGE = 1, 2


_KINDS = (("STT", lk_stt.STT), ("LLM", lk_llm.LLM), ("TTS", lk_tts.TTS))


class SimulationError(Exception):
    """The simulation cannot run or did not complete. `str(e)` is one line, for users."""


# ---------------------------------------------------------------------- user speech
@dataclass
class Utterance:
    source: str  # "eSpeak" or the WAV path
    pcm: np.ndarray  # int16 mono, USER_RATE
    said: str | None = None  # the text, for eSpeak

    @property
    def duration(self) -> float:
        return len(self.pcm) / USER_RATE

    def voiced_range(self) -> tuple[float, float]:
        """Seconds from the start to the first and last voiced 10 ms frame."""
        hop = USER_RATE // 100
        n = len(self.pcm) // hop
        if n == 0:
            return 0.0, 0.0
        frames = self.pcm[: n * hop].astype(np.float64).reshape(n, hop)
        rms = np.sqrt((frames**2).mean(axis=1))
        voiced = np.flatnonzero(rms > max(150.0, 0.05 * rms.max()))
        if not len(voiced):
            return 0.0, 0.0
        return voiced[0] * hop / USER_RATE, (voiced[-1] + 1) * hop / USER_RATE

    def describe(self) -> str:
        what = f'"{self.said}"' if self.said is not None else self.source
        via = "eSpeak" if self.said is not None else "WAV"
        return f"{what} ({via}, {self.duration:.1f} s)"


def espeak_utterance(text: str) -> Utterance:
    from plugin_cartesia_ws.emulator.voices import EspeakVoice, VoiceUnavailable

    try:
        voice = EspeakVoice()
    except VoiceUnavailable as e:
        raise SimulationError(
            f"eSpeak NG is needed to speak --say text ({e}): pip install espeakng-loader, "
            "or give a recording with --input file.wav"
        ) from None
    rendering = voice.render(text, sample_rate=USER_RATE)
    if not len(rendering.samples):
        raise SimulationError(f"eSpeak produced no audio for {text!r}")
    return Utterance("eSpeak", rendering.samples.astype(np.int16), said=text)


def wav_utterance(path: str) -> Utterance:
    from plugin_cartesia_ws.audio import resample_s16

    try:
        pcm, rate = read_wav(path)
    except FileNotFoundError:
        raise SimulationError(f"{path}: no such file") from None
    except (wave.Error, ValueError, EOFError, OSError) as e:
        raise SimulationError(f"{path}: not a readable WAV file ({e})") from None
    if rate != USER_RATE:
        pcm = resample_s16(pcm, rate, USER_RATE)
    if not len(pcm):
        raise SimulationError(f"{path}: the file holds no audio")
    return Utterance(path, pcm.astype(np.int16))


# ---------------------------------------------------------------------- components
@dataclass
class Components:
    """What plays each role, and the human-readable line for each."""

    stt: lk_stt.STT | None = None  # None: the worker's (OpenAI) STT
    llm: lk_llm.LLM | None = None  # None: the worker's (OpenAI-compatible) LLM
    use_emulator: bool = False
    labels: dict[str, str] = field(default_factory=dict)


def _openai_where(url: str | None) -> str:
    return url or "api.openai.com"


def choose_components(settings: Settings, *, stt: str, llm: str, tts: str) -> Components:
    """Pick each component from the settings ("auto") or as forced by the options."""
    c = Components()
    c.labels["VAD"] = "Silero (livekit-plugins-silero, default options)"
    stt_configured = bool(settings.openai_api_key or settings.openai_stt_base_url)
    llm_configured = bool(settings.openai_api_key or settings.openai_base_url)
    # A component forced on the command line is checked first: its error is the one to see.
    if stt == "openai" and not stt_configured and not settings.openai_base_url:
        raise SimulationError("--stt openai needs OPENAI_API_KEY (or OPENAI_STT_BASE_URL)")
    if llm == "openai" and not llm_configured:
        raise SimulationError("--llm openai needs OPENAI_API_KEY (or OPENAI_BASE_URL)")
    if tts == "cartesia" and not settings.cartesia_api_key:
        raise SimulationError("--tts cartesia needs CARTESIA_API_KEY")

    if stt == "openai" or (stt == "auto" and stt_configured):
        c.labels["STT"] = (
            f"OpenAI {settings.openai_stt_model} at {_openai_where(settings.stt_base_url)}"
        )
    else:
        from .local_stt import INSTALL_HINT, LocalSTTUnavailable, WhisperSTT

        try:
            c.stt = WhisperSTT(language=settings.cartesia_language)
        except LocalSTTUnavailable as e:
            if stt == "whisper":
                raise SimulationError(str(e)) from None
            raise SimulationError(
                "no speech-to-text: set OPENAI_API_KEY (or OPENAI_STT_BASE_URL), or install "
                f"the local Whisper: {INSTALL_HINT}"
            ) from None
        c.labels["STT"] = "local Whisper tiny.en (faster-whisper, CPU int8, offline)"

    if llm == "openai" or (llm == "auto" and llm_configured):
        c.labels["LLM"] = (
            f"{settings.openai_llm_model} at {_openai_where(settings.openai_base_url)}"
        )
    else:
        from .offline_llm import EchoLLM

        c.llm = EchoLLM()
        why = "" if llm == "echo" else " (no OPENAI_API_KEY or OPENAI_BASE_URL)"
        c.labels["LLM"] = f"OFFLINE ECHO, not a language model: repeats what it heard{why}"

    if tts == "cartesia" or (tts == "auto" and settings.cartesia_api_key):
        base = settings.cartesia_base_url.rstrip("/")
        where = (
            "Cartesia" if base == CARTESIA_DEFAULT_URL else f"Cartesia-compatible server at {base}"
        )
        c.labels["TTS"] = f"plugin_cartesia_ws -> {where}, model {settings.cartesia_model}"
    else:
        c.use_emulator = True
        why = "" if tts == "emulator" else " (no CARTESIA_API_KEY)"
        c.labels["TTS"] = f"plugin_cartesia_ws -> Cartesia emulator in this process{why}"
    return c


# ---------------------------------------------------------------------- the simulation
@dataclass
class UserSpeech:
    utterance: Utterance
    queued_at: float  # wall time the utterance's first sample goes into the session
    barge_in: bool = False

    @property
    def voiced(self) -> tuple[float, float]:
        a, b = self.utterance.voiced_range()
        return self.queued_at + a, self.queued_at + b


class Simulation:
    """A session built by `agent.worker.build_session`, wired to a paced microphone, a
    virtual speaker and a transcript collector (TranscriptSynchronizer in between, as
    LiveKit's RoomIO does), plus everything needed to time each turn afterwards."""

    def __init__(
        self,
        settings: Settings,
        *,
        vad: vad.VAD,
        stt: lk_stt.STT | None = None,
        llm: lk_llm.LLM | None = None,
    ) -> None:
        self.settings = settings
        # no AEC warm-up: synthesized audio cannot echo back into the microphone (LiveKit
        # turns it off for its own simulations too); no "user away" timer
        self.session: AgentSession = worker.build_session(
            settings, vad=vad, stt=stt, llm=llm, aec_warmup_duration=None, user_away_timeout=None
        )
        self.mic = SpeechInput(sample_rate=USER_RATE)
        self.speaker = VirtualSpeaker()
        self.transcript = TranscriptCollector()
        self._sync = TranscriptSynchronizer(
            next_in_chain_audio=self.speaker, next_in_chain_text=self.transcript
        )
        s = self.session
        s.input.audio = self.mic
        s.output.audio = self._sync.audio_output
        s.output.transcription = self._sync.text_output

        self.messages: list[lk_llm.ChatMessage] = []
        # (state, created_at, received_at): LiveKit back-dates a user state change to its
        # estimate of when speech started or stopped; received_at is when the VAD decided
        self.user_states: list[tuple[str, float, float]] = []
        self.finals: list[tuple[str, float]] = []
        self.llm_metrics: list[Any] = []
        self.stt_metrics: list[Any] = []
        self.tts_streams: list[Any] = []
        self.speech: list[UserSpeech] = []
        self.errors: list[str] = []
        self.fatal: str | None = None
        self.closed: CloseEvent | None = None
        self.segments_by_turn: dict[int, PlayedSegment] = {}
        self._changes = Pulse()
        # perf_counter / monotonic -> wall clock
        self._perf_offset = time.time() - time.perf_counter()
        self._mono_offset = time.time() - time.monotonic()

        s.on("conversation_item_added", self._on_item)
        s.on("user_state_changed", self._on_user_state)
        s.on("user_input_transcribed", self._on_transcribed)
        s.on("agent_state_changed", lambda _ev: self._pulse())
        s.on("error", self._on_error)
        s.on("close", self._on_close)
        if isinstance(s.llm, lk_llm.LLM):
            s.llm.on("metrics_collected", self.llm_metrics.append)
        if s.stt is not None:
            s.stt.on("metrics_collected", self.stt_metrics.append)
        self._watch_tts_streams()

    # ------------------------------------------------------------------ events
    def _pulse(self) -> None:
        self._changes.fire()

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, lk_llm.ChatMessage) and ev.item.role in ("user", "assistant"):
            self.messages.append(ev.item)
        self._pulse()

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        self.user_states.append((ev.new_state, ev.created_at, time.time()))
        self._pulse()

    def _on_transcribed(self, ev: UserInputTranscribedEvent) -> None:
        if ev.is_final:
            self.finals.append((ev.transcript, ev.created_at))
        self._pulse()

    def _on_error(self, ev: ErrorEvent) -> None:
        err = ev.error
        source = ev.source
        kind = next(
            (name for name, cls in _KINDS if isinstance(source, cls)), type(source).__name__
        )
        where = " ".join(
            str(v) for v in (getattr(source, "provider", ""), getattr(source, "model", "")) if v
        )
        message = f"{kind}{f' ({where})' if where else ''}: {worker.describe_error(err)}"
        self.errors.append(message)
        if not getattr(err, "recoverable", True) and self.fatal is None:
            # LiveKit gave up on this request after its retries: the turn cannot complete
            self.fatal = message
        self._pulse()

    def _on_close(self, ev: CloseEvent) -> None:
        self.closed = ev
        self._pulse()

    def _watch_tts_streams(self) -> None:
        """Keep every TTS stream of the session (each holds its turn's `TurnStats`)."""
        tts = self.session.tts
        if tts is None:
            return
        original = tts.stream

        def stream(*args: Any, **kwargs: Any) -> Any:
            s = original(*args, **kwargs)
            self.tts_streams.append(s)
            return s

        tts.stream = stream  # type: ignore[method-assign]

    # ------------------------------------------------------------------ control
    async def start(self) -> None:
        await self.session.start(worker.build_agent(self.settings))
        # a TTS that cannot speak at all (bad key, refused handshake) is known as soon as
        # the session's prewarm opens its socket: say so before the user speaks
        problem = await worker.tts_problem(self.session.tts)
        if problem is not None:
            raise SimulationError(f"TTS: {problem}")
        if self.settings.agent_greeting:  # what the worker's entrypoint does
            before = self.assistant_count()
            self.session.say(self.settings.agent_greeting)
            await self.wait_until(
                lambda: self.assistant_count() > before and not self.speaker.playing,
                timeout=60,
                what="the greeting",
            )

    async def aclose(self) -> None:
        self.mic.close()
        with contextlib.suppress(Exception):
            await self.session.aclose()
        with contextlib.suppress(Exception):
            await self._sync.aclose()
        for component in (self.session.tts, self.session.llm, self.session.stt):
            if component is not None and hasattr(component, "aclose"):
                with contextlib.suppress(Exception):
                    await component.aclose()

    def assistant_count(self) -> int:
        return sum(1 for m in self.messages if m.role == "assistant")

    def speak(self, utterance: Utterance, *, barge_in: bool = False) -> UserSpeech:
        """Queue speech on the microphone; it starts with the next 20 ms frame."""
        if self.mic.started_at is not None:
            queued_at = self.mic.started_at + self.mic.frames_sent * FRAME_MS / 1000
        else:
            queued_at = time.time()
        queued_at = max(queued_at, time.time())
        self.mic.play(utterance.pcm)
        speech = UserSpeech(utterance, queued_at, barge_in=barge_in)
        self.speech.append(speech)
        return speech

    async def wait_until(self, condition: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Wait for `condition` on every session or speaker change; a closed session or a
        timeout raises SimulationError naming `what` was awaited."""

        async def _loop() -> None:
            while True:
                if self.fatal is not None:
                    raise SimulationError(f"{self.fatal} (while waiting for {what})")
                if self.closed is not None:
                    raise SimulationError(
                        f"the session closed while waiting for {what}: {self._why_closed()}"
                    )
                if condition():
                    return
                changed = asyncio.ensure_future(self._changes.wait())
                playing = asyncio.ensure_future(self.speaker.playing_changed.wait())
                try:
                    await asyncio.wait({changed, playing}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
                    playing.cancel()

        try:
            await asyncio.wait_for(_loop(), timeout)
        except TimeoutError:
            raise SimulationError(
                f"no {what} within {timeout:.0f} s ({self.describe_state()})"
            ) from None

    def _why_closed(self) -> str:
        assert self.closed is not None
        if self.closed.error is not None:
            return f"{self.closed.reason}: {getattr(self.closed.error, 'error', self.closed.error)}"
        if self.errors:
            return f"{self.closed.reason}: {self.errors[-1]}"
        return str(self.closed.reason)

    def describe_state(self) -> str:
        parts = [f"agent {self.session.agent_state}", f"user {self.session.user_state}"]
        if self.finals:
            parts.append(f'last transcript "{self.finals[-1][0]}"')
        elif self.stt_metrics:
            parts.append(f"the STT was called {len(self.stt_metrics)}x but returned no words")
        else:
            parts.append("no transcript yet")
        if self.errors:
            parts.append(f"last error: {self.errors[-1]}")
        return ", ".join(parts)

    async def turn(self, utterance: Utterance, *, timeout: float) -> None:
        """One exchange: the user speaks, the agent replies to the end."""
        before = self.assistant_count()
        self.speak(utterance)
        await self.wait_until(
            lambda: self.assistant_count() > before and not self.speaker.playing,
            timeout=timeout,
            what="reply",
        )

    async def turn_with_barge_in(
        self, utterance: Utterance, interruption: Utterance, *, after: float, timeout: float
    ) -> bool:
        """The user asks, lets the agent talk for `after` seconds, then talks over it.
        Returns whether the reply was still playing when the interruption started."""
        before = self.assistant_count()
        segments = len(self.speaker.segments)
        self.speak(utterance)
        await self.wait_until(
            lambda: len(self.speaker.segments) > segments,
            timeout=timeout,
            what="agent audio",
        )
        await asyncio.sleep(after)  # the simulated user listens for a moment first
        overlapped = self.speaker.playing
        self.speak(interruption, barge_in=True)
        await self.wait_until(
            lambda: self.assistant_count() >= before + 2 and not self.speaker.playing,
            timeout=timeout,
            what="reply after the barge-in",
        )
        return overlapped

    # ------------------------------------------------------------------ results
    def wall_from_perf(self, t: float | None) -> float | None:
        return None if t is None else t + self._perf_offset

    def wall_from_monotonic(self, t: float | None) -> float | None:
        return None if t is None else t + self._mono_offset

    def segment_for(self, message: lk_llm.ChatMessage) -> PlayedSegment | None:
        started = (message.metrics or {}).get("started_speaking_at")
        if started is None:
            return None
        best = min(self.speaker.segments, key=lambda s: abs(s.started_at - started), default=None)
        return best if best is not None and abs(best.started_at - started) < 0.05 else None

    def stream_for(self, segment: PlayedSegment) -> Any | None:
        """The TTS stream whose first audio came last before the segment started playing."""
        best, best_at = None, -1.0
        for s in self.tts_streams:
            stats = getattr(s, "stats", None)
            first = self.wall_from_perf(getattr(stats, "first_audio_at", None))
            if first is not None and first <= segment.started_at + 0.01 and first > best_at:
                best, best_at = s, first
        return best

    def turns(self) -> list[Turn]:
        """Pair user and assistant messages in time order and time each exchange."""

        def start_of(m: lk_llm.ChatMessage) -> float:
            return float((m.metrics or {}).get("started_speaking_at") or m.created_at)

        turns: list[Turn] = []
        self.segments_by_turn = {}
        current: Turn | None = None
        current_has_reply = False
        for m in sorted(self.messages, key=start_of):
            if m.role == "user" or current is None or current_has_reply:
                current = Turn(index=len(turns) + 1)
                turns.append(current)
                current_has_reply = False
            if m.role == "user":
                self._fill_user(current, m)
            else:
                self._fill_agent(current, m)
                current_has_reply = True
        return turns

    def _fill_user(self, t: Turn, m: lk_llm.ChatMessage) -> None:
        metrics: dict[str, Any] = dict(m.metrics or {})
        t.user_metrics = metrics
        t.heard = m.text_content or ""
        started = float(metrics.get("started_speaking_at", m.created_at))
        stopped = float(metrics.get("stopped_speaking_at", m.created_at))
        speech = min(self.speech, key=lambda s: abs(s.voiced[0] - started), default=None)
        if speech is not None:
            t.source = speech.utterance.source
            t.said = speech.utterance.said
            t.barge_in = speech.barge_in
            t.speech_start, t.speech_end = speech.voiced
        t.vad_end_at = next(
            (
                decided
                for state, at, decided in self.user_states
                if state == "listening" and at >= stopped - 0.05
            ),
            None,
        )
        after = t.vad_end_at if t.vad_end_at is not None else stopped
        t.stt_final_at = next((at for _text, at in self.finals if at >= after - 0.01), None)
        for lm in self.llm_metrics:
            begin = lm.timestamp - lm.duration
            if begin >= stopped:
                t.llm_start_at, t.llm_end_at = begin, lm.timestamp
                if lm.ttft is not None and lm.ttft >= 0:
                    t.llm_first_token_at = begin + lm.ttft
                break

    def _fill_agent(self, t: Turn, m: lk_llm.ChatMessage) -> None:
        t.agent_metrics = dict(m.metrics or {})
        t.reply = m.text_content or ""
        t.interrupted = bool(m.interrupted)
        segment = self.segment_for(m)
        if segment is None:
            return
        self.segments_by_turn[t.index] = segment
        t.playback_start = segment.started_at
        t.played_s = segment.played_s
        t.received_s = segment.received_s
        stream = self.stream_for(segment)
        stats = getattr(stream, "stats", None)
        if stats is not None:
            t.context_id = stats.context_id
            t.tts_first_text_at = self.wall_from_perf(stats.first_text_sent_at)
            t.tts_first_audio_at = self.wall_from_perf(stats.first_audio_at)
            t.tts_time_to_first_audio = stats.time_to_first_audio

    def heard_audio(self, gap: float = 0.4) -> tuple[np.ndarray, int]:
        """The agent's audio as the listener heard it, replies in order with `gap` s
        of silence between them."""
        pieces: list[np.ndarray] = []
        rate = self.session.tts.sample_rate if self.session.tts is not None else 24000
        for seg in self.speaker.segments:
            if seg.frames:
                rate = seg.frames[0].sample_rate
            if pieces:
                pieces.append(np.zeros(int(gap * rate), np.int16))
            pieces.append(seg.heard_pcm())
        return (np.concatenate(pieces) if pieces else np.zeros(0, np.int16)), rate

    def conversation_audio(self) -> tuple[np.ndarray, int]:
        """User and agent on one timeline, as a recording of the call would sound."""
        from plugin_cartesia_ws.audio import resample_s16

        _, rate = self.heard_audio()
        placed: list[tuple[float, np.ndarray]] = [
            (s.queued_at, resample_s16(s.utterance.pcm, USER_RATE, rate)) for s in self.speech
        ]
        placed += [(seg.started_at, seg.heard_pcm()) for seg in self.speaker.segments]
        if not placed:
            return np.zeros(0, np.int16), rate
        t0 = min(at for at, _ in placed)
        end = max(int(round((at - t0) * rate)) + len(pcm) for at, pcm in placed)
        mix = np.zeros(end, np.int32)
        for at, pcm in placed:
            i = int(round((at - t0) * rate))
            mix[i : i + len(pcm)] += pcm
        return np.clip(mix, -32768, 32767).astype(np.int16), rate


def segment_sha256(segment: PlayedSegment) -> str:
    """SHA-256 of every byte the speaker received for one reply (played or not)."""
    h = hashlib.sha256()
    for frame in segment.frames:
        h.update(bytes(frame.data))
    return h.hexdigest()


# ---------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Run voice turns offline through the worker's AgentSession: user speech in, "
        "the agent's reply out as a WAV, with a latency table and a timeline plot. Components "
        "come from the settings (.env / environment); what is not configured runs locally: "
        "Whisper tiny.en STT, an echo LLM, the Cartesia emulator.",
    )
    p.add_argument(
        "--say",
        dest="utterances",
        action="append",
        type=lambda text: ("say", text),
        metavar="TEXT",
        help=f'a user turn spoken by eSpeak (repeatable; default: "{DEFAULT_QUESTION}")',
    )
    p.add_argument(
        "--input",
        dest="utterances",
        action="append",
        type=lambda path: ("wav", path),
        metavar="FILE.wav",
        help="a user turn from a 16-bit PCM WAV file (repeatable, in order with --say)",
    )
    p.add_argument(
        "--barge-in",
        nargs="?",
        const=DEFAULT_BARGE_IN,
        default=None,
        metavar="TEXT",
        help="after the last turn's reply starts, talk over it with TEXT (eSpeak; default: "
        f'"{DEFAULT_BARGE_IN}")',
    )
    p.add_argument(
        "--barge-in-after",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how long the agent speaks before the barge-in starts (1.0)",
    )
    p.add_argument("--out-dir", default="out", help="where the outputs go (out/)")
    p.add_argument(
        "--stt",
        choices=("auto", "openai", "whisper"),
        default="auto",
        help="auto: OpenAI when OPENAI_API_KEY or OPENAI_STT_BASE_URL is set, else local Whisper",
    )
    p.add_argument(
        "--llm",
        choices=("auto", "openai", "echo"),
        default="auto",
        help="auto: OpenAI-compatible when OPENAI_API_KEY or OPENAI_BASE_URL is set, else echo",
    )
    p.add_argument(
        "--tts",
        choices=("auto", "cartesia", "emulator"),
        default="auto",
        help="auto: Cartesia at CARTESIA_BASE_URL when CARTESIA_API_KEY is set, else the "
        "emulator in this process",
    )
    p.add_argument(
        "--emulator-voice",
        choices=("auto", "espeak", "tone"),
        default="auto",
        help="the in-process emulator's voice (auto: eSpeak when installed)",
    )
    p.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each reply (60)"
    )
    p.add_argument(
        "--room",
        action="store_true",
        help="run the turns through a real local LiveKit server and the worker in its own "
        "process; the latency is what a participant hears over WebRTC (needs livekit-server "
        "or Go to build it: make livekit-server)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show the log on the console too")
    return p


@dataclass
class Result:
    turns: list[Turn]
    files: dict[str, Path]
    components: dict[str, str]
    barge_in: dict[str, Any] | None = None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    out_dir = Path(args.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: cannot create {out_dir}: {e.strerror}", file=sys.stderr)
        return EXIT_USAGE
    if args.room:
        return _run_in_room(args, out_dir)
    restore = _setup_logging(out_dir / "simulate.log", verbose=args.verbose)
    try:
        settings = Settings.from_env()
        utterances = _utterances(args)
        components = choose_components(settings, stt=args.stt, llm=args.llm, tts=args.tts)
        barge_in = espeak_utterance(args.barge_in) if args.barge_in is not None else None
        if args.barge_in_after < 0:
            raise SimulationError("--barge-in-after must not be negative")
    except (SettingsError, SimulationError) as e:
        restore()
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        asyncio.run(_run(args, settings, components, utterances, barge_in, out_dir))
    except SimulationError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one line for users; the traceback goes to the log
        log.exception("simulation failed")
        print(f"error: the simulation failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        restore()
    return 0


def _run_in_room(args: argparse.Namespace, out_dir: Path) -> int:
    from . import simulate_room

    try:
        utterances = [(u.said or u.source, u.pcm) for u in _utterances(args)]
        return simulate_room.main(args, utterances, out_dir)
    except (SimulationError, simulate_room.RoomSimulationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED


def _utterances(args: argparse.Namespace) -> list[Utterance]:
    specs = args.utterances or [("say", DEFAULT_QUESTION)]
    return [espeak_utterance(v) if kind == "say" else wav_utterance(v) for kind, v in specs]


def _setup_logging(path: Path, *, verbose: bool) -> Callable[[], None]:
    """Everything at INFO into the log file, and on the console too with -v (without it,
    the console shows only the simulation's own lines)."""
    root = logging.getLogger()
    old_level = root.level
    file_handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    file_handler.setLevel(logging.INFO)
    file_handler.setFormatter(
        logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    handlers: list[logging.Handler] = [file_handler]
    if verbose:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("  [%(levelname)s %(name)s] %(message)s"))
        handlers.append(console)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(logging.INFO)

    def restore() -> None:
        for h in handlers:
            root.removeHandler(h)
            h.close()
        root.setLevel(old_level)

    return restore


async def _run(
    args: argparse.Namespace,
    settings: Settings,
    components: Components,
    utterances: list[Utterance],
    barge_in: Utterance | None,
    out_dir: Path,
) -> Result:
    async with contextlib.AsyncExitStack() as stack:
        emulator = None
        if components.use_emulator:
            from plugin_cartesia_ws.emulator import CartesiaEmulator

            emulator = await stack.enter_async_context(CartesiaEmulator(voice=args.emulator_voice))
            settings = dataclasses.replace(
                settings, cartesia_api_key=emulator.api_key, cartesia_base_url=emulator.url
            )
            voice = emulator.state.voice.name if emulator.state else args.emulator_voice
            components.labels["TTS"] += f", {voice} voice, {emulator.url}"

        n = len(utterances)
        print(f"{PROG}: {n} turn{'s' if n != 1 else ''}" + (" + barge-in" if barge_in else ""))
        for role in ("VAD", "STT", "LLM", "TTS"):
            print(f"  {role}  {components.labels[role]}")
        if components.llm is not None:
            log.warning(
                "offline echo LLM: no language model is configured; replies repeat the user"
            )

        loaded = time.perf_counter()
        sim = Simulation(settings, vad=worker.load_vad(), stt=components.stt, llm=components.llm)
        stack.push_async_callback(sim.aclose)
        if hasattr(components.stt, "load"):
            await asyncio.to_thread(components.stt.load)  # type: ignore[union-attr]
        log.info("models loaded in %.2f s", time.perf_counter() - loaded)
        await sim.start()

        overlapped = None
        for i, utt in enumerate(utterances, start=1):
            print(f"turn {i}: the user says {utt.describe()}")
            if barge_in is not None and i == n:
                overlapped = await sim.turn_with_barge_in(
                    utt, barge_in, after=args.barge_in_after, timeout=args.timeout
                )
            else:
                await sim.turn(utt, timeout=args.timeout)
        if barge_in is not None:
            print(
                f"turn {n + 1}: {args.barge_in_after:.1f} s into the reply, the user says "
                f"{barge_in.describe()}"
            )

        turns = sim.turns()
        print()
        _print_turns(turns)
        print()
        print(latency_table(turns))
        print(LEGEND)

        barge_report = None
        if barge_in is not None:
            print()
            barge_report = _report_barge_in(sim, turns, emulator, overlapped)

        files = _write_outputs(sim, turns, components, out_dir, emulator, barge_report)
        print()
        for name, path in files.items():
            print(f"wrote {path}" + (f"  ({name})" if name else ""))
        return Result(turns, files, dict(components.labels), barge_report)


def _print_turns(turns: list[Turn]) -> None:
    for t in turns:
        if t.source:
            tag = " (barge-in)" if t.barge_in else ""
            print(f"turn {t.index}{tag}")
            if t.said is not None:
                print(f'  user said:   "{t.said}"')
            else:
                print(f"  user audio:  {t.source}")
            print(f'  STT heard:   "{t.heard}"')
        else:
            print(f"turn {t.index} (agent)")
        state = (
            f"interrupted after {t.played_s:.1f} of {t.received_s:.1f} s"
            if t.interrupted
            else f"{t.played_s:.1f} s of audio"
        )
        print(f'  agent:       "{t.reply}"  [{state}]')


def _report_barge_in(
    sim: Simulation, turns: list[Turn], emulator: Any, overlapped: bool | None
) -> dict[str, Any]:
    """What the barge-in did: where the reply stopped, what the server saw, and that no
    audio of the cancelled context played afterwards."""
    cut = next((t for t in turns if t.interrupted), None)
    report: dict[str, Any] = {"overlapped": bool(overlapped), "interrupted": cut is not None}
    if cut is None:
        print(
            "barge-in: the reply was not interrupted"
            + ("" if overlapped else " (it had ended before the user spoke)")
        )
        return report
    nxt = next((t for t in turns if t.index > cut.index and t.barge_in), None)
    report.update(
        heard=cut.reply,
        played_s=cut.played_s,
        received_s=cut.received_s,
        context_id=cut.context_id,
        next_heard=nxt.heard if nxt else None,
        next_reply=nxt.reply if nxt else None,
    )
    reaction = ""
    if nxt is not None and nxt.speech_start is not None and cut.playback_end is not None:
        reaction = f", {1000 * (cut.playback_end - nxt.speech_start):.0f} ms after the user started talking"
    print(
        f"barge-in: the reply stopped after {cut.played_s:.2f} s{reaction} "
        f"({cut.received_s:.2f} s of it had arrived)"
    )
    print(f'  heard:      "{cut.reply}"')
    if emulator is not None and cut.context_id in emulator.records:
        rec = emulator.records[cut.context_id]
        # every later reply is byte for byte its own context's audio: nothing of the
        # cancelled context reached the speaker after the cut
        later = [
            (t, sim.segments_by_turn[t.index])
            for t in turns
            if t.index > cut.index and t.index in sim.segments_by_turn
        ]
        clean = all(
            t.context_id != cut.context_id
            and t.context_id in emulator.records
            and segment_sha256(seg) == emulator.records[t.context_id].audio_sha256
            for t, seg in later
        )
        report.update(
            server_cancelled=rec.cancelled,
            server_done_sent=rec.done_sent,
            chunks_sent=rec.chunks_sent,
            chunks_after_cancel=rec.chunks_after_cancel,
            later_audio_is_other_contexts=clean,
            sockets_opened=emulator.sockets_opened,
        )
        if rec.cancelled:
            cancel_at = sim.wall_from_monotonic(rec.cancel_received_at)
            when = ""
            if cancel_at is not None and cut.playback_end is not None:
                when = f" {1000 * (cancel_at - cut.playback_end):.0f} ms after playback stopped"
            print(
                f"  emulator:   received the cancel for context {cut.context_id}{when}, and "
                + ("had already sent `done`" if rec.done_sent else "sent no `done` for it")
            )
        else:
            print(f"  emulator:   NO cancel received for context {cut.context_id}")
        print(
            "  afterwards: "
            + (
                "no audio of that context played (every later reply is byte-identical to its "
                "own context's audio)"
                if clean
                else "AUDIO MISMATCH: a later reply is not exactly its own context's audio"
            )
            + f"; WebSockets opened in all: {emulator.sockets_opened}"
        )
    if nxt is not None:
        print(f'  next turn:  "{nxt.heard}" -> "{nxt.reply}"')
    return report


def _write_outputs(
    sim: Simulation,
    turns: list[Turn],
    components: Components,
    out_dir: Path,
    emulator: Any,
    barge_report: dict[str, Any] | None,
) -> dict[str, Path]:
    files: dict[str, Path] = {}
    pcm, rate = sim.heard_audio()
    write_wav(str(out_dir / "reply.wav"), pcm, rate)
    files[f"agent audio as heard, {len(pcm) / rate:.1f} s"] = out_dir / "reply.wav"
    mix, mix_rate = sim.conversation_audio()
    write_wav(str(out_dir / "conversation.wav"), mix, mix_rate)
    files["user and agent on one timeline"] = out_dir / "conversation.wav"
    try:
        plot_timeline(turns, out_dir / "timeline.png")
        files["timeline"] = out_dir / "timeline.png"
    except ImportError:
        print("timeline.png skipped: matplotlib is not installed (pip install matplotlib)")
    data = {
        "components": components.labels,
        "turns": [t.to_dict() for t in turns],
        "history": sim.session.history.to_dict(exclude_timestamp=False),
        "barge_in": barge_report,
        "usage": str(sim.session.usage),
        "events": {
            "user_states": sim.user_states,
            "final_transcripts": sim.finals,
            "errors": sim.errors,
        },
    }
    if emulator is not None:
        data["emulator"] = {
            "sockets_opened": emulator.sockets_opened,
            "contexts": {
                cid: {k: v for k, v in rec.summary().items() if k != "received"}
                for cid, rec in emulator.records.items()
            },
        }
    (out_dir / "conversation.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    files["history, metrics, timings"] = out_dir / "conversation.json"
    files["log"] = out_dir / "simulate.log"
    return files


if __name__ == "__main__":
    sys.exit(main())
