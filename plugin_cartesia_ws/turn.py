"""One agent turn as a pure state machine, as h11 and wsproto build theirs: every state has a
name, every legal (state, event) pair sits in ``TRANSITIONS`` with the states it may lead to,
and an illegal event raises ``TurnStateError``. No sockets, no asyncio, no clock, no LiveKit:
``stream.SynthesizeStream`` is the one task that feeds it and carries out its outputs.

Two ends of a turn. The listener's end (state DONE): every sample has arrived, proven by
``done`` or by receipts in lockstep once the input ended (``receipts.ReceiptLedger``); the
stream ends for LiveKit at once. The protocol's end: a context that got no ``done`` lingers
on the socket (``Linger``) until it comes, and is cancelled quietly if it never does.

Where the listener is: a word timing is emitted once its audio has been pushed. A resume
re-sends the reply from the furthest point that word timings or believed receipts prove
heard, as one contiguous slice of the reply (its own spaces: no fused words).

Over 400 lines on purpose: the table and the handlers are read together.
"""

from __future__ import annotations

import binascii
import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar, cast

from . import protocol
from . import turn_outputs as ops
from .audio import PcmJoiner
from .boundaries import is_speakable
from .chunking import TextChunker, TokenizerChunker
from .context import TurnContext
from .pacing import Pacer, PacingPolicy
from .receipts import ReceiptLedger, Trust
from .turn_outputs import Failure, Output

MAX_RESUMES = 2  # per turn; then the turn fails with a clear, retryable error
FIRST_WORD_MAX_S = 1.5  # audio after which a context without timings or receipts is lost
EXPIRY_GUARD_S = 0.5  # a context quiet this long may have expired: the turn takes a new one
_EPS = 1e-3


class State(Enum):
    OPENING = "opening"  # the current context has no text yet; input open
    STREAMING = "streaming"  # text sent on the context; input open
    DRAINING = "draining"  # input ended; the pacer still holds text (then the end frame)
    ENDING = "ending"  # input ended, end frame sent: audio owed, completion not yet proven
    RESUMING = "resuming"  # waiting for a socket to go on in a new context
    DONE = "done"  # the listener's end: every sample arrived (done, or receipts in step)
    FAILED = "failed"
    CANCELLED = "cancelled"

    __hash__ = object.__hash__  # members are singletons; Enum's own hash is Python code


class Event(Enum):
    TEXT = "text"  # LiveKit's side
    FLUSH = "flush"
    END_INPUT = "end_input"
    CANCEL = "cancel"
    AUDIO = "audio"  # the server's events for the current context
    WORDS = "words"
    PHONEMES = "phonemes"
    RECEIPT = "receipt"
    DONE = "done"
    ERROR = "error"
    LOST = "lost"  # the socket died
    SEND_FAILED = "send_failed"  # a send failed: that socket is never used again
    CONNECTED = "connected"  # the socket a Reconnect asked for is ready
    TICK = "tick"  # a deadline passed
    ABORT = "abort"  # the I/O gave up (no socket within the budget)

    __hash__ = object.__hash__


