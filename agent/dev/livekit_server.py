"""A real LiveKit server on this machine: find or build the binary, run it from the
repository's own `livekit.yaml`, wait until it answers, stop it.

The room tests, `python -m agent simulate --room` and the room benchmarks use it. The binary
is LiveKit's open-source server, built from the Go module proxy at `VERSION` into
`.cache/livekit-server/<VERSION>/` (`make livekit-server`, or `python -m agent.dev.livekit_server
build`). Ports and keys are overridden on the command line, everything bound to loopback.

Why VERSION is not the newest release: from v1.13.6 on, the server's go.mod replaces pion's
webrtc, dtls and ice with LiveKit forks that the Go module proxy does not serve, so
`go install` refuses them (replace directives) and a wrapper module cannot download them.
v1.13.5 is the newest release that builds from the proxy with the machine's Go (1.26).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from plugin_cartesia_ws.emulator.child_process import ChildExited, ChildProcess

VERSION = "v1.13.5"
MODULE = "github.com/livekit/livekit-server/cmd/server"
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "livekit.yaml"
CACHE_DIR = REPO_ROOT / ".cache" / "livekit-server" / VERSION
INSTALL_HINT = (
    "no livekit-server: set LIVEKIT_SERVER_BIN, put livekit-server on PATH, "
    f"or install Go >= 1.26 so `make livekit-server` can build {VERSION}"
)


class ServerUnavailable(RuntimeError):
    """No binary and no way to build one, or the server did not start. One line."""


def cached_binary() -> Path:
    return CACHE_DIR / "server"


def find_binary() -> Path | None:
    """LIVEKIT_SERVER_BIN, then `livekit-server` on PATH, then the Makefile's cache."""
    env = os.environ.get("LIVEKIT_SERVER_BIN")
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ServerUnavailable(f"LIVEKIT_SERVER_BIN={env} is not an executable file")
        return path
    on_path = shutil.which("livekit-server")
    if on_path:
        return Path(on_path)
    cached = cached_binary()
    return cached if cached.is_file() else None


def can_build() -> bool:
    return shutil.which("go") is not None


def build(*, quiet: bool = False) -> Path:
    """`go install` the pinned release into the cache (a few minutes the first time on
    2 cores; Go's own caches make it seconds after that)."""
    if not can_build():
        raise ServerUnavailable(INSTALL_HINT)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOBIN=str(CACHE_DIR), GOFLAGS="-mod=mod")
    out = subprocess.run(
        ["go", "install", f"{MODULE}@{VERSION}"],
        env=env,
        cwd=CACHE_DIR,
        capture_output=quiet,
        text=True,
    )
    if out.returncode != 0:
        tail = (out.stderr or "").strip().splitlines()[-1:] if quiet else []
        raise ServerUnavailable(f"building livekit-server {VERSION} failed: {' '.join(tail)}")
    return cached_binary()


def ensure_binary() -> Path:
    """The binary to run, building it when Go is there. Raises ServerUnavailable."""
    found = find_binary()
    if found is not None:
        return found
    return build(quiet=True)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalServer:
    """A livekit-server child process on loopback. Use as a context manager or start()/stop().

    The config is the repository's livekit.yaml; the command line overrides the ports
    (free ones by default), the bind address (127.0.0.1) and the keys (a fresh 32-byte
    secret per run, as the server asks of production secrets)."""

    binary: Path
    api_key: str = "devkey"
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    port: int = 0
    # the address the server advertises for media (rtc.node_ip); another loopback address
    # where nothing listens makes rooms unjoinable (a misconfigured node_ip)
    node_ip: str = "127.0.0.1"
    log_path: Path | None = None
    extra_args: tuple[str, ...] = ()  # more overrides, e.g. ("--room.auto_create=false",)
    process: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "--config",
            str(CONFIG),
            "--bind",
            "127.0.0.1",
            "--node-ip",
            self.node_ip,
            "--port",
            str(self.port),
            "--rtc.tcp_port",
            str(free_port()),
            "--udp-port",
            str(free_port(socket.SOCK_DGRAM)),
            "--keys",
            f"{self.api_key}: {self.api_secret}",
            *self.extra_args,
        ]

    def start(self, timeout: float = 20.0) -> LocalServer:
        if not self.port:
            self.port = free_port()
        # its log goes straight to the file: the server is chatty and nothing reads it live
        self.process = ChildProcess(
            self.command(), name="livekit-server", log_path=self.log_path, read_lines=False
        ).start()
        try:
            # the server answers GET / with "OK" once it listens
            self.process.wait_until(self._answers, timeout)
        except ChildExited as e:
            raise ServerUnavailable(str(e)) from None
        except TimeoutError:
            self.stop()
            raise ServerUnavailable(
                f"livekit-server did not answer on {self.http_url} in {timeout}s"
            ) from None
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.http_url, timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)
            self.process = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m agent.dev.livekit_server",
        description=f"Build (Go module proxy) or locate LiveKit's server {VERSION}.",
    )
    p.add_argument("command", choices=["build", "path"], help="build: build if missing; path")
    args = p.parse_args(argv)
    try:
        path = find_binary()
        if path is None and args.command == "build":
            print(
                f"building livekit-server {VERSION} with {shutil.which('go')} ...", file=sys.stderr
            )
            path = build()
    except ServerUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if path is None:
        print(f"error: {INSTALL_HINT}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
