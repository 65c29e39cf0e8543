"""Pure per-socket context state machine of the emulator
(docs/cartesia-protocol.md, sections 2.5-2.7, 4, 8).

A ``ContextTable`` takes client frames and clock ticks and answers with outputs for the I/O
layer: events to send now (errors), contexts whose work queue grew (``Wake``), and in-flight
generations to abort (``StopNow``). Generation work (``Speak``, ``FlushDone``, ``Finish``) is
queued per context in input order; the I/O layer pops it with ``next_work`` and reports back
with ``work_finished``. Nothing here touches a socket or the event loop, so every rule is
unit-tested directly.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from .messages import (
    CancelRequest,
    Catalogue,
    GenerationRequest,
    ProtocolError,
    bad_request,
    error_event,
    parse_client_frame,
)


@dataclass(frozen=True)
class ContextRules:
    """Behaviour the spec leaves open, made configurable (open questions 3, 4, 7)."""

    cancel_inflight: Literal["finish", "stop"] = "finish"  # docs: the in-flight input finishes
    done_after_cancel: bool = False
    auto_flush_done: bool = False  # observed with max_buffer_delay_ms=0 (livekit/agents#5321)
    expiry_s: float = 1.0  # a finished context is forgotten this long after its done
    late_input: Literal["error", "ignore"] = "error"  # input after continue:false or done
    strict_fields: bool = False  # 400 when a locked field changes within a context


# ---------------------------------------------------------------- work items
@dataclass(frozen=True)
class Speak:
    text: str
    flush_id: int


@dataclass(frozen=True)
class FlushDone:
    flush_id: int


@dataclass(frozen=True)
class Finish:
    """Send the context's single ``done``."""


WorkItem = Speak | FlushDone | Finish


# ---------------------------------------------------------------- outputs
@dataclass(frozen=True)
class Send:
    event: dict


@dataclass(frozen=True)
class Wake:
    context_id: str


@dataclass(frozen=True)
class StopNow:
    context_id: str


Output = Send | Wake | StopNow


class Phase(Enum):
    OPEN = "open"
    ENDING = "ending"  # continue:false received, work still queued
    DONE = "done"  # done sent
    CANCELLED = "cancelled"