OPENING, STREAMING, ENDING, RESUMING = State.OPENING, State.STREAMING, State.ENDING, State.RESUMING
DRAINING = State.DRAINING
DONE, FAILED, CANCELLED = State.DONE, State.FAILED, State.CANCELLED
TERMINAL = frozenset({DONE, FAILED, CANCELLED})
_ROWS: tuple[tuple[tuple[State, ...], tuple[Event, ...], tuple[State, ...]], ...] = (
    # from                          events                              to
    ((OPENING,), (Event.TEXT, Event.FLUSH), (OPENING, STREAMING, FAILED)),
    ((STREAMING,), (Event.TEXT, Event.FLUSH), (STREAMING, FAILED)),
    ((RESUMING,), (Event.TEXT, Event.FLUSH, Event.END_INPUT), (RESUMING, FAILED)),
    ((OPENING, STREAMING), (Event.END_INPUT,), (DRAINING, ENDING, DONE, FAILED)),
    ((STREAMING,), (Event.WORDS, Event.PHONEMES, Event.RECEIPT), (STREAMING,)),
    ((DRAINING,), (Event.WORDS, Event.PHONEMES, Event.RECEIPT), (DRAINING,)),
    ((ENDING,), (Event.AUDIO, Event.WORDS, Event.PHONEMES), (ENDING,)),
    ((ENDING,), (Event.RECEIPT,), (ENDING, DONE)),  # a receipt may prove the end
    # paced: the first audio starts the listener's clock, and held text may leave
    ((STREAMING, DRAINING), (Event.AUDIO,), (STREAMING, DRAINING, ENDING, DONE)),
    ((STREAMING,), (Event.DONE,), (OPENING,)),  # the server closed it: next text, new context
    ((DRAINING,), (Event.DONE,), (DRAINING,)),  # ... the held text goes in a new context
    ((ENDING,), (Event.DONE,), (DONE,)),
    ((OPENING, STREAMING, DRAINING, ENDING), (Event.ERROR,), (FAILED,)),
    (
        (OPENING, STREAMING, DRAINING, ENDING),
        (Event.LOST, Event.SEND_FAILED),
        (RESUMING, DONE, FAILED),
    ),
    ((RESUMING,), (Event.CONNECTED,), (OPENING, STREAMING, DRAINING, ENDING, DONE, FAILED)),
    ((OPENING,), (Event.TICK,), (OPENING, STREAMING, FAILED)),  # the chunker's deadline
    ((STREAMING,), (Event.TICK,), (STREAMING, RESUMING, FAILED)),  # ... a stall
    ((DRAINING,), (Event.TICK,), (DRAINING, ENDING, DONE, RESUMING, FAILED)),  # held text leaves
    ((ENDING,), (Event.TICK,), (ENDING, RESUMING, DONE, FAILED)),
    ((RESUMING, DONE, FAILED, CANCELLED), (Event.TICK,), ()),  # nothing is timed here: unchanged
    ((OPENING, STREAMING, DRAINING, ENDING, RESUMING), (Event.CANCEL,), (CANCELLED,)),
    ((OPENING, STREAMING, DRAINING, ENDING, RESUMING), (Event.ABORT,), (FAILED,)),
    ((DONE, FAILED, CANCELLED), (Event.CANCEL, Event.ABORT), ()),  # the turn is over: unchanged
)
TRANSITIONS: dict[tuple[State, Event], frozenset[State]] = {
    (state, event): frozenset(to) for src, events, to in _ROWS for state in src for event in events
}
assert len(TRANSITIONS) == sum(len(src) * len(ev) for src, ev, _ in _ROWS), "a pair twice"
AUDIO_STATES = frozenset(s for (s, e) in TRANSITIONS if e is Event.AUDIO)
# where word timings leave the state as it is (what stream._direct relies on)
TIMING_STATES = frozenset(s for (s, e), to in TRANSITIONS.items() if e is Event.WORDS and to == {s})
_Handler = TypeVar("_Handler", bound=Callable[..., list[Output]])


class TurnStateError(RuntimeError):
    """An input that is illegal in the machine's current state (a bug in the caller)."""


def _transition(event: Event) -> Callable[[_Handler], _Handler]:
    """Run a handler only where ``TRANSITIONS`` allows ``event``, and check where it led."""

    def wrap(handler: _Handler) -> _Handler:
        @functools.wraps(handler)
        def checked(self: TurnMachine, *args: Any, **kwargs: Any) -> list[Output]:
            allowed = TRANSITIONS.get((self.state, event))
            if allowed is None:
                raise TurnStateError(f"{event.value} is illegal in state {self.state.value}")
            if not allowed:
                return []  # a row that changes nothing (a tick while resuming, ...)
            before, outputs = self.state, handler(self, *args, **kwargs)
            if self.state not in allowed:
                raise AssertionError(f"{before.value} --{event.value}--> {self.state.value}")
            return outputs

        return cast(_Handler, checked)

    return wrap


