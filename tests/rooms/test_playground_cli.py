"""`python -m agent playground` with nothing configured: one command starts the LiveKit
server, the emulator, the local OpenAI stand-in and the worker, prints the page's URL, and
Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from agent.dev.livekit_server import LocalServer
from agent.dev.worker_process import REPO_ROOT

CONFIGURED = ("LIVEKIT_", "CARTESIA_", "OPENAI_", "AGENT_")


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_one_command_starts_everything_and_ctrl_c_stops_it(
    livekit_server: LocalServer, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIGURED)}
    env["PYTHONPATH"] = str(REPO_ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "playground", "--port", "0"],
        cwd=tmp_path,  # no .env
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    lines: list[str] = []
    opened = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("open http"):
                opened.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert opened.wait(180), "".join(lines)
        url = next(line.split()[1] for line in lines if line.startswith("open http"))
        with urllib.request.urlopen(f"{url}token", timeout=10) as resp:
            assert b'"token"' in resp.read()
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert b"playground" in resp.read()
        started = descendants(proc.pid)
        commands = " ".join(Path(f"/proc/{p}/cmdline").read_text() for p in started)
        assert "livekit-server" in commands or "server\0--config" in commands
        assert "agent\0start" in commands

        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the foreground group gets SIGINT
        assert proc.wait(timeout=90) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(5)
    assert "stopped" in "".join(lines)
    assert not [p for p in started if alive(p)], "".join(lines)
