"""Toxiproxy for the tests: start the real ``toxiproxy-server`` (built by ``make toxiproxy``)
on loopback, and a small client for its HTTP API (proxies and toxics).

LiveKit's TTS suite runs every provider behind Toxiproxy; so do we, so that "a server that
never answers", "a slow link" and "a thin link" are the same TCP behaviour LiveKit tests
with, not a fake of ours.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugin_cartesia_ws.emulator.child_process import (
    PROBE_INTERVAL_S,
    ChildExited,
    ChildProcess,
)

REPO = Path(__file__).resolve().parents[2]
VERSION = "v2.12.0"  # keep in step with TOXIPROXY_VERSION in the Makefile
DEFAULT_BINARY = REPO / ".cache" / "toxiproxy" / VERSION / "toxiproxy-server"


def binary() -> Path | None:
    """The server binary: $TOXIPROXY_SERVER, else what ``make toxiproxy`` built."""
    path = Path(os.environ.get("TOXIPROXY_SERVER") or DEFAULT_BINARY)
    return path if path.is_file() and os.access(path, os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ToxiproxyError(RuntimeError):
    pass


@dataclass
class Proxy:
    """One proxy: clients connect to ``listen``, Toxiproxy forwards to ``upstream``."""

    api: ToxiproxyServer
    name: str
    listen: str  # host:port actually bound

    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    def add_toxic(self, kind: str, stream: str = "downstream", **attributes: Any) -> str:
        name = f"{kind}_{stream}"
        self.api.request(
            "POST",
            f"/proxies/{self.name}/toxics",
            {
                "name": name,
                "type": kind,
                "stream": stream,
                "toxicity": 1.0,
                "attributes": attributes,
            },
        )
        return name

    def remove_toxic(self, name: str) -> None:
        self.api.request("DELETE", f"/proxies/{self.name}/toxics/{name}")

    def destroy(self) -> None:
        self.api.request("DELETE", f"/proxies/{self.name}")


class ToxiproxyServer:
    """A toxiproxy-server child process on 127.0.0.1 and its API."""

    def __init__(self, path: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._api_starting = False
        self._process = ChildProcess(
            [str(path), "-host", "127.0.0.1", "-port", str(self.port)],
            on_line=self._on_log_line,  # its log: JSON lines
        ).start()
        try:
            # the log line comes just before the listen call: probe the API from then on
            self._process.wait_until(
                lambda: self._api_starting and self._answers(), 15.0, probe_s=PROBE_INTERVAL_S
            )
        except (ChildExited, TimeoutError) as exc:
            self.close()
            raise ToxiproxyError(f"toxiproxy-server did not start: {exc}") from None

    def _on_log_line(self, line: str) -> None:
        if "Starting Toxiproxy HTTP server" in line:
            self._api_starting = True

    def _answers(self) -> bool:
        try:
            self.request("GET", "/version")
        except OSError:
            return False
        return True

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.base}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=5.0) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise ToxiproxyError(f"{method} {path}: {exc.code} {exc.read().decode()}") from None
        return json.loads(raw) if raw.strip() else None

    @contextmanager
    def proxy(self, name: str, upstream: str) -> Iterator[Proxy]:
        """A proxy on a free loopback port in front of ``upstream`` (host:port)."""
        info = self.request(
            "POST",
            "/proxies",
            {"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": True},
        )
        proxy = Proxy(self, name, info["listen"])
        try:
            yield proxy
        finally:
            proxy.destroy()

    def close(self) -> None:
        self._process.stop(timeout=5)
