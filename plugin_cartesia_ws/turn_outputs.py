"""What ``turn.TurnMachine`` asks its I/O loop to do, in order. Plain values, so tests can
compare them and replay a turn without a socket."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .alignment import TimedWord


@dataclass(frozen=True)
class Send:
    """A frame for ``context_id`` (routed on the current socket at its first frame)."""

    frame: str
    context_id: str


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
class Linger:
    """The listener has every sample, but the server has not said ``done``: keep the context
    routed in the background until it does (``connection.CartesiaSocket.linger``)."""

    context_id: str


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
class Failure:
    """Why a turn failed, in the machine's terms; ``stream`` maps it onto LiveKit's errors."""

    kind: Literal["connection", "timeout", "server", "input"]
    message: str
    event: Any = None  # kind "server": the error event, mapped by protocol.error_from_event


@dataclass(frozen=True)
class Failed:
    failure: Failure


Output = (
    Send
    | TextStarted
    | Audio
    | Words
    | Phonemes
    | Release
    | Linger
    | Cancel
    | Reconnect
    | Warn
    | Log
    | Finished
    | Failed
)
