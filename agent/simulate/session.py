"""The session harness: the worker's AgentSession on a paced microphone and a virtual
speaker, driven turn by turn and timed afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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

from .. import worker
from ..dev.audio_io import FRAME_MS, PlayedSegment, SpeechInput, TranscriptCollector, VirtualSpeaker
from ..dev.scripted import watch_tts_streams
from ..settings import Settings
from .speech import USER_RATE, SimulationError, Utterance
from .timeline import Turn

# Set on every frame a TTS stream yields: the index of that stream in `Simulation.tts_streams`.
# LiveKit hands the frame object itself to the speaker, so a played segment names its stream.
TTS_STREAM_TAG = "agent.simulate.tts_stream"

_KINDS = (("STT", lk_stt.STT), ("LLM", lk_llm.LLM), ("TTS", lk_tts.TTS))


@dataclass
class UserSpeech:
    utterance: Utterance
    queued_at: float  # wall time the utterance's first sample goes into the session
    barge_in: bool = False

    @property
    def voiced(self) -> tuple[float, float]:
        a, b = self.utterance.voiced_range()
        return self.queued_at + a, self.queued_at + b


def _tag_frame(stream_index: int, ev: lk_tts.SynthesizedAudio) -> None:
    ev.frame.userdata[TTS_STREAM_TAG] = stream_index


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
        self.speech: list[UserSpeech] = []
        self.errors: list[str] = []
        self.fatal: str | None = None
        self.closed: CloseEvent | None = None
        self.segments_by_turn: dict[int, PlayedSegment] = {}
        # one pulse for session events and the speaker starting or stopping a reply
        self._changes = self.speaker.playing_changed
        # perf_counter / monotonic -> wall clock
        self._perf_offset = time.time() - time.perf_counter()
        self._mono_offset = time.time() - time.monotonic()

        s.on("conversation_item_added", self._on_item)
        s.on("user_state_changed", self._on_user_state)
        s.on("user_input_transcribed", self._on_transcribed)
        s.on("agent_state_changed", lambda _ev: self._changes.fire())
        s.on("error", self._on_error)
        s.on("close", self._on_close)
        if isinstance(s.llm, lk_llm.LLM):
            s.llm.on("metrics_collected", self.llm_metrics.append)
        if s.stt is not None:
            s.stt.on("metrics_collected", self.stt_metrics.append)
        # every TTS stream (each holds its turn's `TurnStats`); its frames name it
        self.tts_streams: list[Any] = []
        if s.tts is not None:
            self.tts_streams = watch_tts_streams(s.tts, _tag_frame)

    # ------------------------------------------------------------------ events
    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, lk_llm.ChatMessage) and ev.item.role in ("user", "assistant"):
            self.messages.append(ev.item)
        self._changes.fire()

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        self.user_states.append((ev.new_state, ev.created_at, time.time()))
        self._changes.fire()

    def _on_transcribed(self, ev: UserInputTranscribedEvent) -> None:
        if ev.is_final:
            self.finals.append((ev.transcript, ev.created_at))
        self._changes.fire()

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
        self._changes.fire()

    def _on_close(self, ev: CloseEvent) -> None:
        self.closed = ev
        self._changes.fire()

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

        def done() -> bool:
            if self.fatal is not None:
                raise SimulationError(f"{self.fatal} (while waiting for {what})")
            if self.closed is not None:
                raise SimulationError(
                    f"the session closed while waiting for {what}: {self._why_closed()}"
                )
            return condition()

        try:
            await self._changes.wait_until(done, timeout)
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
        """The played segment of an assistant message: LiveKit copies the speaker's own
        playback-started stamp into the message's `started_speaking_at`, unchanged."""
        started = (message.metrics or {}).get("started_speaking_at")
        return next((s for s in self.speaker.segments if s.started_at == started), None)

    def stream_for(self, segment: PlayedSegment) -> Any | None:
        """The TTS stream whose frames the segment played (from the frames' tag)."""
        tag = segment.frames[0].userdata.get(TTS_STREAM_TAG) if segment.frames else None
        return self.tts_streams[tag] if tag is not None else None

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
        # the VAD's estimate of when speech started: the nearest utterance we played
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
