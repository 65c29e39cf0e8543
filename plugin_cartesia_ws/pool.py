"""Keeps one Cartesia socket warm per TTS instance, and decides when to (re)connect.

- ``prewarm()`` or the first turn opens it; every turn reuses it.
- An idle socket is refreshed before Cartesia's 5-minute idle close, in the background, so a
  turn never finds a dead one; one that died idle is replaced in the background too.
- Who may connect when is ``breaker.Breaker`` (pure): every attempt of an admitted request
  connects (LiveKit's retry loop owns a request); after repeated failures new requests fail
  fast for a while (no reconnect storm, a fast clear error for ``tts.FallbackAdapter``);
  background connects back off with jitter. Sockets that die right after opening count as
  failures too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from livekit.agents import (
    APIConnectionError,
    APIConnectOptions,
    APIError,
    APIStatusError,
    APITimeoutError,
)

from .breaker import Breaker, ReconnectPolicy, Ticket
from .connection import CartesiaSocket
from .log import logger
from .protocol import CartesiaStatusError, is_fatal

Connect = Callable[[float], Awaitable[CartesiaSocket]]


class _Superseded(APIConnectionError):
    """A connect finished after ``invalidate()``: its socket has the old options."""


class SocketPool:
    def __init__(
        self,
        connect: Connect,
        *,
        idle_refresh_s: float,
        may_reconnect: Callable[[], bool] = lambda: True,
        connect_timeout: float = 10.0,
        policy: ReconnectPolicy | None = None,
    ) -> None:
        self._connect = connect
        self._may_reconnect = may_reconnect  # False once the HTTP session we used is closed
        self._idle_refresh_s = idle_refresh_s
        self._connect_timeout = connect_timeout
        self.breaker = Breaker(policy or ReconnectPolicy())
        self._socket: CartesiaSocket | None = None
        self._connecting: asyncio.Task[CartesiaSocket] | None = None
        self._retired: set[CartesiaSocket] = set()
        self._refresh_timer: asyncio.TimerHandle | None = None
        self._idle_refreshes = 0
        self._epoch = 0  # bumped by invalidate(): connects of an older epoch are stale
        self._closed = False
        self.last_error: APIError | None = None
        self._reported: str | None = None  # the fatal cause logged last (logged once)
        self.sockets_opened = 0
        self.last_acquire_time = 0.0
        self.last_reused = False

    @property
    def socket(self) -> CartesiaSocket | None:
        return self._socket

    @property
    def policy(self) -> ReconnectPolicy:
        return self.breaker.policy

    @property
    def failures(self) -> int:
        """Consecutive failed connection attempts; reset by a completed context."""
        return self.breaker.failures

    @property
    def breaker_open(self) -> bool:
        return self.breaker.is_open(time.monotonic())

    # ------------------------------------------------------------ connecting
    def prewarm(self) -> None:
        """Start connecting now so the first turn does not pay the handshake."""
        if self._closed or self._connecting is not None:
            return
        if not self.breaker.may_connect_in_background(time.monotonic()):
            return
        if self._socket is not None and self._socket.is_open:
            return
        self._start_connect(self._connect_timeout)

    async def check(self, timeout: float) -> APIError | None:
        """Open the socket if it is not open (as ``prewarm()``) and wait for it: None once it
        is open, else the error that stopped it (already logged). Never raises an APIError."""
        started = time.perf_counter()
        while self._socket is None or not self._socket.is_open:
            self.prewarm()
            connecting = self._connecting
            if connecting is None:  # closed, or backing off after a failure
                return self.last_error or APIConnectionError("TTS is closed")
            remaining = timeout - (time.perf_counter() - started)
            try:
                await asyncio.wait_for(asyncio.shield(connecting), max(remaining, 0))
            except _Superseded:
                continue
            except APIError as exc:
                return exc
            except TimeoutError:
                return APITimeoutError(f"connecting to Cartesia timed out after {timeout:.1f}s")
        return None

    def _start_connect(self, timeout: float) -> asyncio.Task[CartesiaSocket]:
        task = asyncio.create_task(self._open(timeout), name="cartesia-ws-connect")
        self._connecting = task
        task.add_done_callback(self._connect_finished)
        return task

    def _connect_finished(self, task: asyncio.Task[CartesiaSocket]) -> None:
        if self._connecting is task:
            self._connecting = None
        if not task.cancelled():
            task.exception()  # retrieved: a failed background connect is logged in _failed

    async def _open(self, timeout: float) -> CartesiaSocket:
        epoch = self._epoch
        try:
            socket = await self._connect(timeout)
        except APIError as exc:
            self._failed(exc)
            raise
        self.sockets_opened += 1
        if self._closed:
            await socket.aclose()
            raise APIConnectionError("TTS closed while connecting")
        if epoch != self._epoch:
            await socket.aclose()
            raise _Superseded("options changed while connecting")
        socket.on_close = self._socket_closed
        self.breaker.handshake_ok()  # a sign of health: new requests may try again
        previous, self._socket = self._socket, socket
        if previous is not None and previous is not socket:  # a background refresh
            if previous.contexts:
                previous.close_when_idle = True  # its turns finish there
            else:
                self._retire(previous)
        self._schedule_refresh()  # also a prewarmed socket that no turn has finished on yet
        return socket

    def _failed(self, error: APIError) -> None:
        self.last_error = error
        delay = self.breaker.failed(error.message, time.monotonic())
        if is_fatal(error):
            # A bad key, a refused grant, a wrong URL: no retry can help. Say it once per
            # cause, as soon as it is known (prewarm: before the first reply), with what to do.
            if self._reported != error.message:
                self._reported = error.message
                logger.error(
                    "%s. The TTS cannot speak until this is fixed.",
                    error.message,
                    extra={"status_code": getattr(error, "status_code", None)},
                )
            return
        if self.failures == self.policy.breaker_threshold:
            logger.warning(
                "Cartesia keeps failing (%s); pausing connection attempts for %.0f s",
                error.message,
                delay,
                extra={"failures": self.failures, "pause_s": round(delay, 1)},
            )
        else:
            # the first failure of a series is worth a warning (a prewarm's has no request
            # to report it); the next ones until the breaker opens are routine backoff
            logger.log(
                logging.WARNING if self.failures == 1 else logging.INFO,
                "Cartesia connection failed (%s); backing off %.1f s",
                error.message,
                delay,
                extra={"failures": self.failures, "retry_in_s": round(delay, 2)},
            )

    def _socket_closed(self, socket: CartesiaSocket) -> None:
        if socket is not self._socket:
            return
        self._socket = None
        lived = time.monotonic() - socket.opened_at
        if socket.contexts_completed == 0 and lived < self.policy.quick_failure_s:
            self._failed(APIConnectionError("Cartesia closed the socket right after it opened"))
            return
        if self._closed or not self._may_reconnect():
            return  # e.g. the job ended and LiveKit closed its HTTP session
        if socket.contexts_served > 0 and self._connecting is None:
            logger.debug("Cartesia socket closed while idle; reconnecting in the background")
            self._start_connect(self._connect_timeout)

    def mark_healthy(self) -> None:
        """A context completed: the server works, forget past failures."""
        self.breaker.succeeded()
        self._reported = None
        self._idle_refreshes = 0
        self._schedule_refresh()

    async def acquire(self, timeout: float, ticket: Ticket) -> tuple[CartesiaSocket, bool]:
        """The warm socket (reused=True) or a fresh one (also when joining a connect under
        way), within ``timeout``. A request (``ticket``) the breaker refuses fails at once with
        a non-retryable APIConnectionError; an admitted one is never refused again."""
        if self._closed:
            raise APIConnectionError("TTS is closed")
        refusal = self.breaker.admit(ticket, time.monotonic())
        if refusal is not None:
            last = self.last_error
            if isinstance(last, APIStatusError) and is_fatal(last):  # e.g. a bad key
                raise CartesiaStatusError(refusal, status_code=last.status_code, retryable=False)
            raise APIConnectionError(refusal, retryable=False)
        started = time.perf_counter()
        socket = self._socket
        if socket is not None and socket.is_open and socket.idle_for > self._idle_refresh_s:
            logger.debug("refreshing an idle Cartesia socket before the server closes it")
            self._retire(socket)
            socket = None
        # reused: the socket was open already. Joining a connect under way (prewarm, another
        # turn's) still waits for a handshake, so it is not reuse (LiveKit's metric).
        reused = socket is not None and socket.is_open
        while not reused:
            connecting = self._connecting or self._start_connect(timeout)  # may be longer
            remaining = timeout - (time.perf_counter() - started)
            try:
                socket = await asyncio.wait_for(asyncio.shield(connecting), max(remaining, 0))
            except TimeoutError:
                raise APITimeoutError(
                    f"connecting to Cartesia timed out after {timeout:.1f}s"
                ) from None
            except _Superseded:
                continue  # connect again, with the new options
            break
        assert socket is not None
        self.last_acquire_time = time.perf_counter() - started
        self.last_reused = reused
        self._idle_refreshes = 0
        return socket, reused

    async def acquire_retrying(
        self, options: APIConnectOptions, ticket: Ticket
    ) -> tuple[CartesiaSocket, bool]:
        """``acquire`` with LiveKit's retries and backoff (a mid-turn resume: the same budget
        as a fresh turn, whose retries LiveKit's own loop makes)."""
        for attempt in range(options.max_retry):
            try:
                return await self.acquire(options.timeout, ticket)
            except APIError as exc:
                if not exc.retryable:
                    raise
                logger.info(
                    "resume: connecting to Cartesia failed (%s); retrying",
                    exc.message,
                    extra={"attempt": attempt + 1},
                )
                await asyncio.sleep(options._interval_for_retry(attempt))
        return await self.acquire(options.timeout, ticket)

    # ------------------------------------------------------------ refresh and retire
    def _schedule_refresh(self) -> None:
        """Reopen the socket a little before Cartesia's idle close, if no turn uses it."""
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
        loop = asyncio.get_running_loop()
        self._refresh_timer = loop.call_later(self._idle_refresh_s, self._refresh_if_idle)

    def _refresh_if_idle(self) -> None:
        self._refresh_timer = None
        socket = self._socket
        if self._closed or socket is None or not socket.is_open:
            return
        if socket.contexts or socket.idle_for < self._idle_refresh_s:  # busy, or used since
            self._schedule_refresh()
            return
        if self._idle_refreshes >= self.policy.idle_refreshes or self._connecting is not None:
            return  # nobody has needed it for a while: let it go, connect on demand
        if not self._may_reconnect():
            return
        self._idle_refreshes += 1
        logger.debug("refreshing the idle Cartesia socket before the server's idle close")
        self._start_connect(self._connect_timeout)
        self._schedule_refresh()

    def discard(self, socket: CartesiaSocket) -> None:
        """A socket that misbehaved (stalled): never hand it out again."""
        self._retire(socket)

    def _retire(self, socket: CartesiaSocket) -> None:
        if socket is self._socket:
            self._socket = None
        self._retired.add(socket)
        task = asyncio.create_task(socket.aclose())
        task.add_done_callback(lambda _t: self._retired.discard(socket))

    def invalidate(self) -> None:
        """Options that live on the socket (API version) changed: the next turn reconnects;
        contexts still running on the old socket finish there; a connect under way is
        superseded (its socket closes as it opens)."""
        self._epoch += 1
        self._connecting = None
        self.breaker.succeeded()  # past failures were with the old settings
        self.last_error, self._reported = None, None
        socket, self._socket = self._socket, None
        if socket is None:
            return
        if socket.contexts:
            socket.close_when_idle = True
        else:
            self._retire(socket)

    async def aclose(self) -> None:
        self._closed = True
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
        if self._connecting is not None:
            self._connecting.cancel()
        sockets = [s for s in (self._socket, *self._retired) if s is not None]
        self._socket = None
        await asyncio.gather(*(s.aclose() for s in sockets), return_exceptions=True)
