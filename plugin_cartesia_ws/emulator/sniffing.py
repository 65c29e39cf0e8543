"""TLS and plain HTTP on one port, told apart by the first byte a client sends.

Some clients (Cartesia's JS SDK, LiveKit's Node plugin) dial ``wss://`` even when given an
``http://`` base URL; others dial exactly what they are given. A TLS connection opens with
a handshake record, whose first byte is 0x16; an HTTP request opens with a method name. The
site peeks at that byte without consuming it and hands the socket to aiohttp with or
without TLS, so one emulator serves both kinds of client unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl

from aiohttp import web

log = logging.getLogger(__name__)

TLS_HANDSHAKE_RECORD = 0x16
FIRST_BYTE_TIMEOUT_S = 30.0  # a client that connects and says nothing is let go


class _Listener:
    """What aiohttp's runner asks of a site's server: its sockets, and close()."""

    def __init__(self, sock: socket.socket, accepting: asyncio.Task[None]) -> None:
        self.sockets = [sock]
        self._accepting = accepting
        self.handing_over: set[asyncio.Task[None]] = set()

    def close(self) -> None:
        self._accepting.cancel()
        for task in self.handing_over:
            task.cancel()
        self.sockets[0].close()


class SniffingSite(web.BaseSite):
    """An aiohttp site on ``host``:``port`` serving TLS (``ssl_context``) and plain HTTP."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, ssl_context: ssl.SSLContext
    ) -> None:
        super().__init__(runner)
        self._host, self._port, self._tls = host, port, ssl_context

    @property
    def name(self) -> str:
        return f"http and https on {self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.create_server((self._host, self._port), family=family)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        listener = _Listener(sock, loop.create_task(self._accept(sock)))
        self._server = listener  # type: ignore[assignment]

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(sock)
            task = loop.create_task(self._hand_over(conn))
            listener: _Listener = self._server  # type: ignore[assignment]
            listener.handing_over.add(task)
            task.add_done_callback(listener.handing_over.discard)

    async def _hand_over(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            first = await _peek(conn)
            tls = self._tls if first and first[0] == TLS_HANDSHAKE_RECORD else None
            if not first:
                conn.close()
                return
            server = self._runner.server
            assert server is not None
            await loop.connect_accepted_socket(server, conn, ssl=tls)
        except (OSError, TimeoutError, ssl.SSLError) as exc:  # a client that went away
            log.debug("connection dropped before its first request: %s", exc)
            conn.close()
        except asyncio.CancelledError:
            conn.close()
            raise


async def _peek(conn: socket.socket) -> bytes:
    """The first byte the client sent, left in the socket for whoever reads next."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()
    fd = conn.fileno()

    def wake() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await asyncio.wait_for(readable, FIRST_BYTE_TIMEOUT_S)
    finally:
        with contextlib.suppress(ValueError):
            loop.remove_reader(fd)
    return conn.recv(1, socket.MSG_PEEK)
