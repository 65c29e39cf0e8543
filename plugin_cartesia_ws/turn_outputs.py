"""What ``turn.TurnMachine`` asks its I/O loop to do, in order. Plain values, so tests can
compare them and replay a turn without a socket."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from livekit.agents import APIError

from .alignment import TimedWord


@dataclass(frozen=True)
class Send:
    """A frame for the current context, on the current socket."""

    frame: str


@dataclass(frozen=True)
class TextStarted:
    """The turn's first text is going out (LiveKit's TTFB starts here)."""


@dataclass(frozen=True)
class Audio:
    pcm: bytes  # 16-bit PCM
    step_time: float | None = None  # the server's step time, on the turn's first chunk


@dataclass(frozen=True)
class Words:
    words: tuple[TimedWord, ...]  # times from the start of the turn


@dataclass(frozen=True)
class Phonemes:
    items: tuple[tuple[str, float, float], ...]


@dataclass(frozen=True)
class Release:
    """The context is over at the server (done, error, or it never got a frame)."""

    context_id: str
    completed: bool = False  # a done arrived: proof the server works


@dataclass(frozen=True)
class Cancel:
    """Tell the server to stop the context, and drop its late frames."""

    context_id: str


@dataclass(frozen=True)
class Reconnect:
    """Resume now: route the machine's new context on a socket (a new one when
    ``replace_socket``: the old one is silent), then call ``connected()``."""

    replace_socket: bool


@dataclass(frozen=True)
class Warn:
    key: str  # said once per TTS instance
    message: str


@dataclass(frozen=True)
class Log:
    message: str  # a warning worth one line per occurrence
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Finished:
    nothing_said: bool = False  # no speakable text in the whole turn


@dataclass(frozen=True)
class Failed:
    error: APIError


Output = (
    Send
    | TextStarted
    | Audio
    | Words
    | Phonemes
    | Release
    | Cancel
    | Reconnect
    | Warn
    | Log
    | Finished
    | Failed
)
