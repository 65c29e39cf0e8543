"""Scripted STT and LLM for headless AgentSession tests of the TTS (the real OpenAI clients
against a fake server are exercised in tests/agent)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from livekit.agents import APIConnectOptions, LanguageCode, llm, stt
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr


class ScriptedSTT(stt.STT):
    """Streaming STT that emits the next scripted transcript when LiveKit flushes it after
    VAD end of speech, if it heard speech (not silence) since the last flush."""

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
        return "tests"

    async def _recognize_impl(
        self, buffer: Any, *, language: Any = NOT_GIVEN, conn_options: Any = None
    ) -> stt.SpeechEvent:
        raise NotImplementedError

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
                    text = owner.transcripts.pop(0)
                    self._event_ch.send_nowait(
                        stt.SpeechEvent(
                            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
                            alternatives=[stt.SpeechData(text=text, language=LanguageCode("en"))],
                        )
                    )
                voiced = 0.0
                continue
            pcm = np.frombuffer(data.data, dtype=np.int16)
            if pcm.size and np.abs(pcm).mean() > 300:
                voiced += data.duration


class ScriptedLLM(llm.LLM):
    """Streams scripted replies token by token with an LLM-like first-token delay."""

    def __init__(
        self, replies: list[str], *, ttft: float = 0.2, token_interval: float = 0.015
    ) -> None:
        super().__init__()
        self.replies = list(replies)
        self.ttft = ttft
        self.token_interval = token_interval

    @property
    def model(self) -> str:
        return "scripted-llm"

    @property
    def provider(self) -> str:
        return "tests"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: Any = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        **kwargs: Any,
    ) -> llm.LLMStream:
        reply = self.replies.pop(0) if self.replies else "I have nothing more to say."
        return _ScriptedLLMStream(
            self, reply, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options
        )


class _ScriptedLLMStream(llm.LLMStream):
    def __init__(self, owner: ScriptedLLM, reply: str, **kwargs: Any) -> None:
        super().__init__(owner, **kwargs)
        self._reply = reply

    async def _run(self) -> None:
        owner: ScriptedLLM = self._llm  # type: ignore[assignment]
        await asyncio.sleep(owner.ttft)  # scripted model latency
        words = self._reply.split(" ")
        for i, word in enumerate(words):
            token = word if i == 0 else " " + word
            self._event_ch.send_nowait(
                llm.ChatChunk(id="scripted", delta=llm.ChoiceDelta(role="assistant", content=token))
            )
            await asyncio.sleep(owner.token_interval)  # scripted token pacing