class ConcurrencyGate:
    """Active contexts of one API key across all its sockets (section 1.5)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._active: set[tuple[int, str]] = set()

    @property
    def active(self) -> int:
        return len(self._active)

    def try_enter(self, token: tuple[int, str]) -> bool:
        if self.limit is not None and len(self._active) >= self.limit:
            return False
        self._active.add(token)
        return True

    def leave(self, token: tuple[int, str]) -> None:
        self._active.discard(token)


@dataclass
class Context:
    id: str
    request: GenerationRequest  # the first request: its params are the context's
    phase: Phase = Phase.OPEN
    buffer: str = ""
    buffer_since: float | None = None
    flush_id: int = 1
    queue: deque[WorkItem] = field(default_factory=deque)
    inflight: WorkItem | None = None
    stop_requested: bool = False
    audio_seconds: float = 0.0  # timeline of this context's audio, for timestamps
    finished_at: float | None = None
    transcript: str = ""  # everything received, joined verbatim

    @property
    def delay_s(self) -> float:
        return self.request.max_buffer_delay_ms / 1000.0


_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f](?=\s|$)")


def _split_at_last_sentence_end(text: str) -> tuple[str, str]:
    """Managed buffering releases text up to the last sentence end (section 2.5)."""
    last = None
    for match in _SENTENCE_END.finditer(text):
        last = match
    if last is None:
        return "", text
    cut = last.end()
    while cut < len(text) and text[cut].isspace():
        cut += 1
    return text[:cut], text[cut:]


class ContextTable:
    """All contexts of one socket."""

    def __init__(
        self,
        *,
        version: str,
        catalogue: Catalogue | None = None,
        rules: ContextRules | None = None,
        gate: ConcurrencyGate | None = None,
        socket_id: int = 0,
        request_id: str = "req",
    ) -> None:
        self.version = version
        self.catalogue = catalogue or Catalogue()
        self.rules = rules or ContextRules()
        self.gate = gate or ConcurrencyGate()
        self.socket_id = socket_id
        self.request_id = request_id
        self.contexts: dict[str, Context] = {}

    # ------------------------------------------------------------ client input
    def receive(self, raw: str | bytes, now: float) -> list[Output]:
        try:
            frame = parse_client_frame(raw, version=self.version, catalogue=self.catalogue)
        except ProtocolError as err:
            return self._refuse(err)
        if isinstance(frame, CancelRequest):
            return self._cancel(frame.context_id)
        return self._generate(frame, now)

    def _refuse(self, err: ProtocolError) -> list[Output]:
        """An error ends the context it names (``done: true`` on the error)."""
        if err.context_id is not None and err.context_id in self.contexts:
            self._drop(self.contexts[err.context_id])
        return [Send(error_event(err, version=self.version, request_id=self.request_id))]

    def _generate(self, req: GenerationRequest, now: float) -> list[Output]:
        ctx = self.contexts.get(req.context_id)
        if ctx is None:
            if not self.gate.try_enter((self.socket_id, req.context_id)):
                return self._refuse(
                    ProtocolError(
                        429,
                        "concurrency_limited",
                        "Too many concurrent requests",
                        "You have exceeded your plan's concurrency limit.",
                        req.context_id,
                    )
                )
            ctx = Context(req.context_id, req)
            self.contexts[ctx.id] = ctx
        elif ctx.phase is Phase.CANCELLED:
            return []
        elif ctx.phase in (Phase.ENDING, Phase.DONE):
            if self.rules.late_input == "ignore":
                return []
            return [
                Send(
                    error_event(
                        bad_request(
                            "Context already ended; start a new context for more input.",
                            req.context_id,
                            code="context_ended",
                        ),
                        version=self.version,
                        request_id=self.request_id,
                    )
                )
            ]
        elif self.rules.strict_fields and req.params != ctx.request.params:
            return self._refuse(
                bad_request(
                    "All fields except transcript, continue and flush must stay the same "
                    "within a context.",
                    ctx.id,
                    code="context_fields_changed",
                )
            )
        return self._append(ctx, req, now)

    def _append(self, ctx: Context, req: GenerationRequest, now: float) -> list[Output]:
        before = len(ctx.queue)
        ctx.transcript += req.transcript
        if ctx.delay_s == 0:
            if req.transcript:
                ctx.queue.append(Speak(req.transcript, ctx.flush_id))
                if self.rules.auto_flush_done:
                    self._queue_flush_done(ctx)
        else:
            if req.transcript and ctx.buffer_since is None:
                ctx.buffer_since = now
            ctx.buffer += req.transcript
            ready, rest = _split_at_last_sentence_end(ctx.buffer)
            if ready:
                ctx.queue.append(Speak(ready, ctx.flush_id))
                ctx.buffer = rest
                ctx.buffer_since = now if rest else None
        if req.flush:
            self._release_buffer(ctx)
            self._queue_flush_done(ctx)
        if not req.continue_:
            self._release_buffer(ctx)
            ctx.queue.append(Finish())
            ctx.phase = Phase.ENDING
        return [Wake(ctx.id)] if len(ctx.queue) > before else []

    def _release_buffer(self, ctx: Context) -> None:
        if ctx.buffer:
            ctx.queue.append(Speak(ctx.buffer, ctx.flush_id))
        ctx.buffer, ctx.buffer_since = "", None

    def _queue_flush_done(self, ctx: Context) -> None:
        ctx.queue.append(FlushDone(ctx.flush_id))
        ctx.flush_id += 1

    def _cancel(self, context_id: str) -> list[Output]:
        """Drop what has not started; the in-flight input finishes or stops (section 4)."""
        ctx = self.contexts.get(context_id)
        if ctx is None or ctx.phase in (Phase.DONE, Phase.CANCELLED):
            return []
        ctx.phase = Phase.CANCELLED
        ctx.queue.clear()
        ctx.buffer, ctx.buffer_since = "", None
        self.gate.leave((self.socket_id, ctx.id))
        outputs: list[Output] = []
        if self.rules.done_after_cancel:
            ctx.queue.append(Finish())
            outputs.append(Wake(ctx.id))
        if ctx.inflight is not None and self.rules.cancel_inflight == "stop":
            ctx.stop_requested = True
            outputs.append(StopNow(ctx.id))
        return outputs

    # ------------------------------------------------------------ clock
    def poll(self, now: float) -> list[Output]:
        """Release buffers whose delay ran out; forget finished contexts past expiry."""
        outputs: list[Output] = []
        for ctx in list(self.contexts.values()):
            if ctx.buffer_since is not None and now >= ctx.buffer_since + ctx.delay_s:
                self._release_buffer(ctx)
                outputs.append(Wake(ctx.id))
            if ctx.finished_at is not None and now >= ctx.finished_at + self.rules.expiry_s:
                del self.contexts[ctx.id]
        return outputs

    def next_deadline(self) -> float | None:
        deadlines = [
            ctx.buffer_since + ctx.delay_s
            for ctx in self.contexts.values()
            if ctx.buffer_since is not None
        ]
        deadlines += [
            ctx.finished_at + self.rules.expiry_s
            for ctx in self.contexts.values()
            if ctx.finished_at is not None
        ]
        return min(deadlines, default=None)

    # ------------------------------------------------------------ work, for the I/O layer
    def next_work(self, context_id: str) -> WorkItem | None:
        ctx = self.contexts.get(context_id)
        if ctx is None or not ctx.queue:
            return None
        ctx.inflight = ctx.queue.popleft()
        return ctx.inflight

    def should_stop(self, context_id: str) -> bool:
        ctx = self.contexts.get(context_id)
        return ctx is None or ctx.stop_requested

    def work_finished(self, context_id: str, now: float) -> None:
        ctx = self.contexts.get(context_id)
        if ctx is None:
            return
        if isinstance(ctx.inflight, Finish):
            ctx.finished_at = now
            if ctx.phase is not Phase.CANCELLED:
                ctx.phase = Phase.DONE
            self.gate.leave((self.socket_id, ctx.id))
        ctx.inflight = None
        ctx.stop_requested = False

    def fail(self, context_id: str, err: ProtocolError) -> list[Output]:
        """A server-side failure of one context (fault injection): error event, context gone."""
        return self._refuse(err)

    def has_pending_work(self, context_id: str) -> bool:
        ctx = self.contexts.get(context_id)
        return ctx is not None and bool(ctx.queue)

    def _drop(self, ctx: Context) -> None:
        self.gate.leave((self.socket_id, ctx.id))
        ctx.queue.clear()
        ctx.stop_requested = True
        del self.contexts[ctx.id]

    def close(self) -> None:
        """The socket is gone: free every context's concurrency slot."""
        for ctx in list(self.contexts.values()):
            self._drop(ctx)
