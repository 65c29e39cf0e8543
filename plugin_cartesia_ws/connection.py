"""One Cartesia WebSocket, one reader task, routing by ``context_id``; and the pool that keeps
one such socket warm per TTS instance.

Every stream (agent turn) opens a context on the shared socket and reads its own
``ContextEvents`` queue. Cancelling a context removes its queue at once, so late frames of
that context are dropped by the reader and can never reach a later turn; the socket stays
open. When the socket dies, every open context gets a retryable error and the pool opens a
new socket (in the background when nothing is waiting for it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from livekit.agents import APIConnectionError, APIError

from . import protocol
from .log import logger

# An item in a context's queue: a parsed server event, or an error that ends the context.
ContextItem = Any


class ContextEvents:
    """The server events of one context, in arrival order."""

    def __init__(self, context_id: str) -> None:
        self.context_id = context_id
        self._queue: asyncio.Queue[ContextItem] = asyncio.Queue()
        self.last_event_at = 0.0

    def put(self, item: ContextItem) -> None:
        self.last_event_at = time.monotonic()
        self._queue.put_nowait(item)

    def post(self, item: ContextItem) -> None:
        """An item from this side (an error, a marker): does not count as server activity."""
        self._queue.put_nowait(item)

    async def get(self, timeout: float | None) -> ContextItem:
        """Next event; raises TimeoutError after ``timeout`` seconds (None = wait forever)."""
        if timeout is None:
            return await self._queue.get()
        return await asyncio.wait_for(self._queue.get(), timeout)


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
        self.on_close: Callable[[CartesiaSocket], None] | None = None
        self._warned: set[str] = set()
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

    def release(self, context_id: str) -> None:
        """The context is finished (done received, or nothing was ever sent)."""
        self.contexts.pop(context_id, None)
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
                    self._route(msg.data)
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

    def _route(self, raw: str) -> None:
        try:
            event = protocol.parse_event(raw)
        except protocol.MalformedFrame as exc:
            self._warn_once(f"malformed:{exc}", "skipped a malformed Cartesia frame", str(exc))
            return
        if isinstance(event, protocol.UnknownEvent):
            self._warn_once(f"type:{event.type}", "skipped a Cartesia event of unknown type", event.type)
            return
        context_id = getattr(event, "context_id", None)
        if context_id is None and isinstance(event, protocol.Error):
            # An error that names no context: every open context must hear about it.
            for events in list(self.contexts.values()):
                events.put(event)
            return
        events = self.contexts.get(context_id) if context_id else None
        if events is None:
            self.stale_frames_dropped += 1  # a cancelled or finished context: never replayed
            return
        events.put(event)

    def _warn_once(self, key: str, message: str, detail: str = "") -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, extra={"detail": detail})

    async def aclose(self) -> None:
        self._closing = True
        pending = [t for t in self._background if t is not asyncio.current_task()]
        await asyncio.gather(*pending, return_exceptions=True)  # e.g. a cancel frame in flight
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


Connect = Callable[[float], Awaitable[CartesiaSocket]]


class SocketPool:
    """Keeps one socket warm: opened by ``prewarm()`` or first use, reused by every turn,
    refreshed before Cartesia's idle close, replaced in the background when it dies idle."""

    def __init__(self, connect: Connect, *, idle_refresh_s: float, connect_timeout: float = 10.0):
        self._connect = connect
        self._idle_refresh_s = idle_refresh_s
        self._connect_timeout = connect_timeout
        self._socket: CartesiaSocket | None = None
        self._connecting: asyncio.Task[CartesiaSocket] | None = None
        self._retired: set[CartesiaSocket] = set()
        self._closed = False
        self.sockets_opened = 0
        self.last_acquire_time = 0.0
        self.last_reused = False

    @property
    def socket(self) -> CartesiaSocket | None:
        return self._socket

    def prewarm(self) -> None:
        """Start connecting now so the first turn does not pay the handshake."""
        if self._closed or self._connecting is not None:
            return
        if self._socket is not None and self._socket.is_open:
            return
        self._start_connect(self._connect_timeout)

    def _start_connect(self, timeout: float) -> asyncio.Task[CartesiaSocket]:
        task = asyncio.create_task(self._open(timeout), name="cartesia-ws-connect")
        self._connecting = task
        task.add_done_callback(self._connect_finished)
        return task

    def _connect_finished(self, task: asyncio.Task[CartesiaSocket]) -> None:
        if self._connecting is task:
            self._connecting = None
        if not task.cancelled() and task.exception() is not None:
            logger.debug("Cartesia connect failed", extra={"error": str(task.exception())})

    async def _open(self, timeout: float) -> CartesiaSocket:
        socket = await self._connect(timeout)
        self.sockets_opened += 1
        if self._closed:
            await socket.aclose()
            raise APIConnectionError("TTS closed while connecting")
        socket.on_close = self._socket_closed
        self._socket = socket
        return socket

    def _socket_closed(self, socket: CartesiaSocket) -> None:
        """Replace a socket that died idle before the next turn needs it."""
        if socket is not self._socket:
            return
        self._socket = None
        if not self._closed and socket.contexts_served > 0 and self._connecting is None:
            logger.debug("Cartesia socket closed while idle; reconnecting in the background")
            self._start_connect(self._connect_timeout)

    async def acquire(self, timeout: float) -> tuple[CartesiaSocket, bool]:
        """The warm socket (reused=True, also when joining a prewarm under way) or a fresh
        one; raises APIError on failure."""
        if self._closed:
            raise APIConnectionError("TTS is closed")
        started = time.perf_counter()
        socket = self._socket
        if socket is not None and socket.is_open and socket.idle_for > self._idle_refresh_s:
            logger.debug("refreshing an idle Cartesia socket before the server closes it")
            self._retire(socket)
            socket = None
        if socket is not None and socket.is_open:
            reused = True
        elif self._connecting is not None:  # prewarm or background reconnect under way
            socket = await asyncio.shield(self._connecting)
            reused = True  # not opened for this turn; it only waits for the rest
        else:
            socket = await asyncio.shield(self._start_connect(timeout))
            reused = False
        self.last_acquire_time = time.perf_counter() - started
        self.last_reused = reused
        return socket, reused

    def _retire(self, socket: CartesiaSocket) -> None:
        if socket is self._socket:
            self._socket = None
        self._retired.add(socket)
        task = asyncio.create_task(socket.aclose())
        task.add_done_callback(lambda _t: self._retired.discard(socket))

    def invalidate(self) -> None:
        """Options that live on the socket (API version) changed: the next turn reconnects;
        contexts still running on the old socket finish there."""
        socket, self._socket = self._socket, None
        if socket is None:
            return
        if socket.contexts:
            socket.close_when_idle = True
        else:
            self._retire(socket)

    async def aclose(self) -> None:
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        sockets = [s for s in (self._socket, *self._retired) if s is not None]
        self._socket = None
        await asyncio.gather(*(s.aclose() for s in sockets), return_exceptions=True)
