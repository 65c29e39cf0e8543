"""Pure per-socket context state machine of the emulator
(docs/cartesia-protocol.md, sections 2.5-2.7, 4, 8).

A ``ContextTable`` takes client frames and clock ticks and answers with outputs for the I/O
layer: events to send now (errors), contexts whose work queue grew (``Wake``), and in-flight
generations to abort (``StopNow``). Generation work (``Speak``, ``FlushDone``, ``Finish``) is
queued per context in input order; the I/O layer pops it with ``next_work`` and reports back
with ``work_finished``. Each context's phase moves only through the table of ``lifecycle``.
The table also counts the characters it accepted (``billed_chars``: what Cartesia bills).
Nothing here touches a socket or the event loop, so every rule is unit-tested directly.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from .lifecycle import Action, ContextRules, Event, Phase, step
from .messages import (
    CancelRequest,
    Catalogue,
    GenerationRequest,
    ProtocolError,
    bad_request,
    error_event,
    parse_client_frame,
    version_at_least,
)

__all__ = ["ContextRules", "ContextTable", "Phase"]  # ContextRules used to live here
FLUSH_DONE_SINCE = "2024-11-13"  # the version that added flush and flush_done (section 1.3)


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
    rules: ContextRules
    phase: Phase = Phase.OPEN
    buffer: str = ""
    buffer_since: float | None = None
    flush_id: int = 1
    queue: deque[WorkItem] = field(default_factory=deque)
    inflight: WorkItem | None = None
    stop_requested: bool = False
    audio_seconds: float = 0.0  # timeline of this context's audio, for timestamps
    finished_at: float | None = None
    last_audio_at: float | None = None  # when its last generation finished streaming
    transcript: str = ""  # everything received, joined verbatim

    @property
    def idle(self) -> bool:
        return not self.queue and self.inflight is None and not self.buffer

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
        self.billed_chars: Counter[str] = Counter()  # per context id, kept after it is gone
        self._overrides: dict[str, ContextRules] = {}

    def override_rules(self, context_id: str, **changes: Any) -> None:
        """Other rules for one context (a fault), from its next input on."""
        ctx = self.contexts.get(context_id)
        if ctx is not None:
            ctx.rules = dataclasses.replace(ctx.rules, **changes)
        else:
            base = self._overrides.get(context_id, self.rules)
            self._overrides[context_id] = dataclasses.replace(base, **changes)

    def rules_of(self, context_id: str) -> ContextRules:
        ctx = self.contexts.get(context_id)
        return ctx.rules if ctx is not None else self._overrides.get(context_id, self.rules)

    def phase_of(self, context_id: str) -> Phase | None:
        ctx = self.contexts.get(context_id)
        return ctx.phase if ctx is not None else None

    # ------------------------------------------------------------ client input
    def receive(self, raw: str | bytes, now: float) -> list[Output]:
        try:
            frame = parse_client_frame(raw, version=self.version, catalogue=self.catalogue)
        except ProtocolError as err:
            return self._refuse(err)
        ctx = self.contexts.get(frame.context_id)
        if ctx is not None:
            self._expire_if_due(ctx, now)
        if isinstance(frame, CancelRequest):
            return self._cancel(ctx) if ctx is not None else []
        return self._generate(ctx, frame, now)

    def _step(self, ctx: Context, event: Event) -> Action:
        ctx.phase, action = step(ctx.phase, event)
        return action

    def _refuse(self, err: ProtocolError) -> list[Output]:
        """An error ends the context it names (``done: true`` on the error)."""
        if err.context_id is not None and err.context_id in self.contexts:
            self._drop(self.contexts[err.context_id])
        return [self._error(err)]

    def _error(self, err: ProtocolError) -> Send:
        return Send(error_event(err, version=self.version, request_id=self.request_id))

    def _generate(self, ctx: Context | None, req: GenerationRequest, now: float) -> list[Output]:
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
            rules = self._overrides.pop(req.context_id, self.rules)
            ctx = self.contexts[req.context_id] = Context(req.context_id, req, rules)
        elif (
            ctx.phase is Phase.OPEN and ctx.rules.strict_fields and req.params != ctx.request.params
        ):
            return self._refuse(
                bad_request(
                    "All fields except transcript, continue and flush must stay the same "
                    "within a context.",
                    ctx.id,
                    code="context_fields_changed",
                )
            )
        action = self._step(ctx, Event.INPUT if req.continue_ else Event.END)
        if action is Action.ACCEPT:
            return self._append(ctx, req, now)
        if action is Action.LATE and ctx.rules.late_input == "error":
            return [
                self._error(
                    bad_request(
                        "Context already ended; start a new context for more input.",
                        ctx.id,
                        code="context_ended",
                    )
                )
            ]
        if action is Action.EXPIRED_INPUT and ctx.rules.expiry == "error":
            return [
                self._error(
                    bad_request(
                        f"Context expired {ctx.rules.expiry_s:g} s after its last audio; "
                        "start a new context for more input.",
                        ctx.id,
                        code="context_expired",
                    )
                )
            ]
        return []

    def _append(self, ctx: Context, req: GenerationRequest, now: float) -> list[Output]:
        before = len(ctx.queue)
        ctx.transcript += req.transcript
        self.billed_chars[ctx.id] += len(req.transcript)
        if ctx.delay_s == 0:
            if req.transcript:
                ctx.queue.append(Speak(req.transcript, ctx.flush_id))
                if ctx.rules.auto_flush_done:
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
        return [Wake(ctx.id)] if len(ctx.queue) > before else []

    def _release_buffer(self, ctx: Context) -> None:
        if ctx.buffer:
            ctx.queue.append(Speak(ctx.buffer, ctx.flush_id))
        ctx.buffer, ctx.buffer_since = "", None

    def _queue_flush_done(self, ctx: Context) -> None:
        """Versions before 2024-11-13 (and the no_flush_done fault) never say flush_done."""
        if ctx.rules.flush_done and version_at_least(self.version, FLUSH_DONE_SINCE):
            ctx.queue.append(FlushDone(ctx.flush_id))
            ctx.flush_id += 1

    def _cancel(self, ctx: Context) -> list[Output]:
        """Drop what has not started; the in-flight input finishes or stops (section 4)."""
        if self._step(ctx, Event.CANCEL) is not Action.CANCEL:
            return []
        ctx.queue.clear()
        ctx.buffer, ctx.buffer_since = "", None
        self.gate.leave((self.socket_id, ctx.id))
        outputs: list[Output] = []
        if ctx.rules.done_after_cancel:
            ctx.queue.append(Finish())
            outputs.append(Wake(ctx.id))
        if ctx.inflight is not None and ctx.rules.cancel_inflight == "stop":
            ctx.stop_requested = True
            outputs.append(StopNow(ctx.id))
        return outputs

    # ------------------------------------------------------------ clock
    def _expires_at(self, ctx: Context) -> float | None:
        """An open context with nothing pending expires expiry_s after its last audio."""
        if (
            ctx.rules.expiry == "off"
            or ctx.phase is not Phase.OPEN
            or ctx.last_audio_at is None
            or not ctx.idle
        ):
            return None
        return ctx.last_audio_at + ctx.rules.expiry_s

    def _expire_if_due(self, ctx: Context, now: float) -> None:
        expires_at = self._expires_at(ctx)
        if expires_at is not None and now >= expires_at:
            self._step(ctx, Event.EXPIRE)
            self.gate.leave((self.socket_id, ctx.id))

    def poll(self, now: float) -> list[Output]:
        """Release buffers whose delay ran out; expire idle contexts; forget finished ones."""
        outputs: list[Output] = []
        for ctx in list(self.contexts.values()):
            if ctx.buffer_since is not None and now >= ctx.buffer_since + ctx.delay_s:
                self._release_buffer(ctx)
                outputs.append(Wake(ctx.id))
            self._expire_if_due(ctx, now)
            if ctx.finished_at is not None and now >= ctx.finished_at + ctx.rules.expiry_s:
                del self.contexts[ctx.id]
        return outputs

    def next_deadline(self) -> float | None:
        deadlines: list[float] = []
        for ctx in self.contexts.values():
            if ctx.buffer_since is not None:
                deadlines.append(ctx.buffer_since + ctx.delay_s)
            if ctx.finished_at is not None:
                deadlines.append(ctx.finished_at + ctx.rules.expiry_s)
            expires_at = self._expires_at(ctx)
            if expires_at is not None:
                deadlines.append(expires_at)
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
        if isinstance(ctx.inflight, Speak):
            ctx.last_audio_at = now
        elif isinstance(ctx.inflight, Finish) and self._step(ctx, Event.FINISHED) is Action.RETIRE:
            ctx.finished_at = now
            self.gate.leave((self.socket_id, ctx.id))
        ctx.inflight = None
        ctx.stop_requested = False

    def fail(self, context_id: str, err: ProtocolError) -> list[Output]:
        """A server-side failure of one context (fault injection): error event, context gone."""
        return self._refuse(err)

    @property
    def busy(self) -> bool:
        """Some context has work queued or in flight."""
        return any(ctx.queue or ctx.inflight is not None for ctx in self.contexts.values())

    def has_pending_work(self, context_id: str) -> bool:
        ctx = self.contexts.get(context_id)
        return ctx is not None and bool(ctx.queue)

    def _drop(self, ctx: Context) -> None:
        """An error ends a context in any phase: it is gone, its slot free."""
        self.gate.leave((self.socket_id, ctx.id))
        ctx.queue.clear()
        ctx.stop_requested = True
        del self.contexts[ctx.id]

    def close(self) -> None:
        """The socket is gone: free every context's concurrency slot."""
        for ctx in list(self.contexts.values()):
            self._drop(ctx)
