"""A local server that speaks Cartesia's TTS protocol, for offline development and tests.

In-process (tests)::

    async with CartesiaEmulator(voice="tone") as emu:
        tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url)
        ...
        await emu.wait_for(lambda: emu.record(ctx_id).cancelled)

In another process (benchmarks, a user's agent)::

    python -m plugin_cartesia_ws.emulator --port 8787 --voice espeak
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web

from .contexts import ContextRules
from .faults import Fault
from .messages import Catalogue
from .pacing import LatencyModel
from .server import build_app
from .state import DEV_API_KEY, ContextRecord, EmulatorConfig, EmulatorState

__all__ = [
    "CartesiaEmulator",
    "ContextRules",
    "Catalogue",
    "EmulatorConfig",
    "EmulatorProcess",
    "Fault",
    "LatencyModel",
    "DEV_API_KEY",
]


class CartesiaEmulator:
    """Runs the emulator on the current event loop (random port by default)."""

    def __init__(self, config: EmulatorConfig | None = None, **options: Any) -> None:
        base = config or EmulatorConfig()
        self.config = dataclasses.replace(base, **options) if options else base
        self.state: EmulatorState | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    async def start(self) -> CartesiaEmulator:
        self.state = EmulatorState(self.config)
        self._runner = web.AppRunner(build_app(self.state), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        server = cast(asyncio.Server, site._server)
        assert server is not None and server.sockets
        self._port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> CartesiaEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        """HTTP base URL; what ``base_url=`` of the plugin (or LiveKit's) takes."""
        if self._port is None:
            raise RuntimeError("emulator not started")
        return f"http://{self.config.host}:{self._port}"

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/tts/websocket"

    @property
    def api_key(self) -> str:
        return self.config.api_keys[0] if self.config.api_keys else DEV_API_KEY

    # ------------------------------------------------------------ test helpers
    @property
    def _live(self) -> EmulatorState:
        if self.state is None:
            raise RuntimeError("emulator not started")
        return self.state

    def add_fault(self, kind: str, **fields: Any) -> Fault:
        return self._live.faults.add(Fault(kind=kind, **fields))  # type: ignore[arg-type]

    def clear_faults(self) -> None:
        self._live.faults.clear()

    def record(self, context_id: str) -> ContextRecord:
        """What the server saw and sent for one context (KeyError if it never saw it)."""
        return self._live.records[context_id]

    @property
    def records(self) -> dict[str, ContextRecord]:
        return self._live.records

    @property
    def sockets_opened(self) -> int:
        return self._live.stats["sockets_opened"]

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: sockets_opened/closed, handshakes (attempts), idle_closes, ..."""
        return self._live.snapshot()

    @property
    def open_sockets(self) -> int:
        return self._live.open_sockets

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``condition()`` holds, re-checking on every server-side change.
        A condition that raises KeyError (a context not seen yet) counts as false."""

        def holds() -> bool:
            try:
                return condition()
            except KeyError:
                return False

        await self._live.changes.wait_until(holds, timeout)


class EmulatorProcess:
    """The emulator in a child process, so its CPU time is not the client's (benchmarks)."""

    def __init__(self, *args: str) -> None:
        self.args = list(args)
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> EmulatorProcess:
        cmd = [sys.executable, "-m", "plugin_cartesia_ws.emulator", "--port", "0", *self.args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.url = json.loads(line)["url"]
                break
        if not self.url:
            raise RuntimeError("emulator process did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
