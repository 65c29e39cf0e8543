"""A local server that speaks Cartesia's TTS protocol, for offline development and tests.

In-process (tests)::

    async with CartesiaEmulator(voice="tone") as emu:
        tts = plugin_cartesia_ws.TTS(api_key=emu.api_key, base_url=emu.url)
        ...
        await emu.wait_for(lambda: emu.record(ctx_id).cancelled)

With TLS (``https://`` and ``wss://``, for clients that always dial TLS), the same port
also serves plain HTTP (the first byte tells them apart), so one ``http://`` base URL works
for both kinds of client::

    async with CartesiaEmulator(tls=True) as emu:
        emu.url  # https://127.0.0.1:<port>
        emu.plain_url  # http://127.0.0.1:<port>, the same port
        emu.ca_path  # the CA to trust: SSL_CERT_FILE (Python), NODE_EXTRA_CA_CERTS (Node)

Behaving like Cartesia's service (unsolicited ``flush_done``, a late ``done``, context
expiry, its latency; docs/emulator.md, "Profiles")::

    async with CartesiaEmulator(profile="cartesia") as emu:
        ...

In another process (benchmarks, a user's agent)::

    python -m plugin_cartesia_ws.emulator --port 8787 --voice espeak [--tls] [--profile cartesia]
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .child_process import ChildExited, ChildProcess
from .contexts import ContextRules
from .faults import Fault
from .messages import Catalogue
from .pacing import LatencyModel
from .profiles import CARTESIA_LATENCY, CARTESIA_RULES, PROFILE_ENV, PROFILES, make_config
from .server import build_app
from .serving import start_site
from .state import DEV_API_KEY, ContextRecord, EmulatorConfig, EmulatorState, Spend
from .tls import LOOPBACK_NAMES, TlsFiles, client_context, make_certificates, server_context

__all__ = [
    "CartesiaEmulator",
    "ContextRules",
    "Catalogue",
    "EmulatorConfig",
    "EmulatorProcess",
    "Fault",
    "LatencyModel",
    "DEV_API_KEY",
    "Spend",
    "CARTESIA_LATENCY",
    "CARTESIA_RULES",
    "PROFILE_ENV",
    "PROFILES",
]


class CartesiaEmulator:
    """Runs the emulator on the current event loop (random port by default)."""

    def __init__(
        self, config: EmulatorConfig | None = None, *, profile: str | None = None, **options: Any
    ) -> None:
        """``profile``: "plain" or "cartesia" (default: $CARTESIA_EMULATOR_PROFILE, else
        plain); ``options`` are ``EmulatorConfig`` fields and win over the profile's."""
        self.config = make_config(config, profile, **options)
        self.state: EmulatorState | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.tls: TlsFiles | None = None
        self._temp_dir: str | None = None

    async def start(self) -> CartesiaEmulator:
        self.state = EmulatorState(self.config)
        ssl_context = self._server_ssl_context()
        self._runner, self._port = await start_site(
            build_app(self.state),
            self.config.host,
            self.config.port,
            ssl_context=ssl_context,
            log_requests=True,
        )
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def _server_ssl_context(self) -> ssl.SSLContext | None:
        cfg = self.config
        if cfg.tls_cert or cfg.tls_key:
            if not (cfg.tls_cert and cfg.tls_key):
                raise ValueError("tls_cert and tls_key go together")
            self.tls = TlsFiles(Path(cfg.tls_cert), Path(cfg.tls_key), Path(cfg.tls_cert))
        elif cfg.tls:
            if cfg.tls_dir is None:
                self._temp_dir = tempfile.mkdtemp(prefix="cartesia-emulator-tls-")
            directory = Path(cfg.tls_dir or self._temp_dir or ".")
            hosts: tuple[str, ...] = LOOPBACK_NAMES
            if cfg.host not in hosts and cfg.host not in ("0.0.0.0", "::", ""):
                hosts = (*hosts, cfg.host)
            self.tls = make_certificates(directory, hosts)
        return server_context(self.tls) if self.tls is not None else None

    async def __aenter__(self) -> CartesiaEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        """HTTP(S) base URL; what ``base_url=`` of the plugin (or LiveKit's) takes."""
        if self._port is None:
            raise RuntimeError("emulator not started")
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.config.host}:{self._port}"

    @property
    def plain_url(self) -> str:
        """``http://`` on the same port: with TLS, the port serves both."""
        return "http" + self.url.removeprefix("https").removeprefix("http")

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/tts/websocket"

    @property
    def ca_path(self) -> str | None:
        """The certificate clients must trust when serving TLS (None without TLS)."""
        return str(self.tls.ca) if self.tls is not None else None

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting this emulator, for an in-process client."""
        if self.tls is None:
            raise RuntimeError("the emulator does not serve TLS (tls=True)")
        return client_context(self.tls.ca)

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

    def version_of(self, context_id: str) -> str:
        """The API version of the socket a context was served on."""
        return self._live.socket_versions[self.record(context_id).socket_id]

    @property
    def sockets_opened(self) -> int:
        return self._live.stats["sockets_opened"]

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: sockets_opened/closed, handshakes (attempts), idle_closes, ..."""
        return self._live.snapshot()

    def spend(self) -> Spend:
        """Characters billed so far (Cartesia bills ~1 credit each): total, per socket, per
        context; cancelled contexts count all the text they were sent."""
        return self._live.spend()

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
    """The emulator in a child process, so its CPU time is not the client's (benchmarks).

    Ready once it prints its JSON line (url, ca_file); its log goes on to our stderr."""

    def __init__(self, *args: str, start_timeout: float = 60.0) -> None:
        self.args = list(args)
        self.start_timeout = start_timeout
        self.url = ""
        self.ca_path: str | None = None  # with --tls
        self._child = ChildProcess(
            [sys.executable, "-m", "plugin_cartesia_ws.emulator", "--port", "0", *self.args],
            name="emulator process",
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            on_line=self._on_line,
        )

    @property
    def proc(self) -> subprocess.Popen[str] | None:
        return self._child.proc

    def _on_line(self, line: str) -> None:
        if not self.url and line.startswith("{"):
            info = json.loads(line)
            self.ca_path = info.get("ca_file")
            self.url = info["url"]
        else:
            sys.stderr.write(line)

    def __enter__(self) -> EmulatorProcess:
        self._child.start()
        try:
            self._child.wait_until(lambda: bool(self.url), self.start_timeout)
        except (ChildExited, TimeoutError) as exc:
            self._child.stop()
            raise RuntimeError(f"emulator process did not start: {exc}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._child.stop()
