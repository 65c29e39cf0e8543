"""A stand-in LLM for running the voice pipeline with no model at all: it repeats what the
user said, labelled "(offline echo)", with a couple of fixed sentences after it so the
reply is long enough to show streaming TTS and barge-in.

It streams like a hosted model: the first token after ``ttft`` seconds, then one
GPT-sized token every ``token_interval`` seconds, and reports usage. It is not a language
model and says so: in every reply, in the log (WARNING, once), and in ``model``.
"""

from __future__ import annotations

import logging

from livekit.agents import llm

from .scripted import ScriptedLLM, TokenPlan, word_tokens

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


class EchoLLM(ScriptedLLM):
    """Answers every turn with ``echo_reply(last user message)``, streamed token by token."""

    def __init__(self, *, ttft: float = 0.35, token_interval: float = 0.02) -> None:
        super().__init__(
            [],
            ttft=ttft,
            token_interval=token_interval,
            model="offline-echo",
            provider="agent.dev.offline_llm",
        )
        self._warned = False

    def _next_plan(self, chat_ctx: llm.ChatContext) -> TokenPlan:
        if not self._warned:
            self._warned = True
            log.warning(
                "offline echo LLM in use: replies repeat the user's words; set OPENAI_API_KEY "
                "or OPENAI_BASE_URL for a real model"
            )
        return word_tokens(echo_reply(_last_user_text(chat_ctx)), self.token_interval)


def _last_user_text(chat_ctx: llm.ChatContext) -> str:
    for item in reversed(chat_ctx.items):
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            return item.text_content or ""
    return ""
