"""One Cartesia WebSocket, one reader task, routing by ``context_id``.

Every stream (agent turn) opens a context on the shared socket and reads its own
``ContextEvents`` queue. Cancelling a context removes its queue at once, so late frames of
that context are dropped by the reader and can never reach a later turn; the socket stays
open. When the socket dies, every open context gets a retryable error; ``pool.SocketPool``
decides when to open the next one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from livekit.agents import APIConnectionError

from . import protocol
from .log import WarnOnce, logger

# An item in a context's queue: a parsed server event, or an error that ends the context.
ContextItem = Any


_EXPIRED = object()  # put by the watchdog timer: the waiting get() raises TimeoutError


class ContextEvents:
    """The server events of one context, in arrival order.

    The watchdog is one lazy timer per context, not one per ``get``: each get only moves
    the expiry later, and the timer, when it fires early, re-arms itself for the current
    expiry. An audio chunk then costs no timer at all (issue 12: CPU per stream)."""

    def __init__(self, context_id: str) -> None:
        self.context_id = context_id
        self._queue: asyncio.Queue[ContextItem] = asyncio.Queue()
        self.last_event_at = 0.0
        self._expires = 0.0
        self._waiting = False
        self._timer: asyncio.TimerHandle | None = None

    def put(self, item: ContextItem) -> None:
        self.last_event_at = time.monotonic()
        self._queue.put_nowait(item)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def post(self, item: ContextItem) -> None:
        """An item from this side (an error, a marker): does not count as server activity."""
        self._queue.put_nowait(item)

    async def get(self, timeout: float | None) -> ContextItem:
        """Next event; raises TimeoutError after ``timeout`` seconds (None = wait forever).

        Queued events are returned at once: ``wait_for`` would spend a task, a timer and
        three loop iterations per audio chunk, and let the reader (which routes a whole
        socket read at once) pile up chunks faster than this turn drains them."""
        if not self._queue.empty():
            return self._queue.get_nowait()
        if timeout is None:
            self.close()
            return await self._queue.get()
        loop = asyncio.get_running_loop()
        self._expires = loop.time() + timeout
        if self._timer is None or self._timer.when() > self._expires:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(self._expires, self._on_timer)
        self._waiting = True
        try:
            item = await self._queue.get()
        finally:
            self._waiting = False
        if item is _EXPIRED:
            raise TimeoutError
        return item

    def _on_timer(self) -> None:
        self._timer = None
        if not self._waiting:
            return  # the next get() arms it again
        loop = asyncio.get_running_loop()
        if loop.time() >= self._expires:
            self._queue.put_nowait(_EXPIRED)
        else:
            self._timer = loop.call_at(self._expires, self._on_timer)

    def close(self) -> None:
        """Stop the watchdog timer (the context is finished or no longer watched)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class CartesiaSocket:
    """A live WebSocket shared by many contexts."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, request_id: str | None) -> None:
        self.ws = ws
        self.request_id = request_id
        self.opened_at = time.monotonic()
        self.last_used_at = self.opened_at
        self.contexts: dict[str, ContextEvents] = {}
        self.stale_frames_dropped = 0
        self.contexts_served = 0
        self.contexts_completed = 0  # ended with done: proof the socket works
        self.on_close: Callable[[CartesiaSocket], None] | None = None
        self._warn_once = WarnOnce()
        self._background: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self._closing = False
        self.close_when_idle = False  # retired (options changed): close after the last context
        self._reader = asyncio.create_task(self._read(), name="cartesia-ws-reader")

    @property
    def is_open(self) -> bool:
        return not self.ws.closed and not self._reader.done() and not self._closing

    @property
    def idle_for(self) -> float:
        return 0.0 if self.contexts else time.monotonic() - self.last_used_at

    # ------------------------------------------------------------ contexts
    def open_context(self, context_id: str) -> ContextEvents:
        events = ContextEvents(context_id)
        self.contexts[context_id] = events
        self.contexts_served += 1
        self.last_used_at = time.monotonic()
        return events

    def release(self, context_id: str, *, completed: bool = False) -> None:
        """The context is finished (done received, or nothing was ever sent)."""
        self.contexts_completed += completed
        events = self.contexts.pop(context_id, None)
        if events is not None:
            events.close()
        self.last_used_at = time.monotonic()
        if self.close_when_idle and not self.contexts and not self._closing:
            self._closing = True
            self._spawn(self.aclose())

    def cancel(self, context_id: str) -> None:
        """Barge-in: forget the context now (late frames are dropped) and tell the server.

        Synchronous on purpose: it runs in the ``finally`` of a cancelled task, and the
        routing change must be in place before ``aclose()`` returns.
        """
        if not self.ws.closed and not self._reader.done():
            self._spawn(self._send_quietly(protocol.cancel_frame(context_id)))
        self.release(context_id)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def send(self, frame: str) -> None:
        if not self.is_open:
            raise APIConnectionError("Cartesia WebSocket is closed")
        try:
            async with self._send_lock:
                await self.ws.send_str(frame)
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
            raise APIConnectionError(f"sending to Cartesia failed ({type(exc).__name__})") from None
        self.last_used_at = time.monotonic()

    async def _send_quietly(self, frame: str) -> None:
        try:
            async with self._send_lock:
                await self.ws.send_str(frame)
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            pass  # the socket is gone; the server drops the context with it

    # ------------------------------------------------------------ reader
    async def _read(self) -> None:
        try:
            while True:
                msg = await self.ws.receive()
                if msg.type == aiohttp.WSMsgType.TEXT:
                    if self._route(msg.data):
                        # That turn has not taken its previous event yet: let the turns run
                        # before reading on, so a burst waits in the socket, not in memory.
                        await asyncio.sleep(0)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self._warn_once("binary", "Cartesia sent a binary frame; skipped")
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    break
        except Exception as exc:  # a reader must never die silently
            logger.warning("Cartesia reader stopped", extra={"error": type(exc).__name__})
        finally:
            self._closing = True
            owed = bool(self.contexts)
            if owed:
                logger.warning(
                    "Cartesia WebSocket closed with contexts open",
                    extra={"close_code": self.ws.close_code, "open_contexts": len(self.contexts)},
                )
            error = protocol.close_error(self.ws.close_code, while_owed=owed)
            for events in list(self.contexts.values()):
                events.post(error)
            self.contexts.clear()
            if self.on_close is not None:
                self.on_close(self)

    def _route(self, raw: str) -> bool:
        """Hand one server frame to its context; True if that context is behind (it still
        holds an earlier event)."""
        try:
            event = protocol.parse_event(raw)
        except protocol.MalformedFrame as exc:
            self._warn_once(f"malformed:{exc}", "skipped a malformed Cartesia frame", str(exc))
            return False
        if isinstance(event, protocol.UnknownEvent):
            self._warn_once(
                f"type:{event.type}", "skipped a Cartesia event of unknown type", event.type
            )
            return False
        context_id = getattr(event, "context_id", None)
        if context_id is None and isinstance(event, protocol.Error):
            # An error that names no context: every open context must hear about it.
            for events in list(self.contexts.values()):
                events.put(event)
            return False
        target = self.contexts.get(context_id) if context_id else None
        if target is None:
            self.stale_frames_dropped += 1  # a cancelled or finished context: never replayed
            return False
        target.put(event)
        return target.backlog > 1

    async def aclose(self) -> None:
        self._closing = True
        pending = [t for t in self._background if t is not asyncio.current_task()]
        await asyncio.gather(*pending, return_exceptions=True)  # e.g. a cancel frame in flight
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
