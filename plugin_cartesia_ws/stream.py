"""One agent turn = one Cartesia context on the shared socket.

The sender feeds LLM text through the chunking policy onto the wire; the receiver pushes
the context's audio and word timings to LiveKit. Closing the stream before ``done``
(barge-in) cancels the context at once. When the socket drops or stalls mid-turn, the turn
resumes on a new socket: the text whose audio has not been heard (known from word
timestamps) goes out again in a new context, so the listener hears the rest of the reply
with no word lost. LiveKit itself never retries a stream that already produced audio.
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cartesia.types.generation_request_param import GenerationRequestParam
from livekit.agents import (
    APIConnectionError,
    APIConnectOptions,
    APIError,
    APITimeoutError,
    tts,
    utils,
)
from livekit.agents.utils import aio, is_given
from livekit.agents.voice.io import TimedString

from . import protocol
from .alignment import TimedWord, TranscriptAligner
from .audio import bytes_per_sample, decode_to_s16
from .breaker import Ticket
from .chunking import TextChunker, TokenizerChunker, is_speakable
from .connection import CartesiaSocket, ContextEvents
from .log import logger
from .pulse import Pulse

if TYPE_CHECKING:
    from .tts import TTS

MAX_RESUMES = 2  # per turn; then the turn fails with a clear, retryable error
_FIRST_WORD_MAX_S = 1.5  # audio after which a timestamp-less context cannot be located
_NUDGE = object()  # "text just went out: re-arm the watchdog"
_NOTHING_TO_SAY = object()  # the turn had nothing speakable; no context was opened


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


@dataclass
class _Route:
    """Where the turn's text goes now: one context on one socket."""

    socket: CartesiaSocket
    events: ContextEvents
    base: GenerationRequestParam
    time_offset: float  # audio of the turn before this context, in seconds
    aligner: TranscriptAligner = field(default_factory=TranscriptAligner)
    pushed_s: float = 0.0  # audio of this context pushed to LiveKit
    word_ends: list[tuple[int, float]] = field(default_factory=list)  # (text offset, end)

    @property
    def context_id(self) -> str:
        return self.events.context_id

    def heard_offset(self) -> int:
        """Chars of the sent text whose words' audio has been pushed completely."""
        heard = 0
        for offset, end in self.word_ends:
            if end > self.pushed_s + 1e-3:
                break
            heard = offset
        return heard


class _Turn:
    """State the sender and the receiver share."""

    def __init__(self, route: _Route) -> None:
        self.route = route
        self.generation = 0
        self._switched = Pulse()
        self.sent_any = False
        self.ended = False
        self.last_send_at = 0.0

    def switch(self, route: _Route) -> None:
        self.route = route
        self.generation += 1
        self._switched.fire()

    async def wait_for_switch(self, generation: int) -> None:
        await self._switched.wait_until(lambda: self.generation != generation)


