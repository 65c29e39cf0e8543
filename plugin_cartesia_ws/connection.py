"""One Cartesia WebSocket, one reader task, routing by ``context_id``.

Every stream (agent turn) opens a context on the shared socket; the reader posts its
events, tagged with the context id, into the turn's inbox (one queue per turn, shared by its
contexts and its text input): the turn's own loop is the one task that acts on them, but
for audio while that loop waits (``ContextEvents.direct``).
Cancelling a context removes its route at once, so late frames of that context are dropped
by the reader and can never reach a later turn; the socket stays open. A context whose
listener has every sample but no ``done`` yet lingers here until it comes (or is cancelled
quietly after a bound). When the socket dies, every open context gets a retryable error;
``pool.SocketPool`` decides when to open the next one.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from livekit.agents import APIConnectionError, APIError

from . import protocol
from .log import WarnOnce, logger

# An item in a context's queue: a parsed server event, or an error that ends the context.
ContextItem = Any
InboxItem = tuple[str | None, ContextItem]  # (context id, item); None: not a socket's
_TEXT = aiohttp.WSMsgType.TEXT


class Inbox:
    """One turn's queue: anyone posts, the turn's loop is its one reader. An asyncio.Queue
    without what a single reader never needs (a bound, putters, task accounting), since
    every LLM token and most server events pass through it."""

    __slots__ = ("items", "_waiter")

    def __init__(self) -> None:
        self.items: deque[InboxItem] = deque()  # (read-only outside: empty or not)
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: InboxItem) -> None:
        self.items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> InboxItem:
        return self.items.popleft()  # (IndexError when empty)

    async def get(self) -> InboxItem:
        while not self.items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.items.popleft()

    def empty(self) -> bool:
        return not self.items

    def take(self, context_id: str) -> list[ContextItem]:
        """Take a context's items out; the others stay, in order."""
        taken = [item for cid, item in self.items if cid == context_id]
        self.items = deque(entry for entry in self.items if entry[0] != context_id)
        return taken


class ContextEvents:
    """The server events of one context, in arrival order, into its turn's inbox; or, once
    it lingers, into nothing but the wait for its ``done``."""

    def __init__(self, context_id: str, inbox: Inbox | None = None) -> None:
        self.context_id = context_id
        self.inbox: Inbox = inbox if inbox is not None else Inbox()
        self.lingering: asyncio.TimerHandle | None = None
        # the turn's synchronous handler, tried first; False leaves the event to the inbox
        # (``stream.SynthesizeStream._direct``: audio while the turn's loop waits)
        self.direct: Callable[[ContextItem], bool] | None = None

    def put(self, item: ContextItem) -> None:
        self.inbox.put_nowait((self.context_id, item))

    post = put  # an error from this side (the socket closed) travels the same way


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
        self.last_frame_at = self.opened_at  # any frame of any context: the socket is alive
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
    def open_context(self, context_id: str, inbox: Inbox | None = None) -> ContextEvents:
        events = ContextEvents(context_id, inbox)
        self.contexts[context_id] = events
        self.contexts_served += 1
        self.last_used_at = time.monotonic()
        return events

    def release(self, context_id: str, *, completed: bool = False) -> None:
        """The context is finished (done received, or nothing was ever sent)."""
        self.contexts_completed += completed
        events = self.contexts.pop(context_id, None)
        if events is not None and events.lingering is not None:
            events.lingering.cancel()
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

    def linger(self, context_id: str, bound_s: float, queued: list[ContextItem]) -> None:
        """The turn has every sample of the context but no ``done``: keep the route until
        the ``done`` (then release it as completed) or ``bound_s`` (then cancel it).
        ``queued``: its events already read but not handled by the turn (a ``done`` there)."""
        events = self.contexts.get(context_id)
        if events is None:
            return
        loop = asyncio.get_running_loop()
        events.lingering = loop.call_later(bound_s, self._linger_expired, context_id, bound_s)
        for item in queued:
            if context_id in self.contexts:
                self._lingered(events, item)

    def _linger_expired(self, context_id: str, bound_s: float) -> None:
        if context_id in self.contexts:
            logger.info(
                "Cartesia sent no done for context %s within %.0f s of its last audio; "
                "cancelled it (nothing was lost: all of its audio had arrived)",
                context_id,
                bound_s,
                extra={"context_id": context_id},
            )
            self.cancel(context_id)

    def _lingered(self, events: ContextEvents, event: object) -> None:
        if isinstance(event, protocol.Done | protocol.Error):
            if events.lingering is not None:
                events.lingering.cancel()
            self.release(events.context_id, completed=isinstance(event, protocol.Done))
        elif isinstance(event, protocol.Chunk) and event.data:
            self._warn_once(
                "late-audio",
                "Cartesia sent audio after its receipts said all had arrived; dropped",
                events.context_id,
            )

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
                if msg.type is _TEXT:
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
            owed = any(events.lingering is None for events in self.contexts.values())
            if owed:
                logger.warning(
                    "Cartesia WebSocket closed with contexts open",
                    extra={"close_code": self.ws.close_code, "open_contexts": len(self.contexts)},
                )
            error = protocol.close_error(self.ws.close_code, while_owed=owed)
            for events in list(self.contexts.values()):
                if events.lingering is not None:
                    events.lingering.cancel()
                else:
                    events.post(error)
            self.contexts.clear()
            if self.on_close is not None:
                self.on_close(self)

    def _route(self, raw: str) -> None:
        self.last_frame_at = time.monotonic()
        try:
            event = protocol.parse_event(raw)
        except protocol.MalformedFrame as exc:
            self._warn_once(f"malformed:{exc}", "skipped a malformed Cartesia frame", str(exc))
            return
        if isinstance(event, protocol.UnknownEvent):
            self._warn_once(
                f"type:{event.type}", "skipped a Cartesia event of unknown type", event.type
            )
            return
        context_id = getattr(event, "context_id", None)
        if context_id is None and isinstance(event, protocol.Error):
            # An error that names no context: every open context must hear about it.
            for events in list(self.contexts.values()):
                events.put(event)
            return
        target = self.contexts.get(context_id) if context_id else None
        if target is None:
            self.stale_frames_dropped += 1  # a cancelled or finished context: never replayed
            return
        if target.lingering is not None:
            self._lingered(target, event)
            return
        if target.direct is not None:
            try:
                if target.direct(event):
                    return
            except APIError as exc:  # the turn's bug ends the turn, never the reader
                target.put(exc)
                return
        target.put(event)

    async def aclose(self) -> None:
        self._closing = True
        pending = [t for t in self._background if t is not asyncio.current_task()]
        await asyncio.gather(*pending, return_exceptions=True)  # e.g. a cancel frame in flight
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
