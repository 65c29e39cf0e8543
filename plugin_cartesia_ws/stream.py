"""One agent turn = one Cartesia context on the shared socket: the I/O loop around
``turn.TurnMachine``.

The machine holds every rule of the turn; this loop is its one owner. It waits on one inbox
(LiveKit's text, read in by a feeder task; the context's server events, posted by the
socket's reader; the socket's loss; its own clock's ticks), feeds each item to the machine,
and carries out its outputs (one documented exception: ``_direct``, audio while it waits): frames to the socket, audio and word timings to LiveKit, a socket when it asks to
resume, a lingering context when the listener has every sample but no ``done`` came yet.
The machine's failures become LiveKit's errors here, at the edge.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import AsyncIterable
from typing import Any

from livekit.agents import (
    APIConnectionError,
    APIConnectOptions,
    APIError,
    APITimeoutError,
    tts,
    utils,
)
from livekit.agents.utils import is_given
from livekit.agents.voice.io import TimedString

from . import protocol
from . import turn_outputs as ops
from .breaker import Ticket
from .chunking import TextChunker, TokenizerChunker
from .connection import CartesiaSocket, Inbox
from .log import logger
from .options import TurnHost
from .turn import TurnConfig, TurnMachine
from .turn_stats import TurnStats, log_turn

FIRST_RECEIPTS_VERSION = "2024-11-13"  # API versions before it never send flush_done
DONE_WAIT_S = 5.0  # a context with every sample in waits this long for its done


_INPUT_ENDED = object()
_TICK = object()  # the machine's deadline passed


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
        tts: tts.TTS,
        host: TurnHost,
        conn_options: APIConnectOptions,
        ticket: Ticket | None = None,
        report: bool = True,
    ) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._host = host  # the same object as ``tts``, seen through what a turn needs
        self._opts = host._options_snapshot()
        self._context_options = self._opts.context_options()
        self._ticket = ticket or Ticket()
        self._report = report
        self.stats: TurnStats | None = None
        self.phoneme_timestamps: list[tuple[str, float, float]] = []
        self._socket: CartesiaSocket  # the current socket, and the context routed on it
        self._routed: str | None = None
        self._idle: TurnMachine | None = None  # the machine, while its loop waits
        self._inbox: Inbox

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
        self.phoneme_timestamps = []  # per attempt: LiveKit's retry runs _run again
        output_emitter.initialize(
            request_id=stats.context_id,
            sample_rate=self._opts.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            stream=True,
        )
        socket, reused = await self._host.pool.acquire(self._conn_options.timeout, self._ticket)
        self._acquire_time = self._host.pool.last_acquire_time
        self._connection_reused = stats.socket_reused = reused
        machine = TurnMachine(self._turn_config(), self._chunker(), stats.context_id, _now())
        self._socket, self._inbox = socket, asyncio.Queue()
        feeder = asyncio.create_task(self._feed(self._inbox), name="cartesia-input")
        try:
            await self._drive(machine, self._inbox, output_emitter, stats)
        except asyncio.CancelledError:
            stats.cancelled = True
            raise
        finally:
            self._act_now(machine.cancel())  # no-op when the turn already ended
            if self._routed is not None:  # never leave a context routed (idle refresh)
                self._socket.release(self._routed)
            stats.resumes, stats.chunks_sent = machine.resumes, machine.chunks_sent
            stats.done = machine.done_received or stats.done
            await utils.aio.gracefully_cancel(feeder)
            log_turn(stats)

    def _turn_config(self) -> TurnConfig:
        options = self._context_options
        receipts = options.max_buffer_delay_ms == 0 and self._opts.api_version >= (
            FIRST_RECEIPTS_VERSION
        )
        return TurnConfig(options=options, timeout=self._conn_options.timeout, receipts=receipts)

    def _chunker(self) -> TextChunker | TokenizerChunker:
        tokenizer = self._host._tokenizer
        if is_given(tokenizer):
            return TokenizerChunker(tokenizer)
        return TextChunker(self._opts.chunking)

    async def _feed(self, inbox: Inbox) -> None:
        """LiveKit's input channel (read fresh per attempt: a retry replaces it) -> inbox."""
        async for item in self._input_ch:
            inbox.put_nowait((None, item))
        inbox.put_nowait((None, _INPUT_ENDED))

    async def _drive(
        self, machine: TurnMachine, inbox: Inbox, emitter: tts.AudioEmitter, stats: TurnStats
    ) -> None:
        """Feed the machine one inbox item at a time. The clock is a timer that posts a tick
        into the same inbox; it is re-armed only when the machine's deadline moves earlier
        (a tick that comes early changes nothing), so a chunk costs no timer of its own."""
        loop, timer, armed = asyncio.get_running_loop(), None, math.inf
        try:
            while not machine.finished:
                if inbox.empty():
                    deadline = machine.next_deadline()
                    if deadline is not None and deadline < armed:
                        if timer is not None:
                            timer.cancel()
                        timer = loop.call_at(deadline, inbox.put_nowait, (None, _TICK))
                        armed = deadline
                    self._idle = machine  # audio may take the direct path meanwhile
                    try:
                        context_id, item = await inbox.get()
                    finally:
                        self._idle = None
                else:  # a burst of chunks costs one wake-up of this task, not one each
                    context_id, item = inbox.get_nowait()
                if context_id is not None and context_id != machine.context_id:
                    continue  # an earlier context of this turn: already cancelled
                if item is _TICK:
                    armed = math.inf
                outputs = self._dispatch(machine, item)
                if len(outputs) == 1 and type(outputs[0]) is ops.Audio:
                    self._emit(outputs[0], emitter, stats)  # most items: one chunk of audio
                else:
                    await self._act(machine, outputs, emitter, stats)
        finally:
            if timer is not None:
                timer.cancel()

    def _direct(self, emitter: tts.AudioEmitter, stats: TurnStats, event: object) -> bool:
        """The one exception to "the loop drives the machine" (issue 19, measured in
        benchmarks/README.md: a task wake-up per chunk was the largest CPU cost per stream).
        While the loop waits on an empty inbox, an audio chunk of the current context is fed
        to the machine right here in the reader, exactly as the loop would feed it: nothing
        is queued ahead of it, and audio only ever leads STREAMING to STREAMING and ENDING
        to ENDING with outputs that need no waiting (audio, word timings, a warning), so the
        loop's state and deadline stay valid. Anything else returns False: the inbox."""
        machine = self._idle
        if (
            machine is None
            or type(event) is not protocol.Chunk
            or event.context_id != machine.context_id
            or not self._inbox.empty()
        ):
            return False
        for out in self._dispatch(machine, event):
            self._emit(out, emitter, stats)
        return True

    def _dispatch(self, machine: TurnMachine, item: Any) -> list[ops.Output]:
        """One inbox item into the machine. A bug of ours ends this turn, never the socket."""
        try:
            return self._feed_machine(machine, item)
        except (APIError, asyncio.CancelledError):
            raise
        except Exception as exc:
            logger.exception("handling a Cartesia turn event failed")
            self._act_now(machine.abort())
            error = APIError(f"handling a Cartesia event failed: {type(exc).__name__}")
            error.retryable = False
            raise error from exc

    def _feed_machine(self, machine: TurnMachine, item: Any) -> list[ops.Output]:
        now = _now()
        if type(item) is protocol.Chunk:
            return machine.server(item, now)
        if item is _TICK:
            return machine.tick(now, self._socket.last_frame_at)
        if item is _INPUT_ENDED:
            return machine.end_input(now)
        if isinstance(item, str):
            return machine.text(item, now)
        if isinstance(item, self._FlushSentinel):
            return machine.flush(now)
        if isinstance(item, APIConnectionError):
            return machine.socket_lost(item.message, now)
        if isinstance(item, APIError):  # the reader could not handle a frame: not retryable
            self._act_now(machine.abort())
            raise item
        return machine.server(item, now)

    async def _act(
        self,
        machine: TurnMachine,
        outputs: list[ops.Output],
        emitter: tts.AudioEmitter,
        stats: TurnStats,
    ) -> None:
        lost: APIConnectionError | None = None
        for out in outputs:
            if isinstance(out, ops.Send):
                if lost is None:
                    try:
                        if out.context_id != self._routed:
                            self._routed = out.context_id
                            route = self._socket.open_context(out.context_id, self._inbox)
                            route.direct = functools.partial(self._direct, emitter, stats)
                        await self._socket.send(out.frame)
                    except APIConnectionError as exc:
                        lost = exc  # the machine re-sends what it has not heard
            elif isinstance(out, ops.TextStarted):
                self._mark_started()  # LiveKit's TTFB starts when text is on the wire
                stats.first_text_sent_at = time.perf_counter()
            elif isinstance(out, ops.Reconnect):
                await self._reconnect(machine, out, emitter, stats)
                return
            elif isinstance(out, ops.Finished):
                stats.done = True
                if out.nothing_said and self._pushed_text.strip():
                    # e.g. only "...": LiveKit still wants audio
                    emitter.start_segment(segment_id=stats.context_id)
                    emitter.push(b"\x00\x00" * (self._opts.sample_rate // 100))
            elif isinstance(out, ops.Failed):
                raise _livekit_error(out.failure)
            else:
                self._emit(out, emitter, stats)
        if lost is not None and not machine.finished:
            await self._act(machine, machine.send_failed(lost.message, _now()), emitter, stats)

    def _emit(self, out: ops.Output, emitter: tts.AudioEmitter, stats: TurnStats) -> None:
        """An output that needs no waiting: audio, word timings, routing, warnings."""
        if isinstance(out, ops.Audio):
            if stats.first_audio_at is None:
                emitter.start_segment(segment_id=stats.context_id)
                stats.first_audio_at = time.perf_counter()
                stats.first_step_time_ms = out.step_time
                self._host.pool.mark_healthy()  # audio: the service works (closes the breaker)
            stats.audio_bytes += len(out.pcm)
            emitter.push(out.pcm)
        elif isinstance(out, ops.Words):
            for w in out.words:
                emitter.push_timed_transcript(
                    TimedString(text=w.text, start_time=w.start, end_time=w.end)
                )
        elif isinstance(out, ops.Phonemes):
            self.phoneme_timestamps.extend(out.items)
        elif isinstance(out, ops.Release | ops.Cancel | ops.Linger | ops.Warn | ops.Log):
            self._act_now([out])
        else:
            raise TypeError(f"{type(out).__name__} needs the turn's loop")

    def _act_now(self, outputs: list[ops.Output]) -> None:
        """The outputs that need no waiting (also from a ``finally`` of a cancelled task)."""
        for out in outputs:
            if isinstance(out, ops.Release | ops.Cancel | ops.Linger):
                if out.context_id != self._routed:
                    continue  # never routed: nothing was sent on it
                self._routed = None
                if isinstance(out, ops.Cancel):
                    self._socket.cancel(out.context_id)
                elif isinstance(out, ops.Linger):  # the turn is over: its inbox is not read
                    queued = [item for cid, item in _drain(self._inbox) if cid == out.context_id]
                    self._socket.linger(out.context_id, DONE_WAIT_S, queued)
                else:
                    self._socket.release(out.context_id, completed=out.completed)
                    if out.completed:
                        self._host.pool.mark_healthy()
            elif isinstance(out, ops.Warn):
                self._host._warn_once(out.key, out.message)
            elif isinstance(out, ops.Log):
                logger.warning(out.message, extra=out.extra)

    async def _reconnect(
        self, machine: TurnMachine, out: ops.Reconnect, emitter: tts.AudioEmitter, stats: TurnStats
    ) -> None:
        """A socket for the resumed context, with the backoff and budget of a fresh turn."""
        pool, options = self._host.pool, self._conn_options
        if out.replace_socket:
            pool.discard(self._socket)  # never hand a silent or broken socket out again
        for attempt in range(options.max_retry + 1):
            try:
                self._socket, _ = await pool.acquire(options.timeout, self._ticket)
                break
            except APIError as exc:
                if not exc.retryable or attempt == options.max_retry:
                    self._act_now(machine.abort())
                    raise
                logger.info(
                    "resume: connecting to Cartesia failed (%s); retrying",
                    exc.message,
                    extra={"attempt": attempt + 1},
                )
                await asyncio.sleep(options._interval_for_retry(attempt))  # LiveKit's backoff
        await self._act(machine, machine.connected(_now()), emitter, stats)


def _now() -> float:
    return time.monotonic()


def _drain(inbox: Inbox) -> list[tuple[str | None, Any]]:
    items = []
    while not inbox.empty():
        items.append(inbox.get_nowait())
    return items


def _livekit_error(failure: ops.Failure) -> APIError:
    """The machine's failure as the LiveKit error its retry logic and users expect."""
    if failure.kind == "server":
        return protocol.error_from_event(failure.event)
    if failure.kind == "timeout":
        return APITimeoutError(failure.message)
    if failure.kind == "input":  # LiveKit's retry would feed the same text to the same code
        error = APIError(failure.message)
        error.retryable = False
        return error
    return APIConnectionError(failure.message)
