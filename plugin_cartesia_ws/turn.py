"""One agent turn as a pure state machine: text, server events and clock ticks in; frames to
send, audio and word timings to emit, "resume now", the end of the turn out.

No sockets, no asyncio: ``stream.SynthesizeStream`` moves bytes and time around it, and every
failure order (a drop during an LLM pause, timings before their audio, a stall on one context
of a shared socket, a barge-in while resuming) is a sequence of calls a test can replay.

Where the listener is: a word timing is emitted only once its audio has been pushed (timings
may arrive before or after their audio; neither is documented). With ``receipts`` (chunking
with ``max_buffer_delay_ms: 0``, where Cartesia speaks each input as it arrives anyway) every
chunk is followed by a flush, so each ``flush_done`` proves that all audio of the text before
it has arrived (spec 2.6). A resume re-sends the text after the furthest point either proves
heard, so at most one chunk is repeated even when the server sends no word timings at all;
and once the input has ended and the last receipt is in, all audio is known to be in without
waiting the whole timeout for a ``done`` that may never come.

Over 400 lines on purpose: the states and every transition are read together, as in
wsproto; the outputs live in ``turn_outputs``.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from itertools import takewhile

from cartesia.types.generation_request_param import GenerationRequestParam
from livekit.agents import APIConnectionError, APIError, APITimeoutError

from . import protocol
from .alignment import TimedWord, TranscriptAligner
from .audio import bytes_per_sample, decode_to_s16
from .boundaries import is_speakable
from .chunking import TextChunker, TokenizerChunker
from .turn_outputs import (
    Audio,
    Cancel,
    Failed,
    Finished,
    Log,
    Output,
    Phonemes,
    Reconnect,
    Release,
    Send,
    TextStarted,
    Warn,
    Words,
)

MAX_RESUMES = 2  # per turn; then the turn fails with a clear, retryable error
FIRST_WORD_MAX_S = 1.5  # audio after which a context without timings or receipts is lost
DONE_GRACE_S = 0.25  # after the last receipt of an ended input, how long a done may take
_EPS = 1e-3


class State(Enum):
    OPENING = "opening"  # no text sent yet in this context
    STREAMING = "streaming"  # text going out, input open
    ENDING = "ending"  # input ended and the end frame sent: audio owed
    RESUMING = "resuming"  # waiting for a socket to continue in a new context
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({State.DONE, State.FAILED, State.CANCELLED})
LIVE_STATES = (State.STREAMING, State.ENDING)  # where server events other than errors are legal


class TurnStateError(RuntimeError):
    """An input that is illegal in the machine's current state (a bug in the caller)."""


@dataclass(frozen=True)
class TurnConfig:
    options: protocol.ContextOptions
    timeout: float  # conn_options.timeout: silence while audio is owed before a stall
    receipts: bool = True  # flush after each chunk: flush_done becomes a per-chunk receipt
    max_resumes: int = MAX_RESUMES

    @property
    def stall_after(self) -> float:
        return self.timeout + self.options.max_buffer_delay_ms / 1000.0


@dataclass
class _Context:
    """One Cartesia context of the turn: what was sent on it, and how much of it was heard."""

    id: str
    time_offset: float  # audio of the turn before this context, in seconds
    now: float
    aligner: TranscriptAligner = field(default_factory=TranscriptAligner)
    opened: bool = False  # a frame went out: the server knows it
    flushes: list[int] = field(default_factory=list)  # flush k -> len(sent) at that flush
    receipt: int = 0  # chars of sent text whose audio has all arrived (flush_done)
    receipts_valid: bool = True
    pushed_s: float = 0.0
    held: list[tuple[TimedWord, int]] = field(default_factory=list)  # (word, text end offset)
    aligned_to: int = 0  # text offset after the last aligned word
    word_heard: int = 0  # text offset after the last emitted word
    any_words: bool = False
    carry: bytes = b""  # a partial sample, completed by the next chunk
    last_send_at: float = -1.0
    last_event_at: float = 0.0
    all_in_at: float | None = None

    def __post_init__(self) -> None:
        self.last_event_at = self.now

    @property
    def sent(self) -> str:
        return self.aligner.sent_text

    def heard(self) -> int:
        return max(self.word_heard, self.receipt if self.receipts_valid else 0)


