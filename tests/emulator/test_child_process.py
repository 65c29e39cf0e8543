"""plugin_cartesia_ws.emulator.child_process: start, wait until ready, stop (signal, wait, kill)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from plugin_cartesia_ws.emulator.child_process import ChildExited, ChildProcess

# Prints "ready", then waits for a signal; SIGTERM ends it unless "stubborn" is given.
CHILD = """
import signal, sys
if "stubborn" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("starting", flush=True)
print("ready", flush=True)
signal.pause()
"""


def child(*args: str, **options: object) -> ChildProcess:
    return ChildProcess([sys.executable, "-c", CHILD, *args], name="child", **options)  # type: ignore[arg-type]


def test_waits_for_a_line_and_stops_with_sigterm(tmp_path: Path) -> None:
    lines: list[str] = []
    log = tmp_path / "child.log"
    with child(on_line=lines.append, log_path=log) as proc:
        proc.wait_until(lambda: "ready\n" in lines, timeout=30)
        assert proc.returncode is None
    assert proc.returncode == -signal.SIGTERM
    assert log.read_text() == "starting\nready\n"
    assert list(proc.tail) == ["starting", "ready"]


@pytest.mark.parametrize("new_session", [False, True])
def test_kills_a_child_that_ignores_sigterm(new_session: bool) -> None:
    lines: list[str] = []
    proc = child("stubborn", on_line=lines.append, new_session=new_session).start()
    proc.wait_until(lambda: "ready\n" in lines, timeout=30)
    assert proc.stop(timeout=0.2) == -signal.SIGKILL
    assert proc.stop() == -signal.SIGKILL  # stopping twice is harmless


def test_exit_before_ready_raises_with_the_output_tail() -> None:
    proc = ChildProcess(
        [sys.executable, "-c", "print('no config file'); raise SystemExit(3)"], name="server"
    ).start()
    with pytest.raises(ChildExited, match=r"server exited with status 3: no config file"):
        proc.wait_until(lambda: False, timeout=30)


def test_exit_is_seen_without_reading_the_output(tmp_path: Path) -> None:
    """Output straight to a file: nothing to wake on, so the wait probes; exit still ends it."""
    log = tmp_path / "server.log"
    proc = ChildProcess(
        [sys.executable, "-c", "print('bad flag'); raise SystemExit(2)"],
        name="server",
        log_path=log,
        read_lines=False,
    ).start()
    with pytest.raises(ChildExited, match=rf"status 2 \(log: {log}\)"):
        proc.wait_until(lambda: False, timeout=30)
    assert log.read_text() == "bad flag\n"


def test_not_ready_in_time_is_a_timeout() -> None:
    with child() as proc, pytest.raises(TimeoutError, match="child not ready in 0.1 s"):
        proc.wait_until(lambda: False, timeout=0.1)
