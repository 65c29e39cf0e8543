"""A LiveKit cluster on this machine: one Redis, several server nodes sharing it.

LiveKit scales out by running server nodes that share Redis: a room lives on one node,
participants and workers may connect to any node, and the nodes relay to each other.
`LocalCluster` runs that shape on loopback for the cluster tests (tests/cluster) and for
`make livekit-cluster` (`python -m agent.dev.cluster`), which starts it by hand and prints
where everything is. All nodes share one key and secret, as a real cluster must.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .livekit_server import LocalServer, ServerUnavailable, ensure_binary
from .redis_server import INSTALL_HINT, LocalRedis, find_redis

NODE_ID = re.compile(r'starting LiveKit server.*?"nodeID": "([^"]+)"')


@dataclass
class LocalCluster:
    """Redis and `size` LiveKit nodes on loopback. Use as a context manager."""

    logs: Path
    size: int = 2
    api_key: str = "devkey"
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    redis: LocalRedis | None = None
    nodes: list[LocalServer] = field(default_factory=list)

    def start(self) -> LocalCluster:
        redis_bin = find_redis()
        if redis_bin is None:
            raise ServerUnavailable(INSTALL_HINT)
        binary = ensure_binary()
        self.redis = LocalRedis(redis_bin, log_path=self.logs / "redis.log").start()
        try:
            for i in range(self.size):
                node = LocalServer(
                    binary,
                    api_key=self.api_key,
                    api_secret=self.api_secret,
                    redis=self.redis.address,
                    log_path=self.logs / f"livekit-node-{'ab'[i] if i < 2 else i}.log",
                )
                self.nodes.append(node.start())
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self, index: int, sig: int = signal.SIGTERM) -> LocalServer:
        """Stop node `index` with `sig` (SIGKILL: a crash) and start it again on the same
        ports: what a supervisor does for a node that went away."""
        node = self.nodes[index]
        node.stop(sig)
        return node.start()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if self.redis is not None:
            self.redis.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def node_id(node: LocalServer) -> str:
    """The node's ID as its log states it at start (the latest start after a restart): what
    `CreateRoomRequest.node_id` takes to host a room on that node."""
    assert node.log_path is not None, "node_id reads the node's log"
    found = NODE_ID.findall(node.log_path.read_text(encoding="utf-8", errors="replace"))
    if not found:
        raise RuntimeError(f"no node ID in {node.log_path}")
    return str(found[-1])


def write_env(cluster: LocalCluster, path: Path) -> Path:
    """A worker's LiveKit settings for node A, in a file only this user can read (the
    secret is never printed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(
            f"LIVEKIT_URL={cluster.nodes[0].url}\n"
            f"LIVEKIT_API_KEY={cluster.api_key}\n"
            f"LIVEKIT_API_SECRET={cluster.api_secret}\n"
        )
    return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m agent.dev.cluster",
        description="Run Redis and LiveKit server nodes sharing it, on loopback, until Ctrl-C.",
    )
    p.add_argument("--nodes", type=int, default=2, help="server nodes (2)")
    args = p.parse_args(argv)
    logs = Path(tempfile.mkdtemp(prefix="livekit-cluster-"))
    try:
        cluster = LocalCluster(logs, size=args.nodes).start()
    except ServerUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        env = write_env(cluster, logs / "worker.env")
        assert cluster.redis is not None
        print(f"redis: {cluster.redis.address}")
        for i, node in enumerate(cluster.nodes):
            print(f"node {i}: {node.url}")
        print(f"worker settings for node 0 (mode 0600): {env}")
        print(f"  set -a; . {env}; set +a; python -m agent start")
        print(f"logs: {logs}  (Ctrl-C stops all)")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