@dataclass(frozen=True)
class TurnConfig:
    options: protocol.ContextOptions
    timeout: float  # conn_options.timeout: silence while audio is owed before a stall
    receipts: bool = True  # flush after each chunk: flush_done becomes a per-chunk receipt
    max_resumes: int = MAX_RESUMES
    pacing: PacingPolicy | None = None  # None: every chunk leaves as soon as it is made
    expiry_guard_s: float = EXPIRY_GUARD_S

    @property
    def stall_after(self) -> float:
        return self.timeout + self.options.max_buffer_delay_ms / 1000.0


class TurnMachine:
    """A turn: ``text``/``flush``/``end_input``/``cancel`` from LiveKit, ``server`` events,
    ``socket_lost``/``send_failed``/``connected`` from the socket, ``tick`` at
    ``next_deadline()``; each returns the outputs to act on, in order."""

    def __init__(
        self,
        config: TurnConfig,
        chunker: TextChunker | TokenizerChunker,
        turn_id: str,
        now: float,
    ) -> None:
        self.config = config
        self.turn_id = turn_id
        self.state = OPENING
        self.resumes = 0
        self.contexts = 0
        self.chunks_sent = 0
        self.audio_started = False
        self.done_received = False
        self._chunker = chunker
        self._bytes_per_s = 2 * config.options.sample_rate  # of the s16 we emit
        self._ctx: TurnContext
        self.context_id = ""
        self._open_context(0.0, now)
        self._input_ended = False
        self._sent_any = False  # in the whole turn
        self._backlog = ""  # while RESUMING: the reply from the last heard point, unsent
        self._pacer = Pacer(config.pacing) if config.pacing is not None else None
        self._timed_before = 0  # characters timed (or proven heard) in earlier contexts

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    @property
    def receipts(self) -> Trust:
        return self._ctx.ledger.trust

    # ------------------------------------------------------------ LiveKit's side
    @_transition(Event.TEXT)
    def text(self, token: str, now: float) -> list[Output]:
        return self._chunked(now, self._chunker.push, token, now)

    @_transition(Event.FLUSH)
    def flush(self, now: float) -> list[Output]:
        """LiveKit's flush: send what the chunker holds and ask the server to speak it now."""
        outputs = self._chunked(now, self._chunker.flush)
        buffering = self.config.options.max_buffer_delay_ms > 0  # the server holds text
        if self.state is STREAMING and (buffering or self._ctx.ledger.asking):
            outputs += self._ctx.flush_frame()
        return outputs

    @_transition(Event.END_INPUT)
    def end_input(self, now: float) -> list[Output]:
        outputs = self._chunked(now, self._chunker.flush)
        if self.finished:
            return outputs
        self._input_ended = True
        if self.state is RESUMING:
            return outputs  # connected() ends the new context
        return outputs + self._wind_down(now)

    @_transition(Event.CANCEL)
    def cancel(self) -> list[Output]:
        """Barge-in (or the loop is going away): stop what the server is doing for us."""
        self.state = CANCELLED
        return [self._ctx.close()]

    @_transition(Event.ABORT)
    def abort(self) -> list[Output]:
        """The I/O around the turn gave up (no socket within the budget); it raises its error."""
        self.state = FAILED
        return [self._ctx.close()]

    # ------------------------------------------------------------ the socket's side
    @_transition(Event.CONNECTED)
    def connected(self, now: float) -> list[Output]:
        """The socket asked for by ``Reconnect`` is ready; the new context is routed."""
        self._ctx.last_event_at = now
        backlog, self._backlog = self._backlog.lstrip(), ""
        self.state = OPENING
        outputs = self._send_chunks([backlog] if is_speakable(backlog) else [], now)
        if self._holding():
            return outputs + self._release(now)
        return outputs + self._wind_down(now) if self._input_ended else outputs

    @_transition(Event.LOST)
    def socket_lost(self, message: str, now: float) -> list[Output]:
        return self._resume(Failure("connection", message), now, replace=False)

    @_transition(Event.SEND_FAILED)
    def send_failed(self, message: str, now: float) -> list[Output]:
        return self._resume(Failure("connection", message), now, replace=True)

    def server(self, event: object, now: float) -> list[Output]:
        """One parsed server event; events of earlier contexts of the turn are ignored."""
        ctx = self._ctx
        if type(event) is protocol.Chunk and self.state in AUDIO_STATES:
            if event.context_id == ctx.id:  # the hot path, once per audio chunk
                ctx.last_event_at = now
                return self._audio(event, now)
        elif type(event) is protocol.Timestamps and self.state in TIMING_STATES:
            if event.context_id == ctx.id:  # once per word or so (never changes the state)
                ctx.last_event_at = now
                return self._words(event)
        if getattr(event, "context_id", None) not in (ctx.id, None):
            return []
        handler = _SERVER_HANDLERS.get(type(event))
        if handler is None:
            return []
        ctx.last_event_at = now
        return handler(self, event, now)

    @_transition(Event.AUDIO)
    def _on_audio(self, event: protocol.Chunk, now: float) -> list[Output]:
        return self._audio(event, now)

    @_transition(Event.WORDS)
    def _on_words(self, event: protocol.Timestamps, now: float) -> list[Output]:
        return self._words(event)

    def _words(self, event: protocol.Timestamps) -> list[Output]:
        ctx, wt = self._ctx, event.word_timestamps
        if wt is not None:
            ctx.words.timed(wt.words, wt.start, wt.end)
            if self._pacer is not None and wt.end:
                chars = self._timed_before + ctx.words.timed_chars
                self._pacer.timed(chars, ctx.time_offset + max(wt.end))
        return ctx.release_words(ctx.pushed_s + _EPS) if ctx.words.held else []

    @_transition(Event.PHONEMES)
    def _on_phonemes(self, event: protocol.PhonemeTimestamps, now: float) -> list[Output]:
        return self._ctx.phonemes(event)

    @_transition(Event.RECEIPT)
    def _on_receipt(self, event: protocol.FlushDone, now: float) -> list[Output]:
        self._ctx.ledger.receipt(event.flush_id)
        return self._settle()

    @_transition(Event.DONE)
    def _on_done(self, event: protocol.Done, now: float) -> list[Output]:
        ctx = self._ctx
        self.done_received = True
        outputs = [*ctx.release_words(None), ops.Release(ctx.id, completed=True)]
        if self.state is ENDING:
            return outputs + self._finish()
        # the server ended the context while we have more to say: go on in a new one
        self._successor(now)
        self.state = DRAINING if self.state is DRAINING else OPENING
        return outputs

    @_transition(Event.ERROR)
    def _on_error(self, event: protocol.Error, now: float) -> list[Output]:
        self._ctx.opened = False  # an error ends the context at the server
        return self._fail(Failure("server", "Cartesia sent an error", event))

    # ------------------------------------------------------------ the clock
    def next_deadline(self) -> float | None:
        if self.finished or self.state is RESUMING:
            return None
        deadlines = (
            None if self._input_ended else self._chunker.next_deadline(),
            self._ctx.quiet_since + self.config.stall_after if self._owed() else None,
            None if self._pacer is None else self._pacer.release_at(),
        )
        return min((t for t in deadlines if t is not None), default=None)

    @_transition(Event.TICK)
    def tick(self, now: float, socket_heard_at: float = 0.0) -> list[Output]:
        """Time passed. ``socket_heard_at``: the socket's last frame of any context, so a
        stall of this context alone does not take a healthy shared socket down."""
        outputs: list[Output] = []
        if not self._input_ended:
            outputs += self._chunked(now, self._chunker.poll, now)
        if self._holding() and not self.finished:
            outputs += self._release(now)
        since = self._ctx.quiet_since
        if self.finished or not self._owed() or now < since + self.config.stall_after:
            return outputs
        why = f"Cartesia sent nothing for {self.config.timeout:.1f}s while audio was owed"
        return outputs + self._resume(
            Failure("timeout", why), now, replace=socket_heard_at <= since
        )

    # ------------------------------------------------------------ internals
    def _open_context(self, time_offset: float, now: float) -> None:
        """The turn goes on in a new context (``context_id``, its id, is read per event)."""
        suffix = f"-r{self.contexts}" if self.contexts else ""
        self.contexts += 1
        ledger = ReceiptLedger(asked=self.config.receipts)
        options = self.config.options
        pcm = PcmJoiner(options.encoding)
        self._ctx = TurnContext(f"{self.turn_id}{suffix}", time_offset, options, ledger, pcm, now)
        self.context_id = self._ctx.id

    def _successor(self, now: float) -> None:
        """Go on in a new context, on the turn's timeline (its audio and timed text so far)."""
        ctx = self._ctx
        self._timed_before += ctx.heard()
        self._open_context(ctx.time_offset + ctx.pushed_s, now)

    def _owed(self) -> bool:
        ctx = self._ctx
        if not ctx.opened or self.state not in (STREAMING, DRAINING, ENDING):
            return False
        if self.state is ENDING or ctx.last_send_at > ctx.last_event_at:
            return True
        return ctx.ledger.awaited

    def _chunked(self, now: float, make: Callable[..., list[str]], *args: Any) -> list[Output]:
        """Chunks from the chunking policy (or a user's tokenizer), sent or kept for a resume.
        The chunker is user code: if it raises, the turn ends, non-retryably."""
        try:
            chunks = make(*args)
        except Exception as exc:
            return self._fail(
                Failure("input", f"preparing the text failed: {type(exc).__name__}: {exc}")
            )
        if self._pacer is not None:
            if not chunks and not self._pacer.held and not self._input_ended:
                return []  # (most tokens: nothing to release, nothing to end)
            self._pacer.held += chunks
            return [] if self.state is RESUMING else self._release(now)
        if self.state is RESUMING:
            self._backlog += "".join(chunks)
            return []
        return self._send_chunks(chunks, now)

    def _holding(self) -> bool:
        return self._pacer is not None and bool(self._pacer.held)

    def _release(self, now: float) -> list[Output]:
        """Paced: send what the pacer lets go now (in a new context if this one has gone
        quiet long enough to have expired), and end the context after the last of it."""
        assert self._pacer is not None
        outputs: list[Output] = []
        while (batch := self._pacer.take(now, first=not self._sent_any)) is not None:
            outputs += self._send_chunks([batch], now)
        if self._input_ended and self.state in (OPENING, STREAMING, DRAINING):
            outputs += self._wind_down(now)
        return outputs

    def _wind_down(self, now: float) -> list[Output]:
        """Input has ended: the pacer drains what it holds, then the context ends."""
        ctx = self._ctx
        if self._holding():
            self.state = DRAINING  # the last release comes back here
            return []
        if not ctx.opened:  # nothing said at all, or nothing since a resume
            return [ops.Release(ctx.id), *self._finish(nothing_said=not self._sent_any)]
        return self._end(now) + self._settle()

    def _next_context(self, now: float) -> list[Output]:
        """Close a context the server may have let expire (it waits for its done in the
        background) and go on in a new one, on the turn's timeline."""
        ctx = self._ctx
        # end it even if it may have expired: a server without expiry would keep it open,
        # and an expired one answers with an error (or nothing), which the linger absorbs
        outputs = [*ctx.release_words(None), *ctx.end_frames(now), ops.Linger(ctx.id)]
        self._successor(now)
        self.state = OPENING
        return outputs

    def _send_chunks(self, chunks: list[str], now: float) -> list[Output]:
        """Send on the current context, or on a new one if it has been quiet long enough
        that the server may have let it expire (Cartesia: 1 s after its last audio)."""
        ctx, outputs = self._ctx, list[Output]()
        if chunks and ctx.opened and now - ctx.quiet_since >= self.config.expiry_guard_s:
            owed = ctx.last_send_at > ctx.last_event_at or is_speakable(ctx.sent[ctx.heard() :])
            if not owed:  # every word sent on it is known heard: it may go
                outputs += self._next_context(now)
                ctx, chunks = self._ctx, [chunks[0].lstrip(), *chunks[1:]]
        for chunk in chunks:
            if not self._sent_any:
                outputs.append(ops.TextStarted())
            outputs += ctx.send_text(chunk, now)
            self._sent_any, self.state = True, STREAMING
            self.chunks_sent += 1
        return outputs

    def _end(self, now: float) -> list[Output]:
        self.state = ENDING
        return self._ctx.end_frames(now)

    def _settle(self) -> list[Output]:
        """The listener's end by receipts: input ended and every receipt in step."""
        ctx = self._ctx
        if self.state is not ENDING or not ctx.ledger.all_in(len(ctx.sent)):
            return []
        return [*ctx.release_words(None), ops.Linger(ctx.id), *self._finish()]

    def _audio(self, chunk: protocol.Chunk, now: float) -> list[Output]:
        ctx = self._ctx
        try:
            pcm = ctx.audio(chunk)
        except binascii.Error:
            return [ops.Warn("bad-base64", "skipped a Cartesia chunk that is not base64")]
        if not pcm:
            return []
        seconds = len(pcm) / self._bytes_per_s
        ctx.pushed_s += seconds
        first = not self.audio_started
        self.audio_started = True
        outputs: list[Output] = [ops.Audio(pcm, chunk.step_time) if first else ops.Audio(pcm)]
        if ctx.words.held:
            outputs += ctx.release_words(ctx.pushed_s + _EPS)
        if self._pacer is not None:
            self._pacer.audio(seconds, now)
            if first and self._pacer.held:  # the listener's clock starts: text may leave
                outputs += self._release(now)
        return outputs

    def _finish(self, nothing_said: bool = False) -> list[Output]:
        self.state = DONE
        outputs: list[Output] = [ops.Finished(nothing_said=nothing_said)]
        untimed = self.audio_started and not nothing_said and not self._ctx.words.any
        if untimed and self.config.options.word_timestamps and self.resumes == 0:
            why = "Cartesia sent no word timestamps; the transcript falls back to LLM text"
            outputs.insert(0, ops.Warn("no-timestamps", why))
        return outputs

    def _fail(self, failure: Failure) -> list[Output]:
        self.state = FAILED
        return [self._ctx.close(), ops.Failed(failure)]

    def _resume(self, reason: Failure, now: float, *, replace: bool) -> list[Output]:
        """Go on in a new context (on a new socket when ``replace``), re-sending the reply
        from the furthest point known heard."""
        ctx = self._ctx
        covered = ctx.words.covered_until(ctx.ledger.proven)  # a believed receipt: heard
        outputs = ctx.release_words(covered) if covered is not None else []
        unheard = ctx.sent[ctx.heard() :]
        if self._input_ended and not is_speakable(unheard) and not self._holding():
            return outputs + [*ctx.release_words(None), ctx.close(), *self._finish()]
        locatable = ctx.words.heard > 0 or ctx.ledger.trust in (Trust.UNPROVEN, Trust.TRUSTED)
        if not locatable and ctx.pushed_s >= FIRST_WORD_MAX_S:
            why = "cannot resume mid-turn without word timestamps or flush receipts"
            return outputs + self._fail(Failure("connection", f"{reason.message}; {why}"))
        if self.resumes >= self.config.max_resumes:
            return outputs + self._fail(reason)
        self.resumes += 1
        self._backlog = unheard
        extra = {"context_id": self.turn_id, "reason": reason.message, "resume": self.resumes}
        extra |= {"unheard_chars": len(unheard), "new_socket": replace}
        log = ops.Log("resuming the turn on a new Cartesia context", extra)
        self._successor(now)
        self.state = RESUMING
        return [*outputs, ctx.close(), log, ops.Reconnect(replace_socket=replace)]


_SERVER_HANDLERS: dict[type, Callable[[TurnMachine, Any, float], list[Output]]] = {
    protocol.Chunk: TurnMachine._on_audio,
    protocol.Timestamps: TurnMachine._on_words,
    protocol.PhonemeTimestamps: TurnMachine._on_phonemes,
    protocol.FlushDone: TurnMachine._on_receipt,
    protocol.Done: TurnMachine._on_done,
    protocol.Error: TurnMachine._on_error,
}