class TurnMachine:
    """A turn: ``text``/``flush``/``end_input`` from LiveKit, ``server`` events and
    ``socket_lost`` from the socket, ``tick`` at ``next_deadline()``, ``cancel`` on barge-in;
    each returns the outputs to act on, in order."""

    def __init__(
        self,
        config: TurnConfig,
        chunker: TextChunker | TokenizerChunker,
        turn_id: str,
        now: float,
    ) -> None:
        self.config = config
        self.turn_id = turn_id
        self.state = State.OPENING
        self.resumes = 0
        self.chunks_sent = 0
        self.audio_started = False
        self.done_received = False
        self._chunker = chunker
        self._width = bytes_per_sample(config.options.encoding)
        self._bytes_per_s = 2 * config.options.sample_rate  # of the s16 we emit
        self._s16 = config.options.encoding == "pcm_s16le"  # what LiveKit takes: no decoding
        self._ctx = _Context(turn_id, 0.0, now)
        self._input_ended = False
        self._sent_any = False  # in the whole turn
        self._pending: list[str] = []  # chunks made while resuming
        self._resend = ""

    @property
    def context_id(self) -> str:
        return self._ctx.id

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    # ------------------------------------------------------------ LiveKit's side
    def text(self, token: str, now: float) -> list[Output]:
        self._require(State.OPENING, State.STREAMING, State.RESUMING, what="text")
        return self._chunked(lambda: self._chunker.push(token, now), now)

    def flush(self, now: float) -> list[Output]:
        """LiveKit's flush: send what the chunker holds and ask the server to speak it now."""
        self._require(State.OPENING, State.STREAMING, State.RESUMING, what="flush")
        outputs = self._chunked(self._chunker.flush, now)
        if self.state is State.STREAMING and self._ctx.opened:
            outputs += self._flush_frame(now)
        return outputs

    def end_input(self, now: float) -> list[Output]:
        self._require(State.OPENING, State.STREAMING, State.RESUMING, what="end_input")
        outputs = self._chunked(self._chunker.flush, now)
        if self.finished:
            return outputs
        self._input_ended = True
        if self.state is State.RESUMING:
            return outputs  # connected() ends the new context
        if not self._sent_any:
            return outputs + [Release(self._ctx.id), *self._finish(nothing_said=True)]
        if not self._ctx.opened:  # resumed with nothing left to say, and nothing came since
            return outputs + [Release(self._ctx.id), *self._finish()]
        return outputs + self._end_frames(now)

    def cancel(self) -> list[Output]:
        """Barge-in (or the loop is going away): stop what the server is doing for us."""
        if self.finished:
            return []
        self.state = State.CANCELLED
        ctx = self._ctx
        return [Cancel(ctx.id) if ctx.opened else Release(ctx.id)]

    def abort(self, error: APIError) -> list[Output]:
        """The I/O around the turn failed (e.g. no socket to resume on)."""
        if self.finished:
            return []
        return self._fail(error)

    # ------------------------------------------------------------ the socket's side
    def connected(self, now: float) -> list[Output]:
        """The socket asked for by ``Reconnect`` is ready; the new context is routed."""
        self._require(State.RESUMING, what="connected")
        ctx = self._ctx
        ctx.last_event_at = now
        chunks = [self._resend] if is_speakable(self._resend) else []
        chunks, self._pending, self._resend = chunks + self._pending, [], ""
        self.state = State.OPENING
        outputs = self._send_chunks(chunks, now)
        if self._input_ended:
            if not ctx.opened:
                return outputs + [Release(ctx.id), *self._finish()]
            outputs += self._end_frames(now)
        return outputs

    def socket_lost(self, error: APIConnectionError, now: float) -> list[Output]:
        self._require(State.OPENING, State.STREAMING, State.ENDING, what="socket_lost")
        return self._resume(error, now, replace=False)

    def server(self, event: object, now: float) -> list[Output]:
        """One parsed server event; events of earlier contexts of the turn are ignored."""
        ctx = self._ctx
        if (
            type(event) is protocol.Chunk
            and self.state in LIVE_STATES
            and event.context_id == ctx.id
        ):
            ctx.last_event_at = now  # the hot path, once per audio chunk: no more checks
            return self._audio(event)
        if getattr(event, "context_id", None) not in (ctx.id, None):
            return []
        if isinstance(event, protocol.Error):
            self._require(State.OPENING, *LIVE_STATES, what="an error event")
            ctx.opened = False  # an error ends the context at the server
            return self._fail(protocol.error_from_event(event))
        self._require(*LIVE_STATES, what=f"a {type(event).__name__} event")
        ctx.last_event_at = now
        if isinstance(event, protocol.Chunk):
            return self._audio(event)
        if isinstance(event, protocol.Timestamps):
            wt = event.word_timestamps
            if wt is not None:
                words = ctx.aligner.align(list(wt.words), list(wt.start), list(wt.end))
                for word in words:
                    ctx.aligned_to += len(word.text)
                    ctx.held.append((word, ctx.aligned_to))
                ctx.any_words = ctx.any_words or bool(words)
            return self._release_words(ctx.pushed_s + _EPS)
        if isinstance(event, protocol.PhonemeTimestamps):
            pt = event.phoneme_timestamps
            if pt is None:
                return []
            shift = ctx.time_offset
            items = zip(pt.phonemes, pt.start, pt.end, strict=False)
            return [Phonemes(tuple((p, s + shift, e + shift) for p, s, e in items))]
        if isinstance(event, protocol.FlushDone):
            return self._receipt(event.flush_id, now)
        if isinstance(event, protocol.Done):
            self.done_received = True
            return [*self._release_words(None), Release(ctx.id, completed=True), *self._finish()]
        return []

    # ------------------------------------------------------------ the clock
    def next_deadline(self) -> float | None:
        if self.finished or self.state is State.RESUMING:
            return None
        deadlines = []
        if not self._input_ended:
            deadlines.append(self._chunker.next_deadline())
        ctx = self._ctx
        if ctx.all_in_at is not None:
            deadlines.append(ctx.all_in_at + DONE_GRACE_S)
        if self._owed():
            deadlines.append(max(ctx.last_send_at, ctx.last_event_at) + self.config.stall_after)
        return min((d for d in deadlines if d is not None), default=None)

    def tick(self, now: float, socket_heard_at: float = 0.0) -> list[Output]:
        """Time passed. ``socket_heard_at``: the socket's last frame of any context, so a
        stall of this context alone does not take a healthy shared socket down."""
        if self.finished or self.state is State.RESUMING:
            return []
        outputs: list[Output] = []
        if not self._input_ended:
            outputs += self._chunked(lambda: self._chunker.poll(now), now)
        ctx = self._ctx
        if self.finished or self.state is State.RESUMING:
            return outputs
        if ctx.all_in_at is not None and now >= ctx.all_in_at + DONE_GRACE_S:
            return outputs + self._finish_without_done("every receipt arrived")
        since = max(ctx.last_send_at, ctx.last_event_at)
        if self._owed() and now >= since + self.config.stall_after:
            error = APITimeoutError(
                f"Cartesia sent nothing for {self.config.timeout:.1f}s while audio was owed"
            )
            return outputs + self._resume(error, now, replace=socket_heard_at <= since)
        return outputs

    # ------------------------------------------------------------ internals
    def _require(self, *states: State, what: str) -> None:
        if self.state not in states:
            raise TurnStateError(f"{what} is illegal in state {self.state.value}")

    def _owed(self) -> bool:
        ctx = self._ctx
        if not ctx.opened or self.state not in (State.STREAMING, State.ENDING):
            return False
        if self.state is State.ENDING or ctx.last_send_at > ctx.last_event_at:
            return True
        return ctx.receipts_valid and bool(ctx.flushes) and ctx.receipt < ctx.flushes[-1]

    def _chunked(self, make: Callable[[], list[str]], now: float) -> list[Output]:
        """Chunks from the chunking policy (or a user's tokenizer), sent or kept for a resume.
        The chunker is user code: if it raises, the turn ends, non-retryably."""
        try:
            chunks = make()
        except Exception as exc:
            error = APIError(f"preparing the text failed: {type(exc).__name__}: {exc}")
            error.retryable = False  # LiveKit's retry would feed the same text to the same code
            return self._fail(error)
        if self.state is State.RESUMING:
            self._pending += chunks
            return []
        return self._send_chunks(chunks, now)

    def _send_chunks(self, chunks: list[str], now: float) -> list[Output]:
        ctx, outputs = self._ctx, list[Output]()
        for chunk in chunks:
            if not self._sent_any:
                outputs.append(TextStarted())
            outputs.append(Send(protocol.generation_frame(self._base(), chunk)))
            ctx.aligner.add_sent_text(chunk)
            ctx.opened = self._sent_any = True
            ctx.last_send_at = now
            self.chunks_sent += 1
            self.state = State.STREAMING
            if self.config.receipts:
                outputs += self._flush_frame(now)
        return outputs

    def _flush_frame(self, now: float) -> list[Output]:
        ctx = self._ctx
        if ctx.flushes and ctx.flushes[-1] == len(ctx.sent):
            return []  # that text is flushed already
        ctx.flushes.append(len(ctx.sent))
        ctx.last_send_at = now
        return [Send(protocol.flush_frame(self._base()))]

    def _end_frames(self, now: float) -> list[Output]:
        outputs = self._flush_frame(now) if self.config.receipts else []
        self.state = State.ENDING
        self._ctx.last_send_at = now
        return outputs + [Send(protocol.end_frame(self._base()))]

    def _base(self) -> GenerationRequestParam:
        return self.config.options.base(self._ctx.id)

    def _audio(self, chunk: protocol.Chunk) -> list[Output]:
        ctx = self._ctx
        if not chunk.data:
            return []
        try:
            raw = protocol.decode_audio(chunk.data)  # lenient fast path, then strict
        except binascii.Error:
            return [Warn("bad-base64", "skipped a Cartesia chunk that is not base64")]
        if ctx.carry:
            raw = ctx.carry + raw
        if split := len(raw) % self._width:  # a sample split across chunks is carried
            raw, ctx.carry = raw[:-split], raw[-split:]
        else:
            ctx.carry = b""
        if not raw:
            return []
        pcm = raw if self._s16 else decode_to_s16(raw, self.config.options.encoding)
        ctx.pushed_s += len(pcm) / self._bytes_per_s
        first = not self.audio_started
        self.audio_started = True
        audio = Audio(pcm, step_time=chunk.step_time if first else None)
        if not ctx.held:
            return [audio]  # no word timing waits for this audio
        return [audio, *self._release_words(ctx.pushed_s + _EPS)]

    def _release_words(self, until: float | None) -> list[Output]:
        """Words whose audio has been pushed (all of them when ``until`` is None)."""
        ctx = self._ctx
        ready = list(takewhile(lambda held: until is None or held[0].end <= until, ctx.held))
        ctx.held = ctx.held[len(ready) :]
        if until is None and ctx.any_words:
            rest = ctx.aligner.finish()
            ready += [(w, len(ctx.sent)) for w in rest]
        if not ready:
            return []
        ctx.word_heard = ready[-1][1]
        shift = ctx.time_offset
        return [Words(tuple(TimedWord(w.text, w.start + shift, w.end + shift) for w, _ in ready))]

    def _receipt(self, flush_id: int | None, now: float) -> list[Output]:
        ctx = self._ctx
        if flush_id is None or not ctx.receipts_valid:
            return []
        if not 1 <= flush_id <= len(ctx.flushes):
            ctx.receipts_valid = False  # ids that are not ours: trust word timings only
            return []
        ctx.receipt = max(ctx.receipt, ctx.flushes[flush_id - 1])
        if self.state is State.ENDING and ctx.receipt >= len(ctx.sent):
            ctx.all_in_at = now
        return []

    def _finish(self, *, nothing_said: bool = False) -> list[Output]:
        outputs: list[Output] = []
        if not nothing_said and self.audio_started and not self._ctx.any_words:
            if self.config.options.word_timestamps and self.resumes == 0:
                outputs.append(
                    Warn(
                        "no-timestamps",
                        "Cartesia sent no word timestamps; the transcript falls back to LLM text",
                    )
                )
        self.state = State.DONE
        return outputs + [Finished(nothing_said=nothing_said)]

    def _finish_without_done(self, why: str) -> list[Output]:
        ctx = self._ctx
        return [
            Log(
                "Cartesia did not finish the context, but all of its audio arrived",
                {"context_id": ctx.id, "reason": why},
            ),
            *self._release_words(None),
            Cancel(ctx.id),
            *self._finish(),
        ]

    def _fail(self, error: APIError) -> list[Output]:
        ctx = self._ctx
        outputs: list[Output] = [Cancel(ctx.id) if ctx.opened else Release(ctx.id)]
        self.state = State.FAILED
        return outputs + [Failed(error)]

    def _resume(self, reason: APIError, now: float, *, replace: bool) -> list[Output]:
        """Continue in a new context (on a new socket when ``replace``), re-sending the text
        whose audio is not known to be complete."""
        ctx = self._ctx
        heard = ctx.heard()
        outputs: list[Output] = []
        if ctx.held and ctx.receipts_valid:  # held words a receipt covers: their audio is in
            covered = [w for w, end in ctx.held if end <= ctx.receipt]
            until = covered[-1].end if covered else None
            outputs += self._release_words(until) if until is not None else []
        unheard = ctx.sent[heard:]
        if self._input_ended and not is_speakable(unheard) and not self._pending:
            return outputs + self._finish_without_done(reason.message)
        outputs.append(Cancel(ctx.id) if ctx.opened else Release(ctx.id))
        locatable = ctx.word_heard > 0 or (self.config.receipts and ctx.receipts_valid)
        if not locatable and ctx.pushed_s >= FIRST_WORD_MAX_S:
            error = APIConnectionError(
                f"{reason.message}; cannot resume mid-turn without word timestamps "
                "or flush receipts"
            )
            self.state = State.FAILED
            return outputs + [Failed(error)]
        if self.resumes >= self.config.max_resumes:
            self.state = State.FAILED
            return outputs + [Failed(reason)]
        self.resumes += 1
        self._resend = unheard.lstrip()
        outputs.append(
            Log(
                "resuming the turn on a new Cartesia context",
                {
                    "context_id": self.turn_id,
                    "reason": reason.message,
                    "resume": self.resumes,
                    "unheard_chars": len(unheard),
                    "new_socket": replace,
                },
            )
        )
        self._ctx = _Context(f"{self.turn_id}-r{self.resumes}", ctx.time_offset + ctx.pushed_s, now)
        self.state = State.RESUMING
        return outputs + [Reconnect(replace_socket=replace)]
