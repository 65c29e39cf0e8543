"""``WS /tts/websocket``: one ``SocketSession`` per client socket, around the pure
``ContextTable``.

The session reads frames and feeds them to the table; it runs one worker task per context
(render, then release chunks on the latency model's schedule) and one timer task for
buffering deadlines and context expiry; faults from the state's book act on the way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from .contexts import ContextTable, Finish, FlushDone, Phase, Send, Speak, StopNow, Wake
from .fault_actions import FaultActions
from .faults import ContextFaults, Fault, rule_changes
from .handshake import STATE_KEY, check_handshake
from .messages import chunk_event, done_event, flush_done_event
from .pacing import plan_generation, timing_events
from .state import EmulatorState

log = logging.getLogger("plugin_cartesia_ws.emulator")


async def websocket_endpoint(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    key, version = check_handshake(request, state)
    socket_faults = state.faults.take_for_socket(key)
    slow = next((f for f in socket_faults if f.kind == "slow_handshake"), None)
    if slow is not None:
        await asyncio.sleep(slow.seconds)  # the fault itself: a handshake this slow
    refuse = next((f for f in socket_faults if f.kind == "refuse"), None)
    if refuse is not None:
        return web.Response(status=refuse.status, text=refuse.message)
    limit = state.config.max_sockets_per_key
    if limit is not None and state.open_sockets_by_key[key] >= limit:
        raise web.HTTPTooManyRequests(text="Too many open WebSocket connections for this key.")
    request_id = str(uuid.uuid4())
    ws = web.WebSocketResponse(compress=True, heartbeat=None, max_msg_size=8 * 1024 * 1024)
    ws.headers["X-Request-Id"] = request_id
    try:
        await ws.prepare(request)
    except ConnectionResetError:
        # the client left during the handshake (e.g. a worker shutting down): answer with a
        # plain response, whose write aiohttp's server drops quietly on a closed transport
        return web.Response(status=499)
    idle_fault = next((f for f in socket_faults if f.kind == "idle_close"), None)
    idle_timeout = idle_fault.seconds if idle_fault else state.config.idle_timeout_s
    session = SocketSession(state, request, ws, key, version, request_id, idle_timeout)
    await session.run()
    return ws


class SocketSession(FaultActions):
    """One client socket: reads frames, runs the contexts' generation workers."""

    def __init__(
        self,
        state: EmulatorState,
        request: web.Request,
        ws: web.WebSocketResponse,
        key: str,
        version: str,
        request_id: str,
        idle_timeout_s: float,
    ) -> None:
        self.state = state
        self.request = request
        self.ws = ws
        self.key = key
        self.idle_timeout_s = idle_timeout_s
        self.socket_id = state.next_socket_id()
        state.socket_versions[self.socket_id] = version
        self.table = ContextTable(
            version=version,
            catalogue=state.config.catalogue,
            rules=state.config.rules,
            gate=state.gate_for(key),
            socket_id=self.socket_id,
            request_id=request_id,
        )
        self.loop = asyncio.get_running_loop()
        self.send_lock = asyncio.Lock()
        self.workers: dict[str, asyncio.Task[None]] = {}
        self.wakeups: dict[str, asyncio.Event] = {}
        self.stops: dict[str, asyncio.Event] = {}
        self.faults: dict[str, ContextFaults] = {}
        self.timer_changed = asyncio.Event()
        self.rng = random.Random(state.config.latency.seed + self.socket_id)
        self.closed = False
        self.stalled: set[str] = set()  # stall_after fired: nothing more for these contexts

    async def run(self) -> None:
        self.state.socket_opened(self.key)
        timer = asyncio.create_task(self._timer())
        try:
            while not self.ws.closed:
                try:
                    msg = await self.ws.receive(timeout=self.idle_timeout_s)
                except TimeoutError:
                    if self.table.busy:
                        continue  # a socket streaming audio (or holding a done) is not idle
                    log.info("closing idle socket after %.1fs", self.idle_timeout_s)
                    self.state.stats["idle_closes"] += 1
                    self.state.changed()
                    await self.ws.close(code=1000, message=b"idle timeout")
                    break
                if msg.type == WSMsgType.TEXT:
                    self._on_frame(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._on_frame(msg.data)
                else:  # CLOSE, CLOSING, CLOSED, ERROR
                    break
        finally:
            self.closed = True
            timer.cancel()
            for task in self.workers.values():
                task.cancel()
            await asyncio.gather(timer, *self.workers.values(), return_exceptions=True)
            self.table.close()
            self.state.socket_closed(self.key)

    # ------------------------------------------------------------ input
    def _on_frame(self, raw: str | bytes) -> None:
        now = self.loop.time()
        context_id, parsed = self._peek(raw)
        if context_id is None:
            self._apply(self.table.receive(raw, now))
            self.state.changed()
            return
        record = self.state.record_for(context_id, self.key, self.socket_id)
        record.received.append(parsed)
        if context_id not in self.faults and not parsed.get("cancel"):
            taken = self.state.faults.take_for_context(self.key, context_id)
            self.faults[context_id] = ContextFaults(taken)
            if changes := rule_changes(taken):
                self.table.override_rules(context_id, **changes)
        faults = self.faults.get(context_id, ContextFaults())
        if parsed.get("cancel") is True:
            record.cancel_received_at = time.monotonic()
            if faults.has("stale_frames"):
                self.state.changed()
                return  # this server "misses" the cancel: stale frames follow
        reset = faults.first("reset")
        if reset is not None and len(record.received) >= reset.after_inputs:
            self._reset(context_id)
            return
        billed = self.table.billed_chars[context_id]
        self._apply(self.table.receive(raw, now))
        self.state.bill(record, self.table.billed_chars[context_id] - billed)
        self._sync_phase(context_id)

    def _sync_phase(self, context_id: str) -> None:
        """The record shows the context's lifecycle phase (open, ..., expired)."""
        phase = self.table.phase_of(context_id)
        record = self.state.records.get(context_id)
        if phase is not None and record is not None:
            record.phase = phase.value
        self.state.changed()

    @staticmethod
    def _peek(raw: str | bytes) -> tuple[str | None, dict[str, Any]]:
        try:
            parsed = json.loads(raw)
        except ValueError:
            return None, {}
        if isinstance(parsed, dict) and isinstance(parsed.get("context_id"), str):
            return parsed["context_id"], parsed
        return None, {}

    def _apply(self, outputs: list[Any]) -> None:
        for out in outputs:
            if isinstance(out, Send):
                self._spawn_send(out.event)
            elif isinstance(out, Wake):
                self._wake(out.context_id)
            elif isinstance(out, StopNow):
                self.stops.setdefault(out.context_id, asyncio.Event()).set()
        self.timer_changed.set()

    def _spawn_send(self, event: dict) -> None:
        task = asyncio.create_task(self._send(event))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    def _wake(self, context_id: str) -> None:
        if context_id in self.stalled:
            return  # a stalled context sends nothing more, not even a flush_done
        self.wakeups.setdefault(context_id, asyncio.Event()).set()
        worker = self.workers.get(context_id)
        if worker is None or worker.done():
            self.workers[context_id] = asyncio.create_task(self._worker(context_id))

    async def _timer(self) -> None:
        """Buffer deadlines (max_buffer_delay_ms) and context expiry."""
        while True:
            deadline = self.table.next_deadline()
            self.timer_changed.clear()
            timeout = None if deadline is None else max(0.0, deadline - self.loop.time())
            try:
                await asyncio.wait_for(self.timer_changed.wait(), timeout)
            except TimeoutError:
                self._apply(self.table.poll(self.loop.time()))
                for context_id in self.table.contexts:
                    self._sync_phase(context_id)

    # ------------------------------------------------------------ output
    async def _send(self, event: dict) -> bool:
        if self.ws.closed:
            return False
        async with self.send_lock:
            try:
                await self.ws.send_str(json.dumps(event))
            except (ConnectionError, RuntimeError):
                return False
        context_id = event.get("context_id")
        if isinstance(context_id, str):
            self.state.record_event(context_id, event)
        return True

    async def _pause(self, context_id: str, seconds: float) -> bool:
        """Wait, but wake early (returning True) when the context must stop now."""
        stop = self.stops.setdefault(context_id, asyncio.Event())
        if seconds <= 0:
            return stop.is_set()
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _worker(self, context_id: str) -> None:
        """Runs one context's queued work in input order."""
        wake = self.wakeups.setdefault(context_id, asyncio.Event())
        faults = self.faults.setdefault(context_id, ContextFaults())
        while not self.closed:
            item = self.table.next_work(context_id)
            if item is None:
                if context_id not in self.table.contexts:
                    return
                wake.clear()
                if self.table.has_pending_work(context_id):
                    continue
                if await self._idle(context_id, wake, faults):
                    return
                continue
            if isinstance(item, Speak):
                keep_going = await self._speak(context_id, item, faults)
                if not keep_going:
                    return
            elif isinstance(item, FlushDone):
                await self._send(flush_done_event(context_id, item.flush_id))
            elif isinstance(item, Finish):
                await self._finish(context_id, faults)
            self.table.work_finished(context_id, self.loop.time())
            stop = self.stops.get(context_id)
            if stop is not None:
                stop.clear()
            self.timer_changed.set()
            self._sync_phase(context_id)

    async def _finish(self, context_id: str, faults: ContextFaults) -> None:
        """The context's done, as late as its rules say; none once a cancel came meanwhile
        (done_after_cancel queues its own)."""
        cancelled_before = self.table.phase_of(context_id) is Phase.CANCELLED
        delay = self.table.rules_of(context_id).done_delay(self.rng)
        if delay > 0:
            self.state.record_for(context_id, self.key, self.socket_id).done_delay_s = delay
            self.state.changed()
            if await self._pause(context_id, delay):
                return
        cancelled = self.table.phase_of(context_id) is Phase.CANCELLED
        if not faults.has("no_done") and (cancelled_before or not cancelled):
            await self._send(done_event(context_id))

    async def _idle(self, context_id: str, wake: asyncio.Event, faults: ContextFaults) -> bool:
        """Wait for more work; True when a ``drop_idle`` fault dropped the socket meanwhile."""
        drop = faults.first("drop_idle")
        record = self.state.record_for(context_id, self.key, self.socket_id)
        if drop is None or record.chunks_sent < drop.after_chunks:
            await wake.wait()
            return False
        try:
            await asyncio.wait_for(wake.wait(), drop.seconds)
        except TimeoutError:
            faults.faults.remove(drop)
            return await self._fire(context_id, Fault("drop"))
        return False

    async def _speak(self, context_id: str, item: Speak, faults: ContextFaults) -> bool:
        """Render, then release chunks on the latency model's schedule. False = stop worker."""
        ctx = self.table.contexts.get(context_id)
        if ctx is None:
            return False
        req = ctx.request
        record = self.state.record_for(context_id, self.key, self.socket_id)
        started = self.loop.time()
        rendering = await self.state.render(
            item.text, sample_rate=req.sample_rate, speed=req.speed, language=req.language
        )
        volume = float((req.params.get("generation_config") or {}).get("volume") or 1.0)
        if volume != 1.0:
            rendering = self.state.scale_volume(rendering, volume)
        stall = faults.first("stall")
        first_audio = self.state.config.latency.first_audio_delay(self.rng)
        if stall is not None and record.chunks_sent == 0:
            first_audio += stall.seconds
        plan = plan_generation(rendering, req.encoding, self.state.config.latency, first_audio)
        offset = ctx.audio_seconds
        inject = faults.first("inject")
        if inject is not None and record.chunks_sent == 0:
            await self._inject(context_id, inject.frames)

        def timings(chunk: Any) -> list[dict]:
            return timing_events(
                chunk,
                context_id,
                item.flush_id,
                offset,
                words=req.add_timestamps,
                phonemes=req.add_phoneme_timestamps,
            )

        # Orders Cartesia does not document: all of a generation's timestamps before its
        # audio, or only after it; by default each chunk's right after that chunk.
        order = next((k for k in ("timings_first", "timings_per_generation") if faults.has(k)), "")
        later = [e for chunk in plan for e in timings(chunk)] if order else []
        if order == "timings_first":
            if not await self._send_all(later):
                return False
            later = []
        for chunk in plan:
            if self.table.should_stop(context_id):
                break
            if await self._pause(context_id, started + chunk.release_s - self.loop.time()):
                break
            if not await self._send(
                chunk_event(context_id, chunk.audio, chunk.step_time_ms, item.flush_id)
            ):
                return False
            record.add_audio(chunk.audio, self.state.config.record_audio)
            if not order and not await self._send_all(timings(chunk)):
                return False
            if await self._pause_fault(context_id, faults, record.chunks_sent):
                break
            fault = faults.due_after_chunk(record.chunks_sent)
            if fault is not None and await self._fire(context_id, fault):
                return False
        if not await self._send_all(later):
            return False
        ctx.audio_seconds = offset + rendering.duration
        return True

    async def _send_all(self, events: list[dict]) -> bool:
        for event in events:
            if not await self._send(event):
                return False
        return True
