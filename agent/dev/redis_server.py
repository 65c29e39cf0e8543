"""Debian's `redis-server` as a child process on loopback: what a LiveKit cluster shares.

The cluster tests and `make livekit-cluster` start it themselves, never as a system
service: bound to 127.0.0.1 on a free port, protected mode on, nothing persisted (no RDB
snapshot, no append-only file), its working directory a private temporary one.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from plugin_cartesia_ws.emulator.child_process import ChildExited, ChildProcess

from .livekit_server import ServerUnavailable, free_port

INSTALL_HINT = "no redis-server: install Debian's (apt-get install redis-server)"


def find_redis() -> Path | None:
    found = shutil.which("redis-server")
    return Path(found) if found else None


@dataclass
class LocalRedis:
    """`redis-server` on 127.0.0.1; `address` is what LiveKit's `redis.address` takes."""

    binary: Path
    port: int = 0
    log_path: Path | None = None
    process: ChildProcess | None = None
    _dir: Path | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        assert self._dir is not None
        return [
            str(self.binary),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--protected-mode",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self._dir),
            "--daemonize",
            "no",
        ]

    def start(self, timeout: float = 10.0) -> LocalRedis:
        if not self.port:
            self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="redis-"))
        self.process = ChildProcess(self.command(), name="redis-server", log_path=self.log_path)
        self.process.start()
        try:
            self.process.wait_until(self._answers, timeout, probe_s=0.05)
        except (ChildExited, TimeoutError) as e:
            self.stop()
            raise ServerUnavailable(f"redis-server did not start: {e}") from None
        return self

    def _answers(self) -> bool:
        """PING -> +PONG over the wire (no client library needed)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)
            self.process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
