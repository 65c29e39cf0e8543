"""Keeps one Cartesia socket warm per TTS instance, and decides when to (re)connect.

- ``prewarm()`` or the first turn opens it; every turn reuses it.
- An idle socket is refreshed before Cartesia's 5-minute idle close, in the background, so a
  turn never finds a dead one; one that died idle is replaced in the background too.
- Failed connects back off exponentially with jitter and a cap; sockets that die right after
  opening count as failures too (a quick-failure breaker), so a broken server or key is not
  hammered and callers (e.g. ``tts.FallbackAdapter``) get a fast, clear error meanwhile.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from livekit.agents import APIConnectionError, APIError

from .connection import CartesiaSocket
from .log import logger

Connect = Callable[[float], Awaitable[CartesiaSocket]]


@dataclass(frozen=True)
class ReconnectPolicy:
    base_delay_s: float = 0.2
    max_delay_s: float = 10.0
    jitter: float = 0.5  # a delay is scaled by a random factor in [1 - jitter, 1]
    quick_failure_s: float = 2.0  # a socket closing this soon, with nothing done, failed
    breaker_threshold: int = 3  # consecutive failures that open the breaker
    breaker_cooldown_s: float = 15.0
    idle_refreshes: int = 3  # background refreshes of a socket no turn has used since

    def delay(self, failures: int, rng: random.Random) -> float:
        if failures >= self.breaker_threshold:
            return self.breaker_cooldown_s
        raw = min(self.max_delay_s, self.base_delay_s * 2 ** max(failures - 1, 0))
        return raw * (1.0 - self.jitter * rng.random())


class SocketPool:
    def __init__(
        self,
        connect: Connect,
        *,
        idle_refresh_s: float,
        connect_timeout: float = 10.0,
        policy: ReconnectPolicy | None = None,
    ) -> None:
        self._connect = connect
        self._idle_refresh_s = idle_refresh_s
        self._connect_timeout = connect_timeout
        self.policy = policy or ReconnectPolicy()
        self._rng = random.Random()
        self._socket: CartesiaSocket | None = None
        self._connecting: asyncio.Task[CartesiaSocket] | None = None
        self._retired: set[CartesiaSocket] = set()
        self._refresh_timer: asyncio.TimerHandle | None = None
        self._idle_refreshes = 0
        self._closed = False
        self.failures = 0  # consecutive; reset by a socket that completes a context
        self.next_attempt_at = 0.0  # time.monotonic(); backoff until then
        self.last_error: APIError | None = None
        self.sockets_opened = 0
        self.last_acquire_time = 0.0
        self.last_reused = False

    @property
    def socket(self) -> CartesiaSocket | None:
        return self._socket

    @property
    def breaker_open(self) -> bool:
        return (
            self.failures >= self.policy.breaker_threshold
            and time.monotonic() < self.next_attempt_at
        )

    # ------------------------------------------------------------ connecting
    def prewarm(self) -> None:
        """Start connecting now so the first turn does not pay the handshake."""
        if self._closed or self._connecting is not None or time.monotonic() < self.next_attempt_at:
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
        if not task.cancelled():
            task.exception()  # retrieved: a failed background connect is logged in _failed

    async def _open(self, timeout: float) -> CartesiaSocket:
        try:
            socket = await self._connect(timeout)
        except APIError as exc:
            self._failed(exc)
            raise
        self.sockets_opened += 1
        if self._closed:
            await socket.aclose()
            raise APIConnectionError("TTS closed while connecting")
        socket.on_close = self._socket_closed
        previous, self._socket = self._socket, socket
        if previous is not None and previous is not socket:  # a background refresh
            if previous.contexts:
                previous.close_when_idle = True  # its turns finish there
            else:
                self._retire(previous)
        return socket

    def _failed(self, error: APIError) -> None:
        self.failures += 1
        self.last_error = error
        delay = self.policy.delay(self.failures, self._rng)
        self.next_attempt_at = time.monotonic() + delay
        if self.failures == self.policy.breaker_threshold:
            logger.warning(
                "Cartesia keeps failing; pausing connection attempts",
                extra={"failures": self.failures, "pause_s": round(delay, 1), "error": str(error)},
            )
        else:
            logger.info(
                "Cartesia connection failed; backing off",
                extra={
                    "failures": self.failures,
                    "retry_in_s": round(delay, 2),
                    "error": str(error),
                },
            )

    def _socket_closed(self, socket: CartesiaSocket) -> None:
        if socket is not self._socket:
            return
        self._socket = None
        lived = time.monotonic() - socket.opened_at
        if socket.contexts_completed == 0 and lived < self.policy.quick_failure_s:
            self._failed(APIConnectionError("Cartesia closed the socket right after it opened"))
            return
        if not self._closed and socket.contexts_served > 0 and self._connecting is None:
            logger.debug("Cartesia socket closed while idle; reconnecting in the background")
            self._start_connect(self._connect_timeout)

    def mark_healthy(self) -> None:
        """A context completed: the server works, forget past failures."""
        self.failures = 0
        self.next_attempt_at = 0.0
        self._idle_refreshes = 0
        self._schedule_refresh()

    async def acquire(self, timeout: float) -> tuple[CartesiaSocket, bool]:
        """The warm socket (reused=True, also when joining a connect under way) or a fresh
        one. Raises APIError: at once while backing off longer than ``timeout``."""
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
            await self._wait_for_backoff(timeout)
            socket = await asyncio.shield(self._start_connect(timeout))
            reused = False
        self.last_acquire_time = time.perf_counter() - started
        self.last_reused = reused
        self._idle_refreshes = 0
        return socket, reused

    async def _wait_for_backoff(self, timeout: float) -> None:
        wait = self.next_attempt_at - time.monotonic()
        if wait <= 0:
            return
        if wait > timeout:
            cause = f" (last error: {self.last_error.message})" if self.last_error else ""
            raise APIConnectionError(
                f"Cartesia is unavailable after {self.failures} failed attempts; "
                f"next attempt in {wait:.1f}s{cause}"
            )
        await asyncio.sleep(wait)  # the backoff itself

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
        if self._closed or socket is None or not socket.is_open or socket.contexts:
            return
        if socket.idle_for < self._idle_refresh_s:
            self._schedule_refresh()
            return
        if self._idle_refreshes >= self.policy.idle_refreshes or self._connecting is not None:
            return  # nobody has needed it for a while: let it go, connect on demand
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
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
        if self._connecting is not None:
            self._connecting.cancel()
        sockets = [s for s in (self._socket, *self._retired) if s is not None]
        self._socket = None
        await asyncio.gather(*(s.aclose() for s in sockets), return_exceptions=True)
