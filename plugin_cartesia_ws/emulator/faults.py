"""Fault injection: the failures real Cartesia sockets show, on demand
(docs/cartesia-protocol.md, section 8).

A ``Fault`` names what goes wrong and where: for an API key, a context id (exact, or a
prefix ending in ``*``), or everything. ``FaultBook`` hands a context the faults that match
it when the context starts (socket-level faults when the socket opens) and counts how often
each may still fire (after letting ``skip`` matches pass). Faults that change a context's
rules (``auto_flush_done``, ``no_flush_done``, ``late_done``, ``expire``) become
``ContextRules`` changes through ``rule_changes``. Pure bookkeeping; the server acts on the
faults.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FaultKind = Literal[
    "drop",  # abort the TCP connection (client sees 1006) after `after_chunks` chunks
    "close",  # close the socket with `close_code` (e.g. 1011) after `after_chunks` chunks
    "no_done",  # never send the context's done (seen under rate limits, agents-js#681)
    "stall",  # wait `seconds` before the context's first chunk
    "stall_after",  # after `after_chunks` chunks, send nothing more for the context
    "error",  # send an error event (`status`, `code`) after `after_chunks` chunks
    "stale_frames",  # ignore cancel: the cancelled context's audio and done keep coming
    "idle_close",  # socket: close after `seconds` without client messages
    "refuse",  # handshake: answer HTTP `status` instead of upgrading
    "inject",  # send raw `frames` before the context's first chunk ("{ctx}" = its id)
    # Orders Cartesia does not document, and moments a client must survive:
    "timings_first",  # all of a generation's word/phoneme timestamps before its audio
    "timings_per_generation",  # timestamps only after the last chunk of each generation
    "drop_idle",  # abort the socket once the context has had no work for `seconds`
    # (after `after_chunks` chunks): a drop while the LLM pauses
    "pause",  # after `after_chunks` chunks, send nothing for `seconds`, then carry on
    "slow_handshake",  # socket: wait `seconds` before answering the upgrade
    # Orders Cartesia shows (issue 19), per context:
    "auto_flush_done",  # a flush_done at every input boundary, ids the client never asked for
    "no_flush_done",  # never a flush_done, even for the client's flushes (< 2024-11-13)
    "late_done",  # the done comes `seconds` after the context's last audio
    "expire",  # the context expires `seconds` (1 if 0) after its last audio; `mode` says
    # what later input gets: "error" (an error event) or "ignore" (nothing)
    "reset",  # on the context's `after_inputs`-th input frame, reset the TCP connection
    # (RST) without acting on it: the client's next send fails on a reset transport
]
CONTEXT_KINDS = frozenset(
    {
        "drop",
        "close",
        "no_done",
        "stall",
        "stall_after",
        "error",
        "stale_frames",
        "inject",
        "timings_first",
        "timings_per_generation",
        "drop_idle",
        "pause",
        "auto_flush_done",
        "no_flush_done",
        "late_done",
        "expire",
        "reset",
    }
)
SOCKET_KINDS = frozenset({"idle_close", "refuse", "slow_handshake"})


@dataclass
class Fault:
    kind: FaultKind
    key: str | None = None  # API key (or token) it applies to; None = any
    context: str | None = None  # context id, or "prefix*"; None = any
    after_chunks: int = 0
    seconds: float = 0.0
    close_code: int = 1011
    status: int = 500
    code: str = "internal_server_error"
    message: str = "Injected failure."
    frames: list[str] = field(default_factory=list)  # for "inject"; "binary:" prefix = bytes
    after_inputs: int = 1  # for "reset": the input frame of the context it fires on
    mode: str = "error"  # for "expire": "error" | "ignore"
    skip: int = 0  # let this many matching contexts/sockets pass before it fires
    times: int | None = 1  # how many contexts/sockets it fires for; None = every one
    fired: int = field(default=0)
    skipped: int = field(default=0)

    def __post_init__(self) -> None:
        if self.kind not in CONTEXT_KINDS | SOCKET_KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; one of {sorted(CONTEXT_KINDS | SOCKET_KINDS)}"
            )
        if self.kind == "expire" and self.mode not in ("error", "ignore"):
            raise ValueError(f"an expire fault's mode is 'error' or 'ignore', not {self.mode!r}")

    def matches(self, key: str | None, context_id: str | None) -> bool:
        if self.key is not None and self.key != key:
            return False
        if self.context is None or context_id is None:
            return self.context is None
        if self.context.endswith("*"):
            return context_id.startswith(self.context[:-1])
        return context_id == self.context

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        allowed = set(cls.__dataclass_fields__) - {"fired", "skipped"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)


class FaultBook:
    """The faults armed on one emulator; thread-safe so tests may add them from anywhere."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def all(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take_for_context(self, key: str | None, context_id: str) -> list[Fault]:
        return self._take(CONTEXT_KINDS, key, context_id)

    def take_for_socket(self, key: str | None) -> list[Fault]:
        return self._take(SOCKET_KINDS, key, None)

    def _take(self, kinds: frozenset[str], key: str | None, context_id: str | None) -> list[Fault]:
        taken = []
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and not fault.exhausted and fault.matches(key, context_id):
                    if fault.skipped < fault.skip:
                        fault.skipped += 1
                        continue
                    fault.fired += 1
                    taken.append(fault)
        return taken


@dataclass
class ContextFaults:
    """The faults one context carries, looked up by what the server is about to do."""

    faults: list[Fault] = field(default_factory=list)

    def first(self, kind: str) -> Fault | None:
        return next((f for f in self.faults if f.kind == kind), None)

    def has(self, kind: str) -> bool:
        return self.first(kind) is not None

    def due_after_chunk(self, chunks_sent: int) -> Fault | None:
        """drop / close / error / stall_after faults whose chunk count has been reached."""
        for fault in self.faults:
            if fault.kind in ("drop", "close", "error", "stall_after") and (
                chunks_sent >= fault.after_chunks
            ):
                return fault
        return None


def rule_changes(faults: list[Fault]) -> dict[str, Any]:
    """The ``ContextRules`` fields a context's faults change."""
    changes: dict[str, Any] = {}
    for fault in faults:
        if fault.kind == "auto_flush_done":
            changes["auto_flush_done"] = True
        elif fault.kind == "no_flush_done":
            changes["flush_done"] = False
        elif fault.kind == "late_done":
            changes["done_delay_s"] = (fault.seconds, fault.seconds)
        elif fault.kind == "expire":
            changes["expiry"] = fault.mode
            changes["expiry_s"] = fault.seconds or 1.0
    return changes
