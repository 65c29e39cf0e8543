"""Scripted STT and LLM, one TTS turn fed as an LLM would, and probes on a session and on
its TTS streams: what tests and benchmarks need to drive the TTS with everything else held
fixed.

Used by the plugin's tests, the benchmarks, the soak and the simulation; handy for a user's
own agent tests too (the real OpenAI clients against a local server: ``agent.dev.local_openai``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit.agents import AgentSession, APIConnectOptions, LanguageCode, llm, stt, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

from plugin_cartesia_ws.pulse import Pulse

from .audio_io import AudioHash

# A reply as the LLM streams it: (seconds after the first token, token) pairs.
TokenPlan = list[tuple[float, str]]

# GPT-style pre-tokenization (the shape of tiktoken's cl100k pattern): words carry their
# leading space, numbers come alone in groups of up to 3 digits, punctuation runs (with "_")
# stand alone.
_TOKEN_RE = re.compile(r"'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+|\d{1,3}| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")


def llm_tokens(text: str) -> list[str]:
    """Split `text` the way GPT models stream it: "Hello, world!" -> ["Hello", ",", " world", "!"].
    Lossless: the tokens join back to `text`."""
    return _TOKEN_RE.findall(text)


def word_tokens(text: str, interval: float) -> TokenPlan:
    """`llm_tokens(text)`, ``interval`` seconds apart."""
    return [(i * interval, token) for i, token in enumerate(llm_tokens(text))]


class ScriptedSTT(stt.STT):
    """Streaming STT: the next scripted transcript when LiveKit flushes it after VAD end of
    speech, if it heard speech (not silence) since the last flush."""

    def __init__(self, transcripts: list[str]) -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(
                streaming=True, interim_results=False, manual_flush=True
            )
        )
        self.transcripts = list(transcripts)

    @property
    def model(self) -> str:
        return "scripted-stt"

    @property
    def provider(self) -> str:
        return "scripted"

    async def _recognize_impl(self, *args: Any, **kwargs: Any) -> stt.SpeechEvent:
        raise NotImplementedError("ScriptedSTT only streams")

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        return _ScriptedRecognizeStream(stt=self, conn_options=conn_options)


class _ScriptedRecognizeStream(stt.RecognizeStream):
    async def _run(self) -> None:
        owner: ScriptedSTT = self._stt  # type: ignore[assignment]
        voiced = 0.0
        async for data in self._input_ch:
            if isinstance(data, self._FlushSentinel):
                if voiced > 0.2 and owner.transcripts:
                    alt = stt.SpeechData(text=owner.transcripts.pop(0), language=LanguageCode("en"))
                    self._event_ch.send_nowait(
                        stt.SpeechEvent(
                            type=stt.SpeechEventType.FINAL_TRANSCRIPT, alternatives=[alt]
                        )
                    )
                voiced = 0.0
                continue
            pcm = np.frombuffer(data.data, dtype=np.int16)
            if pcm.size and np.abs(pcm).mean() > 300:
                voiced += data.duration


class ScriptedLLM(llm.LLM):
    """Streams scripted replies with an LLM's timing: ``ttft`` to the first token, then the
    reply's token plan, then the usage. Replies are strings (`llm_tokens`, ``token_interval``
    apart) or a callable that returns the next TokenPlan; a subclass may answer from the
    conversation instead (`_next_plan`)."""

    def __init__(
        self,
        replies: list[str] | Callable[[], TokenPlan],
        *,
        ttft: float = 0.2,
        token_interval: float = 0.015,
        model: str = "scripted-llm",
        provider: str = "scripted",
    ) -> None:
        super().__init__()
        self._replies = replies if callable(replies) else list(replies)
        self.ttft = ttft
        self.token_interval = token_interval
        self._model, self._provider = model, provider

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return self._provider

    def _next_plan(self, chat_ctx: llm.ChatContext) -> TokenPlan:
        if callable(self._replies):
            return self._replies()
        reply = self._replies.pop(0) if self._replies else "I have nothing more to say."
        return word_tokens(reply, self.token_interval)

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: Any = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        **kwargs: Any,
    ) -> llm.LLMStream:
        return _ScriptedLLMStream(
            self,
            self._next_plan(chat_ctx),
            chat_ctx=chat_ctx,
            tools=tools or [],
            conn_options=conn_options,
        )


class _ScriptedLLMStream(llm.LLMStream):
    def __init__(self, owner: ScriptedLLM, plan: TokenPlan, **kwargs: Any) -> None:
        super().__init__(owner, **kwargs)
        self._plan = plan

    async def _run(self) -> None:
        owner: ScriptedLLM = self._llm  # type: ignore[assignment]
        request_id = f"{owner.model}-{id(self):x}"
        start = time.perf_counter() + owner.ttft
        for offset, token in self._plan:
            delay = start + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the scripted model's timing
            delta = llm.ChoiceDelta(role="assistant", content=token)
            self._event_ch.send_nowait(llm.ChatChunk(id=request_id, delta=delta))
        prompt_tokens = sum(
            len(llm_tokens(m.text_content or ""))
            for m in self._chat_ctx.items
            if isinstance(m, llm.ChatMessage)
        )
        usage = llm.CompletionUsage(
            completion_tokens=len(self._plan),
            prompt_tokens=prompt_tokens,
            total_tokens=prompt_tokens + len(self._plan),
        )
        self._event_ch.send_nowait(llm.ChatChunk(id=request_id, usage=usage))


class SessionProbe:
    """Collects a session's conversation and lets a driver wait for a condition on it,
    re-checked whenever an item is added or the agent's state changes."""

    def __init__(self, session: AgentSession, changes: Pulse | None = None) -> None:
        """``changes``: a pulse to share, e.g. a VirtualSpeaker's ``playing_changed``."""
        self.items: list[llm.ChatMessage] = []
        self._changes = changes or Pulse()
        session.on("conversation_item_added", self._on_item)
        session.on("agent_state_changed", lambda _ev: self.pulse())

    def _on_item(self, ev: Any) -> None:
        if ev.item.type == "message":
            self.items.append(ev.item)
        self.pulse()

    def pulse(self) -> None:
        """Wake the waiters (also for other sources, e.g. a speaker that stopped)."""
        self._changes.fire()

    def assistant(self) -> list[llm.ChatMessage]:
        return [m for m in self.items if m.role == "assistant"]

    async def wait(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        await self._changes.wait_until(condition, timeout)


_WATCHED: dict[type, type] = {}


def _watched_class(cls: type) -> type:
    """A subclass of a stream class that shows each event to its watcher (no other change)."""
    if cls not in _WATCHED:

        async def __anext__(self: Any) -> tts.SynthesizedAudio:
            ev = await cls.__anext__(self)  # type: ignore[attr-defined]
            self._on_audio(ev)
            return ev

        watched = type(f"Watched{cls.__name__}", (cls,), {"__anext__": __anext__})
        _WATCHED[cls] = watched
    return _WATCHED[cls]


def watch_tts_streams(
    engine: tts.TTS, on_audio: Callable[[int, tts.SynthesizedAudio], None]
) -> list[tts.SynthesizeStream]:
    """Every stream `engine.stream()` opens from now on, in order; `on_audio(i, ev)` sees
    each event stream `i` yields, before the session does (the frame is the one it plays)."""
    streams: list[tts.SynthesizeStream] = []
    original = engine.stream

    def stream(*args: Any, **kwargs: Any) -> tts.SynthesizeStream:
        s = original(*args, **kwargs)
        index = len(streams)
        s.__class__ = _watched_class(type(s))
        s._on_audio = lambda ev: on_audio(index, ev)  # type: ignore[attr-defined]
        streams.append(s)
        return s

    engine.stream = stream  # type: ignore[method-assign]
    return streams


@dataclass
class StreamedTurn:
    """What one TTS stream yielded for a reply fed to it as an LLM would."""

    stream: Any
    keep_audio: bool = True
    audio: bytearray = field(default_factory=bytearray)  # empty unless kept
    digest: AudioHash = field(default_factory=AudioHash)
    frames: int = 0
    transcript: list[Any] = field(default_factory=list)  # the frames' TimedStrings
    segment_id: str = ""  # of the first audio (ours: the Cartesia context id)
    first_push_at: float | None = None  # perf_counter
    first_audio_at: float | None = None
    last_push_at: float | None = None

    def add(self, ev: tts.SynthesizedAudio) -> None:
        """Take one event the stream yielded."""
        if self.first_audio_at is None:
            self.first_audio_at = time.perf_counter()
            self.segment_id = ev.segment_id
        self.digest.add(ev.frame)
        if self.keep_audio:
            self.audio += ev.frame.data.tobytes()
        self.frames += 1
        self.transcript += ev.frame.userdata.get("lk.timed_transcripts", [])

    @property
    def sha256(self) -> str:
        return self.digest.hexdigest()

    @property
    def context_id(self) -> str:
        stats = getattr(self.stream, "stats", None)
        return stats.context_id if stats is not None else self.segment_id

    @property
    def ttfa_s(self) -> float | None:
        """First push_text -> first audio frame out of the stream."""
        if self.first_audio_at is None or self.first_push_at is None:
            return None
        return self.first_audio_at - self.first_push_at


async def stream_turn(
    engine: tts.TTS,
    plan: TokenPlan,
    *,
    conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    start_at: float | None = None,
    until: Callable[[StreamedTurn], bool] | None = None,
    on_first_audio: Callable[[], None] | None = None,
    keep_audio: bool = True,
) -> StreamedTurn:
    """Push `plan`'s tokens into a new stream at their times after `start_at` (a
    perf_counter instant, default now; several engines can share one), end the input and
    read every frame, or stop once `until(turn)` holds (a barge-in: the stream is closed,
    as AgentSession does). Errors of the stream propagate; it is closed either way."""
    stream = engine.stream(conn_options=conn_options)
    turn = StreamedTurn(stream, keep_audio=keep_audio)
    start = time.perf_counter() if start_at is None else start_at

    async def feed() -> None:
        for offset, token in plan:
            delay = start + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the LLM's pacing is part of the scenario
            if turn.first_push_at is None:
                turn.first_push_at = time.perf_counter()
            stream.push_text(token)
        turn.last_push_at = time.perf_counter()
        stream.end_input()

    feeder = asyncio.create_task(feed())
    try:
        async for ev in stream:
            first = turn.first_audio_at is None
            turn.add(ev)
            if first and on_first_audio is not None:
                on_first_audio()
            if until is not None and until(turn):
                break
    finally:
        feeder.cancel()  # a no-op when the whole plan was pushed
        await asyncio.gather(feeder, return_exceptions=True)
        await stream.aclose()
    return turn
