"""One agent turn = one Cartesia context on the shared socket: the I/O loop around
``turn.TurnMachine``.

The machine holds every rule of the turn; this loop is its one owner. It waits on one inbox
(LiveKit's text, moved in by ``push_text`` itself; the context's server events, posted by the
socket's reader; the socket's loss; its clock's ticks), feeds each item to the machine, and
carries out its outputs: frames to the socket, audio and word timings to LiveKit, a socket to
resume on, a context left to linger for its ``done``. One documented exception: ``_direct``.
The machine's failures become LiveKit's errors here, at the edge.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from typing import Any

from livekit.agents import APIConnectionError, APIConnectOptions, APIError, tts, utils
from livekit.agents.voice.io import TimedString

from . import protocol
from . import turn_outputs as ops
from .breaker import Ticket
from .connection import CartesiaSocket, Inbox
from .log import logger
from .options import TurnHost
from .turn import TIMING_STATES, TurnMachine
from .turn_stats import TurnStats, log_turn

DONE_WAIT_S = 5.0  # a context with every sample in waits this long for its done


_INPUT_ENDED = object()
_TICK = object()  # the machine's deadline passed
_TIMINGS = (protocol.Timestamps, protocol.PhonemeTimestamps)
_now = time.monotonic


class SynthesizeStream(tts.SynthesizeStream):
    """One agent turn = one Cartesia context on the shared socket.

    ticket: the request this turn belongs to, for the breaker (admitted once, then every
        retry attempt connects); a stream is its own request unless a ChunkedStream runs it.
    paced: False for ``synthesize()``, which has its whole text at once.
    """

    def __init__(
        self,
        *,
        tts: tts.TTS,
        host: TurnHost,
        conn_options: APIConnectOptions,
        ticket: Ticket | None = None,
        paced: bool = True,
    ) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._host = host  # the same object as ``tts``, seen through what a turn needs
        self._opts = host._options_snapshot()
        self._ticket = ticket or Ticket()
        self._paced = paced
        self.stats: TurnStats | None = None
        self.phoneme_timestamps: list[tuple[str, float, float]] = []
        self._socket: CartesiaSocket  # the current socket, and the context routed on it
        self._routed: str | None = None
        self._idle: TurnMachine | None = None  # the machine, while its loop waits
        self._inbox: Inbox
        self._text_inbox: Inbox | None = None  # where LiveKit's input goes, while a turn runs

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
        config = self._opts.turn_config(self._conn_options.timeout, self._paced)
        chunker = self._opts.chunker(self._host._tokenizer)
        machine = TurnMachine(config, chunker, stats.context_id, _now())
        self._socket, self._inbox = socket, Inbox()
        self._text_inbox = self._inbox
        self._forward_input()  # what came before this attempt (a retry: all of it, replayed)
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
            self._text_inbox = None
            log_turn(stats)

    # LiveKit's input goes through its channel as always (its retry replays a fresh one), and
    # on into the inbox in the caller's own call: no task hop per token.
    def push_text(self, token: str) -> None:
        super().push_text(token)
        self._forward_input()

    def flush(self) -> None:
        super().flush()  # (end_input() calls it too)
        self._forward_input()

    def end_input(self) -> None:
        super().end_input()
        self._forward_input()

    def _forward_input(self) -> None:
        inbox = self._text_inbox
        if inbox is None:
            return
        channel = self._input_ch
        while not channel.empty():
            inbox.put_nowait((None, channel.recv_nowait()))
        if channel.closed:
            self._text_inbox = None  # nothing more can come
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
                elif outputs:  # (most tokens make none)
                    await self._act(machine, outputs, emitter, stats)
        finally:
            if timer is not None:
                timer.cancel()

    def _direct(self, emitter: tts.AudioEmitter, stats: TurnStats, event: object) -> bool:
        """The one exception to "the loop drives the machine", for CPU (a task wake-up per
        server event was the largest cost per stream): while the loop waits on an empty inbox,
        audio after the first and word timings of the current context go to the machine here,
        in the reader. Neither changes the state and their outputs need no waiting, so the
        loop's view stays valid (a deadline that moved later only makes a tick come early,
        which changes nothing). Anything else returns False: the inbox."""
        machine = self._idle
        if machine is None or self._inbox.items:
            return False
        kind = type(event)
        if kind is protocol.Chunk:
            if not machine.audio_started:  # the first audio may release held text: the loop
                return False
        elif kind not in _TIMINGS or machine.state not in TIMING_STATES:
            return False
        if event.context_id != machine.context_id:  # type: ignore[attr-defined]
            return False
        try:
            outputs = machine.server(event, time.monotonic())
        except Exception as exc:
            raise self._bug(machine, exc) from exc
        for out in outputs:
            self._emit(out, emitter, stats)
        return True

    def _dispatch(self, machine: TurnMachine, item: Any) -> list[ops.Output]:
        """One inbox item into the machine. A bug of ours ends this turn, never the socket."""
        try:
            if isinstance(item, str):  # first: the items this loop gets most
                return machine.text(item, _now())
            return self._feed_machine(machine, item)
        except (APIError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise self._bug(machine, exc) from exc

    def _bug(self, machine: TurnMachine, exc: Exception) -> APIError:  # (while handling exc)
        logger.exception("handling a Cartesia turn event failed")
        self._act_now(machine.abort())
        return APIError(f"handling a Cartesia event failed: {type(exc).__name__}", retryable=False)

    def _feed_machine(self, machine: TurnMachine, item: Any) -> list[ops.Output]:
        now = _now()
        if type(item) is protocol.Chunk:
            return machine.server(item, now)
        if item is _TICK:
            return machine.tick(now, self._socket.last_frame_at)
        if item is _INPUT_ENDED:
            return machine.end_input(now)
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
                raise protocol.turn_error(out.failure.kind, out.failure.message, out.failure.event)
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
                elif isinstance(out, ops.Linger):  # its events already queued go with it
                    queued = self._inbox.take(out.context_id)
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
        pool = self._host.pool
        if out.replace_socket:
            pool.discard(self._socket)  # never hand a silent or broken socket out again
        try:
            self._socket, _ = await pool.acquire_retrying(self._conn_options, self._ticket)
        except APIError:
            self._act_now(machine.abort())
            raise
        await self._act(machine, machine.connected(_now()), emitter, stats)
