"""Pure lifecycle of one emulated context: the rules the spec leaves open, the named phases,
the events that move a context between them, and every transition in one table
(docs/cartesia-protocol.md, sections 2.6, 2.7 and 4).

``step(phase, event)`` answers the next phase and the action the ``ContextTable`` takes; an
event that cannot happen in a phase raises ``IllegalTransition`` naming both, as wsproto's
``LocalProtocolError`` does. Nothing here knows about sockets or clocks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum
from typing import Literal

ExpiryMode = Literal["off", "error", "ignore"]


@dataclass(frozen=True)
class ContextRules:
    """Behaviour the spec leaves open, made configurable (open questions 3, 4, 7)."""

    cancel_inflight: Literal["finish", "stop"] = "finish"  # docs: the in-flight input finishes
    done_after_cancel: bool = False
    auto_flush_done: bool = False  # observed with max_buffer_delay_ms=0 (livekit/agents#5321)
    flush_done: bool = True  # False: never a flush_done (as API versions before 2024-11-13)
    # the done comes this long after the context's last audio: uniform in [low, high] seconds
    done_delay_s: tuple[float, float] = (0.0, 0.0)
    expiry_s: float = 1.0  # contexts expire this long after their last audio (docs)
    # what an open context does with input that comes expiry_s or more after its last audio
    # (documented as "not supported"): "off" takes it, "error" answers an error event,
    # "ignore" drops it silently (no audio, no done)
    expiry: ExpiryMode = "off"
    late_input: Literal["error", "ignore"] = "error"  # input after continue:false or done
    strict_fields: bool = False  # 400 when a locked field changes within a context

    def __post_init__(self) -> None:
        low, high = self.done_delay_s
        if not 0 <= low <= high:
            raise ValueError(f"done_delay_s needs 0 <= low <= high, got {self.done_delay_s}")
        if self.expiry not in ("off", "error", "ignore"):
            raise ValueError(f"expiry is 'off', 'error' or 'ignore', not {self.expiry!r}")

    def done_delay(self, rng: random.Random) -> float:
        """How long after its last audio this context's done leaves."""
        low, high = self.done_delay_s
        return low if high <= low else rng.uniform(low, high)


class Phase(Enum):
    OPEN = "open"  # takes input
    ENDING = "ending"  # continue:false received, work still queued
    DONE = "done"  # its done went out (or a fault withheld it); forgotten expiry_s later
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # open, but idle expiry_s after its last audio (expiry on)


class Event(Enum):
    INPUT = "input"  # a generation request with continue: true
    END = "end"  # a generation request with continue: false
    CANCEL = "cancel"
    FINISHED = "finished"  # its Finish work ran
    EXPIRE = "expire"  # expiry_s after its last audio with nothing pending (expiry on)


class Action(Enum):
    ACCEPT = "accept"  # queue the input's work
    LATE = "late"  # input after the end: the late_input rule (error | ignore)
    EXPIRED_INPUT = "expired_input"  # input after expiry: the expiry rule (error | ignore)
    IGNORE = "ignore"  # nothing to do
    CANCEL = "cancel"  # drop queued work; the in-flight input finishes or stops
    RETIRE = "retire"  # free its concurrency slot; forget it expiry_s later
    FREE_SLOT = "free_slot"  # free its concurrency slot; remember it


P, E, A = Phase, Event, Action
TRANSITIONS: dict[tuple[Phase, Event], tuple[Phase, Action]] = {
    (P.OPEN, E.INPUT): (P.OPEN, A.ACCEPT),
    (P.OPEN, E.END): (P.ENDING, A.ACCEPT),
    (P.OPEN, E.CANCEL): (P.CANCELLED, A.CANCEL),
    (P.OPEN, E.EXPIRE): (P.EXPIRED, A.FREE_SLOT),
    (P.ENDING, E.INPUT): (P.ENDING, A.LATE),
    (P.ENDING, E.END): (P.ENDING, A.LATE),
    (P.ENDING, E.CANCEL): (P.CANCELLED, A.CANCEL),
    (P.ENDING, E.FINISHED): (P.DONE, A.RETIRE),
    (P.DONE, E.INPUT): (P.DONE, A.LATE),
    (P.DONE, E.END): (P.DONE, A.LATE),
    (P.DONE, E.CANCEL): (P.DONE, A.IGNORE),
    (P.CANCELLED, E.INPUT): (P.CANCELLED, A.IGNORE),
    (P.CANCELLED, E.END): (P.CANCELLED, A.IGNORE),
    (P.CANCELLED, E.CANCEL): (P.CANCELLED, A.IGNORE),
    (P.CANCELLED, E.FINISHED): (P.CANCELLED, A.RETIRE),  # the done of done_after_cancel
    (P.EXPIRED, E.INPUT): (P.EXPIRED, A.EXPIRED_INPUT),
    (P.EXPIRED, E.END): (P.EXPIRED, A.EXPIRED_INPUT),
    (P.EXPIRED, E.CANCEL): (P.EXPIRED, A.IGNORE),
}
del P, E, A


class IllegalTransition(RuntimeError):
    """An event that cannot happen in a context's phase: a bug in the emulator."""


def step(phase: Phase, event: Event) -> tuple[Phase, Action]:
    try:
        return TRANSITIONS[(phase, event)]
    except KeyError:
        raise IllegalTransition(f"event {event.value!r} in phase {phase.value!r}") from None
