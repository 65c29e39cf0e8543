"""What one turn did, for logs, tests and benchmarks, and the one INFO line that says it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .log import logger


@dataclass
class TurnStats:
    """What one turn did, for logs, tests and benchmarks."""

    context_id: str
    socket_reused: bool = False
    chunks_sent: int = 0
    first_text_sent_at: float | None = None  # time.perf_counter()
    first_audio_at: float | None = None
    first_step_time_ms: float | None = None
    audio_bytes: int = 0
    resumes: int = 0
    cancelled: bool = False
    done: bool = False

    @property
    def time_to_first_audio(self) -> float | None:
        if self.first_text_sent_at is None or self.first_audio_at is None:
            return None
        return self.first_audio_at - self.first_text_sent_at


def log_turn(stats: TurnStats) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return  # (the line is built for nothing otherwise: once per turn)
    extra: dict[str, Any] = {
        "context_id": stats.context_id,
        "socket_reused": stats.socket_reused,
        "chunks_sent": stats.chunks_sent,
        "resumes": stats.resumes,
        "cancelled": stats.cancelled,
        "done": stats.done,
    }
    if stats.time_to_first_audio is not None:
        extra["time_to_first_audio_ms"] = round(stats.time_to_first_audio * 1000, 1)
    if stats.first_step_time_ms is not None:
        extra["server_step_time_ms"] = round(stats.first_step_time_ms, 1)
    ttfa = extra.get("time_to_first_audio_ms")
    logger.info(  # the figures in the text too: plain logging does not print ``extra``
        "Cartesia turn finished: context %s, first audio %s, %d chunks, %d resumes%s",
        stats.context_id,
        f"{ttfa} ms" if ttfa is not None else "none",
        stats.chunks_sent,
        stats.resumes,
        ", cancelled" if stats.cancelled else "" if stats.done else ", no done",
        extra=extra,
    )