class SynthesizeStream(tts.SynthesizeStream):
    """One agent turn = one Cartesia context on the shared socket.

    ticket: the request this turn belongs to, for the breaker (admitted once, then every
        retry attempt connects); a stream is its own request unless a ChunkedStream runs it.
    report: False when a ChunkedStream runs this stream as its engine: the ChunkedStream
        reports the request (one metrics event, one error event per attempt), not this.
    """

    def __init__(
        self,
        *,
        tts: TTS,
        conn_options: APIConnectOptions,
        ticket: Ticket | None = None,
        report: bool = True,
    ) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._tts: TTS = tts
        self._opts = tts._options_snapshot()
        self._context_options = self._opts.context_options()
        self._ticket = ticket or Ticket()
        self._report = report
        self.stats: TurnStats | None = None
        self.phoneme_timestamps: list[tuple[str, float, float]] = []

    # LiveKit's SynthesizeStream reports through these two; an engine stream stays silent.
    def _emit_error(self, api_error: Exception, recoverable: bool) -> None:
        if self._report:
            super()._emit_error(api_error, recoverable)
        else:
            self._current_attempt_has_error = True

    async def _metrics_monitor_task(self, event_aiter: AsyncIterable[tts.SynthesizedAudio]) -> None:
        if self._report:
            await super()._metrics_monitor_task(event_aiter)
        else:
            async for _ev in event_aiter:  # the tee still needs this side read
                pass

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        stats = self.stats = TurnStats(utils.shortuuid("lkctx_"))
        output_emitter.initialize(
            request_id=stats.context_id,
            sample_rate=self._opts.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            stream=True,
        )
        socket, reused = await self._tts.pool.acquire(self._conn_options.timeout, self._ticket)
        self._acquire_time = self._tts.pool.last_acquire_time
        self._connection_reused = stats.socket_reused = reused
        turn = _Turn(self._open_route(socket, stats.context_id, time_offset=0.0))
        sender = asyncio.create_task(self._send_text(turn), name="cartesia-send")
        try:
            await self._receive(turn, output_emitter, stats)
        except asyncio.CancelledError:
            stats.cancelled = True
            raise
        finally:
            route = turn.route
            if stats.done or not turn.sent_any:
                route.socket.release(route.context_id, completed=stats.done)
            else:
                route.socket.cancel(route.context_id)  # barge-in or failure: stop the server
            await utils.aio.gracefully_cancel(sender)
            self._log_turn(stats)

    def _open_route(self, socket: CartesiaSocket, context_id: str, time_offset: float) -> _Route:
        return _Route(
            socket=socket,
            events=socket.open_context(context_id),
            base=self._context_options.base(context_id),
            time_offset=time_offset,
        )

    # ------------------------------------------------------------ text -> Cartesia
    async def _send_text(self, turn: _Turn) -> None:
        try:
            await self._pump_text(turn)
        except Exception as exc:  # the receiver owns every error
            error = exc if isinstance(exc, APIError) else APIConnectionError(type(exc).__name__)
            turn.route.events.post(error)

    async def _deliver(
        self, turn: _Turn, frame: Callable[[GenerationRequestParam], str], text: str | None
    ) -> None:
        """Send on the current route; if its socket is gone, wait for the resumed route."""
        while True:
            generation, route = turn.generation, turn.route
            try:
                await route.socket.send(frame(route.base))
            except APIConnectionError:
                await turn.wait_for_switch(generation)
                continue
            if text is not None:
                route.aligner.add_sent_text(text)
            turn.sent_any = True
            turn.last_send_at = time.monotonic()
            route.events.post(_NUDGE)
            return

    async def _pump_text(self, turn: _Turn) -> None:
        tokenizer = self._tts._tokenizer
        chunker: TextChunker | TokenizerChunker = (
            TokenizerChunker(tokenizer) if is_given(tokenizer) else TextChunker(self._opts.chunking)
        )
        input_ch = self._input_ch  # read fresh per attempt: LiveKit's retry replaces it
        stats = self.stats
        assert stats is not None

        async def send(chunks: list[str]) -> None:
            for chunk in chunks:
                if not turn.sent_any:
                    self._mark_started()  # LiveKit's TTFB starts when text is on the wire
                    stats.first_text_sent_at = time.perf_counter()
                await self._deliver(
                    turn, functools.partial(protocol.generation_frame, transcript=chunk), chunk
                )
                stats.chunks_sent += 1

        while True:
            deadline = chunker.next_deadline()
            try:
                if deadline is None:
                    item = await input_ch.recv()
                else:
                    # The chunker's first-chunk deadline or LLM stall. asyncio.timeout, not
                    # wait_for: no extra task per token while the deadline is armed (issue 12).
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        item = await input_ch.recv()
            except TimeoutError:  # the deadline passed: the policy may send what it holds
                await send(chunker.poll(time.monotonic()))
                continue
            except aio.ChanClosed:
                break
            if isinstance(item, self._FlushSentinel):
                await send(chunker.flush())
                if turn.sent_any and not input_ch.closed:
                    await self._deliver(turn, protocol.flush_frame, None)
                continue
            await send(chunker.push(item, time.monotonic()))
        await send(chunker.flush())
        if turn.sent_any:
            await self._deliver(turn, protocol.end_frame, None)
            turn.ended = True
        else:
            turn.route.events.post(_NOTHING_TO_SAY)

    # ------------------------------------------------------------ Cartesia -> LiveKit
    def _watchdog_timeout(self, turn: _Turn) -> float | None:
        """Armed only while audio is owed: text sent and not answered since, or input ended."""
        route = turn.route
        if not (turn.ended or turn.last_send_at > route.events.last_event_at):
            return None
        slack = self._conn_options.timeout + self._opts.chunking.buffer_delay_ms() / 1000.0
        since = max(turn.last_send_at, route.events.last_event_at)
        return max(0.0, since + slack - time.monotonic())

    async def _receive(self, turn: _Turn, emitter: tts.AudioEmitter, stats: TurnStats) -> None:
        width = bytes_per_sample(self._opts.encoding)
        bytes_per_second = 2 * self._opts.sample_rate
        started = False

        def push_words(route: _Route, words: list[TimedWord]) -> None:
            for word in words:
                emitter.push_timed_transcript(
                    TimedString(
                        text=word.text,
                        start_time=route.time_offset + word.start,
                        end_time=route.time_offset + word.end,
                    )
                )

        while True:
            route = turn.route
            try:
                item = await route.events.get(self._watchdog_timeout(turn))
            except TimeoutError:
                item = APITimeoutError(
                    f"Cartesia sent nothing for {self._conn_options.timeout:.1f}s while audio was owed"
                )
            if item is _NUDGE:
                continue
            if item is _NOTHING_TO_SAY:
                if self._pushed_text.strip():  # e.g. only "...": LiveKit still wants audio
                    emitter.start_segment(segment_id=stats.context_id)
                    emitter.push(b"\x00\x00" * (self._opts.sample_rate // 100))
                stats.done = True
                return
            if isinstance(item, APIConnectionError):  # socket dropped, or stalled
                if await self._resume(turn, stats, item, stalled=isinstance(item, APITimeoutError)):
                    return
                continue
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, protocol.Chunk):
                pcm = self._decode_chunk(item, width)
                if not pcm:
                    continue
                if not started:
                    emitter.start_segment(segment_id=stats.context_id)
                    started = True
                if stats.first_audio_at is None:
                    stats.first_audio_at = time.perf_counter()
                    stats.first_step_time_ms = item.step_time
                stats.audio_bytes += len(pcm)
                route.pushed_s += len(pcm) / bytes_per_second
                emitter.push(pcm)
            elif isinstance(item, protocol.Timestamps):
                if item.word_timestamps is not None and started:
                    wt = item.word_timestamps
                    words = route.aligner.align(list(wt.words), list(wt.start), list(wt.end))
                    offset = route.word_ends[-1][0] if route.word_ends else 0
                    for word in words:
                        offset += len(word.text)
                        route.word_ends.append((offset, word.end))
                    push_words(route, words)
            elif isinstance(item, protocol.PhonemeTimestamps):
                pt = item.phoneme_timestamps
                if pt is not None:
                    shift = route.time_offset
                    self.phoneme_timestamps.extend(
                        (p, s + shift, e + shift)
                        for p, s, e in zip(pt.phonemes, pt.start, pt.end, strict=False)
                    )
            elif isinstance(item, protocol.Error):
                raise protocol.error_from_event(item)
            elif isinstance(item, protocol.Done):
                stats.done = True
                self._tts.pool.mark_healthy()
                if route.word_ends:
                    push_words(route, route.aligner.finish())
                elif self._opts.word_timestamps and started:
                    self._tts._warn_once(
                        "no-timestamps",
                        "Cartesia sent no word timestamps; the transcript falls back to LLM text",
                    )
                return

    def _decode_chunk(self, chunk: protocol.Chunk, width: int) -> bytes:
        """16-bit PCM of one chunk; a malformed one is skipped (and said once)."""
        if not chunk.data:
            return b""
        try:
            raw = protocol.decode_audio(chunk.data)  # issue 12: lenient fast path, then strict
        except binascii.Error:
            self._tts._warn_once("bad-base64", "skipped a Cartesia chunk that is not base64")
            return b""
        if len(raw) % width:
            # Whole samples always; a stray partial one would shift every later sample.
            self._tts._warn_once("odd-chunk", "skipped a Cartesia chunk of partial samples")
            return b""
        return decode_to_s16(raw, self._opts.encoding)

    async def _resume(
        self, turn: _Turn, stats: TurnStats, reason: APIError, *, stalled: bool
    ) -> bool:
        """Continue the turn in a new context on a new socket. True = the turn is complete."""
        route = turn.route
        if stalled:
            route.socket.cancel(route.context_id)
            self._tts.pool.discard(route.socket)  # never hand a stalled socket out again
        else:
            route.socket.release(route.context_id)
        # Word timestamps say which words were heard. None yet is fine early on (the first
        # word is still playing); none after a while means the server sends none.
        locatable = self._opts.word_timestamps and (
            route.word_ends or route.pushed_s < _FIRST_WORD_MAX_S
        )
        if route.pushed_s > 0 and not locatable:
            raise APIConnectionError(
                f"{reason.message}; cannot resume mid-turn without word timestamps"
            ) from None
        unheard = route.aligner.sent_text[route.heard_offset() :]
        if turn.ended and not is_speakable(unheard):
            logger.warning(
                "Cartesia did not finish the context, but all of its audio arrived",
                extra={"context_id": route.context_id, "reason": reason.message},
            )
            stats.done = True
            return True
        if stats.resumes >= MAX_RESUMES:
            raise reason
        stats.resumes += 1
        logger.warning(
            "resuming the turn on a new Cartesia socket",
            extra={
                "context_id": stats.context_id,
                "reason": reason.message,
                "resume": stats.resumes,
                "unheard_chars": len(unheard),
            },
        )
        socket, _ = await self._tts.pool.acquire(self._conn_options.timeout, self._ticket)
        new_route = self._open_route(
            socket, f"{stats.context_id}-r{stats.resumes}", route.time_offset + route.pushed_s
        )
        resend = unheard.lstrip()
        if is_speakable(resend):
            await socket.send(protocol.generation_frame(new_route.base, resend))
            new_route.aligner.add_sent_text(resend)
            turn.last_send_at = time.monotonic()
        if turn.ended:
            await socket.send(protocol.end_frame(new_route.base))
        turn.switch(new_route)
        return False

    def _log_turn(self, stats: TurnStats) -> None:
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
        logger.info("Cartesia turn finished", extra=extra)
