"""The worker's log lines about a session: one per turn with its latencies, one per
component metric, one per error (the sentence, not LiveKit's repr); kept apart from the
session's assembly in ``worker``."""

from __future__ import annotations

import logging
from typing import Any

from livekit.agents import AgentSession, APIStatusError, llm, stt, tts
from livekit.agents.voice.events import CloseEvent, ConversationItemAddedEvent, ErrorEvent

from .quiet_logs import fold_tts_tracebacks

log = logging.getLogger("agent")


def describe_error(error: object) -> str:
    """One line for people, from an exception or LiveKit's wrapper of one (`TTSError`,
    `LLMError`, ...: `.error`). LiveKit's `str(APIStatusError)` is `message='...',
    status_code=401, retryable=False`: its message is the sentence."""
    inner = getattr(error, "error", None)
    if isinstance(inner, BaseException):
        error = inner
    if isinstance(error, APIStatusError):
        return error.message
    return str(error) or type(error).__name__


# ---------------------------------------------------------------------- logging
def _ms(value: Any) -> str:
    return f"{value * 1000:.0f} ms" if isinstance(value, int | float) else "n/a"


def attach_logging(session: AgentSession) -> None:
    """Per-turn latency from the ChatMessage metrics, and the components' own metrics; a
    failed reply is our one line (LiveKit's tracebacks of it are folded: quiet_logs)."""
    fold_tts_tracebacks()

    @session.on("conversation_item_added")
    def _on_item(ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage):
            return
        m: dict[str, Any] = dict(item.metrics or {})
        if item.role == "assistant":
            log.info(
                "agent turn: e2e %s, llm ttft %s, tts ttfb %s%s",
                _ms(m.get("e2e_latency")),
                _ms(m.get("llm_node_ttft")),
                _ms(m.get("tts_node_ttfb")),
                " (interrupted)" if item.interrupted else "",
                extra={
                    "e2e_latency": m.get("e2e_latency"),
                    "llm_node_ttft": m.get("llm_node_ttft"),
                    "tts_node_ttfb": m.get("tts_node_ttfb"),
                    "interrupted": item.interrupted,
                },
            )
        elif item.role == "user":
            log.info(
                "user turn: end of turn delay %s, transcription delay %s",
                _ms(m.get("end_of_turn_delay")),
                _ms(m.get("transcription_delay")),
                extra={
                    "end_of_turn_delay": m.get("end_of_turn_delay"),
                    "transcription_delay": m.get("transcription_delay"),
                },
            )
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s said: %s", item.role, item.text_content or "")

    components: list[stt.STT | llm.LLM | tts.TTS | None] = [session.stt, session.tts]
    if isinstance(session.llm, llm.LLM):
        components.append(session.llm)
    for component in components:
        if component is not None:
            component.on("metrics_collected", _log_component_metrics)

    @session.on("error")
    def _on_error(ev: ErrorEvent) -> None:
        log.warning(
            "session error from %s: %s%s",
            type(ev.source).__name__,
            describe_error(ev.error),
            "" if getattr(ev.error, "recoverable", True) else " (gave up on this reply)",
        )

    @session.on("close")
    def _on_close(ev: CloseEvent) -> None:
        log.info("session closed: %s", ev.reason, extra={"usage": str(session.usage)})


def _log_component_metrics(metrics: Any) -> None:
    kind = getattr(metrics, "type", "")
    if kind == "tts_metrics":
        log.info(
            "tts: ttfb %s, %.2f s audio for %d chars%s",
            _ms(metrics.ttfb),
            metrics.audio_duration,
            metrics.characters_count,
            ", connection reused" if metrics.connection_reused else "",
            extra={"metrics": metrics.model_dump()},
        )
    elif kind == "llm_metrics":
        log.info(
            "llm: ttft %s, %d tokens, %.0f tokens/s",
            _ms(metrics.ttft),
            metrics.completion_tokens,
            metrics.tokens_per_second,
            extra={"metrics": metrics.model_dump()},
        )
    elif kind == "stt_metrics":
        log.info(
            "stt: %s for %.2f s audio",
            _ms(metrics.duration),
            metrics.audio_duration,
            extra={"metrics": metrics.model_dump()},
        )
    else:
        log.debug("metrics: %s", metrics)
