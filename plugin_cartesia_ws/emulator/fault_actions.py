"""What the socket session does when a fault fires: raw frames, drops, closes, resets,
error events. A mixin of ``SocketSession``, kept apart so each module stays short."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

from aiohttp import web

from .contexts import ContextTable, Send
from .faults import ContextFaults, Fault
from .messages import ProtocolError
from .state import EmulatorState

log = logging.getLogger("plugin_cartesia_ws.emulator")


class FaultActions:
    state: EmulatorState
    request: web.Request
    ws: web.WebSocketResponse
    table: ContextTable
    send_lock: asyncio.Lock
    closed: bool
    stalled: set[str]

    async def _send(self, event: dict) -> bool:
        raise NotImplementedError

    async def _pause(self, context_id: str, seconds: float) -> bool:
        raise NotImplementedError

    def _reset(self, context_id: str) -> None:
        """The ``reset`` fault: RST instead of FIN (SO_LINGER 0), so the client's next send
        fails on a reset transport, whatever its reader has seen yet."""
        log.info("fault reset fires on context %s", context_id)
        transport = self.request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        self.closed = True
        self.state.changed()

    async def _pause_fault(self, context_id: str, faults: ContextFaults, chunks: int) -> bool:
        """A ``pause`` fault: silence for its seconds, once; True if cancelled meanwhile."""
        pause = faults.first("pause")
        if pause is None or chunks < pause.after_chunks:
            return False
        faults.faults.remove(pause)
        return await self._pause(context_id, pause.seconds)

    async def _inject(self, context_id: str, frames: list[str]) -> None:
        """Raw frames, as a broken or newer server might send them."""
        async with self.send_lock:
            for frame in frames:
                frame = frame.replace("{ctx}", context_id)
                if frame.startswith("binary:"):
                    await self.ws.send_bytes(frame[7:].encode())
                else:
                    await self.ws.send_str(frame)

    async def _fire(self, context_id: str, fault: Fault) -> bool:
        """Acts on a chunk-count fault; True when the context (or socket) is finished."""
        log.info("fault %s fires on context %s", fault.kind, context_id)
        if fault.kind == "drop":
            transport = self.request.transport
            if transport is not None:
                transport.abort()
            self.closed = True
            return True
        if fault.kind == "close":
            await self.ws.close(code=fault.close_code, message=fault.message.encode()[:120])
            self.closed = True
            return True
        if fault.kind == "stall_after":
            self.stalled.add(context_id)
            return True
        err = ProtocolError(fault.status, fault.code, "Injected error", fault.message, context_id)
        for out in self.table.fail(context_id, err):
            if isinstance(out, Send):
                await self._send(out.event)
        return True
