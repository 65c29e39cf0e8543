"""A stand-in LLM for running the voice pipeline with no model at all: it repeats what the
user said, labelled "(offline echo)", with a couple of fixed sentences after it so the
reply is long enough to show streaming TTS and barge-in.

It streams like a hosted model: the first token after ``ttft`` seconds, then one
GPT-sized token every ``token_interval`` seconds, and reports usage. It is not a language
model and says so: in every reply, in the log (WARNING, once), and in ``model``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from livekit.agents import APIConnectOptions, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

from .scripted import llm_tokens

log = logging.getLogger("agent")

LABEL = "(offline echo)"
FOLLOW_UP = (
    "I am not a language model, just an offline stand-in. Set OPENAI_API_KEY for real answers."
)
NOTHING_HEARD = "I did not catch any words."


def echo_reply(user_text: str) -> str:
    said = " ".join(user_text.split())
    if not said:
        return f"{LABEL} {NOTHING_HEARD} {FOLLOW_UP}"
    if said[-1] not in ".!?":
        said += "."
    return f"{LABEL} You said: {said} {FOLLOW_UP}"


class EchoLLM(llm.LLM):
    """Answers every turn with ``echo_reply(last user message)``, streamed token by token."""

    def __init__(self, *, ttft: float = 0.35, token_interval: float = 0.02) -> None:
        super().__init__()
        self.ttft = ttft
        self.token_interval = token_interval
        self._warned = False

    @property
    def model(self) -> str:
        return "offline-echo"

    @property
    def provider(self) -> str:
        return "agent.offline_llm"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        **kwargs: Any,
    ) -> llm.LLMStream:
        if not self._warned:
            self._warned = True
            log.warning(
                "offline echo LLM in use: replies repeat the user's words; set OPENAI_API_KEY "
                "or OPENAI_BASE_URL for a real model"
            )
        return _EchoStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


def _last_user_text(chat_ctx: llm.ChatContext) -> str:
    for item in reversed(chat_ctx.items):
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            return item.text_content or ""
    return ""


class _EchoStream(llm.LLMStream):
    async def _run(self) -> None:
        owner: EchoLLM = self._llm  # type: ignore[assignment]
        user_text = _last_user_text(self._chat_ctx)
        pieces = llm_tokens(echo_reply(user_text))
        request_id = f"echo-{id(self):x}"
        await asyncio.sleep(owner.ttft)  # model latency, as a hosted LLM would have
        for i, piece in enumerate(pieces):
            if i:
                await asyncio.sleep(owner.token_interval)  # token pacing
            self._event_ch.send_nowait(
                llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(role="assistant", content=piece))
            )
        prompt_tokens = sum(
            len(llm_tokens(m.text_content or ""))
            for m in self._chat_ctx.items
            if isinstance(m, llm.ChatMessage)
        )
        self._event_ch.send_nowait(
            llm.ChatChunk(
                id=request_id,
                usage=llm.CompletionUsage(
                    completion_tokens=len(pieces),
                    prompt_tokens=prompt_tokens,
                    total_tokens=prompt_tokens + len(pieces),
                ),
            )
        )
