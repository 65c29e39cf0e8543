"""A real LiveKit server on this machine: find or build the binary, run it from the
repository's own `livekit.yaml`, wait until it answers, stop it.

The room tests, `python -m agent simulate --room` and the room benchmarks use it. The binary
is LiveKit's open-source server, built from the Go module proxy at `VERSION` into
`.cache/livekit-server/<VERSION>/` (`make livekit-server`, or `python -m agent.dev.livekit_server
build`).

Each run gets its own config, written from `livekit.yaml` into a private directory: free
ports, and loopback only. Signalling binds 127.0.0.1; WebRTC uses UDP on 127.0.0.1 alone
(`rtc.interfaces`: lo) with TCP off, because v1.13.5 opens its RTC TCP port on every
interface whatever `rtc.interfaces` says. The keys go in through the environment
(`LIVEKIT_KEYS`), never on the command line, where `ps` would show the secret to every
user of the machine. With `redis` set the node joins a cluster (agent.dev.cluster).

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
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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


def loopback_config(
    base: dict[str, Any], *, port: int, udp_port: int, node_ip: str
) -> dict[str, Any]:
    """`base` (livekit.yaml) with everything on loopback and no keys: signalling on
    127.0.0.1, WebRTC over UDP on the loopback interface only, RTC over TCP off (v1.13.5
    would listen on every interface for it)."""
    config = {k: v for k, v in base.items() if k != "keys"}
    rtc = dict(config.get("rtc") or {})
    rtc.update(
        tcp_port=0,
        udp_port=udp_port,
        node_ip=node_ip,
        use_external_ip=False,
        interfaces={"includes": ["lo"]},
        # the UDP mux skips loopback addresses unless asked (pion's default)
        enable_loopback_candidate=True,
    )
    rtc.pop("port_range_start", None)
    rtc.pop("port_range_end", None)
    config.update(port=port, bind_addresses=["127.0.0.1"], rtc=rtc)
    return config


@dataclass
class LocalServer:
    """A livekit-server child process on loopback. Use as a context manager or start()/stop().

    The config is the repository's livekit.yaml made loopback-only (`loopback_config`), on
    free ports by default; the keys are a fresh 32-byte secret per run, as the server asks
    of production secrets, handed over in the environment. With `redis` ("host:port") the
    node shares rooms and workers with the other nodes on that Redis."""

    binary: Path
    api_key: str = "devkey"
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    port: int = 0
    # the address the server advertises for media (rtc.node_ip); another loopback address
    # where nothing listens makes rooms unjoinable (a misconfigured node_ip)
    node_ip: str = "127.0.0.1"
    log_path: Path | None = None
    extra_args: tuple[str, ...] = ()  # more overrides, e.g. ("--room.auto_create=false",)
    redis: str | None = None
    udp_port: int = 0
    process: ChildProcess | None = None
    config_path: Path | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        """This run's config file, in a directory only this user can read."""
        base = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
        config = loopback_config(base, port=self.port, udp_port=self.udp_port, node_ip=self.node_ip)
        if self.redis:
            config["redis"] = {"address": self.redis}
        if self.config_path is None:
            self.config_path = Path(tempfile.mkdtemp(prefix="livekit-")) / "livekit.yaml"
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return self.config_path

    def command(self) -> list[str]:
        return [str(self.binary), "--config", str(self.write_config()), *self.extra_args]

    def environment(self) -> dict[str, str]:
        """The child's environment: ours plus the keys (`LIVEKIT_KEYS`, read by the server
        like `--keys`, which would put the secret in every `ps` listing)."""
        return {**os.environ, "LIVEKIT_KEYS": f"{self.api_key}: {self.api_secret}"}

    def start(self, timeout: float = 20.0) -> LocalServer:
        if not self.port:
            self.port = free_port()
        if not self.udp_port:
            self.udp_port = free_port(socket.SOCK_DGRAM)
        # its log goes straight to the file: the server is chatty and nothing reads it live
        self.process = ChildProcess(
            self.command(),
            name="livekit-server",
            env=self.environment(),
            log_path=self.log_path,
            read_lines=False,
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

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the node (SIGKILL: as if it crashed). Its ports stay this object's, so
        `start()` brings the same node address back."""
        if self.process is not None:
            self.process.stop(timeout=10, sig=sig)
            self.process = None
        if self.config_path is not None:
            shutil.rmtree(self.config_path.parent, ignore_errors=True)
            self.config_path = None

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
