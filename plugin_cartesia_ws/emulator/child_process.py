"""One child process: start it, wait until it is ready, stop it (signal, wait, kill).

EmulatorProcess uses it, and so do the repository's launchers of LiveKit's server, Toxiproxy
and the worker. It lives in the emulator package because the wheel ships only
`plugin_cartesia_ws`, and EmulatorProcess is in it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

# Readiness that only shows from outside (an HTTP probe) gives no event to wait on.
PROBE_INTERVAL_S = 0.05


class ChildExited(RuntimeError):
    """The child exited before what was waited for happened."""


class ChildProcess:
    """A child process with its stdout and stderr merged.

    With ``read_lines`` (the default) a thread reads the output line by line: each line goes
    to ``on_line``, to ``log_path`` and to a short tail for error messages, and wakes
    ``wait_until``. Without it the child writes to ``log_path`` itself (or nowhere), which
    costs this process nothing for chatty children.

    ``new_session`` puts the child in a process group of its own: a signal meant for the
    test runner's group does not reach it, and ``stop`` kills the whole group if it must.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log_path: Path | None = None,
        read_lines: bool = True,
        on_line: Callable[[str], None] | None = None,
        new_session: bool = False,
        tail_lines: int = 20,
    ) -> None:
        self.argv = [str(arg) for arg in argv]
        self.name = name or Path(self.argv[0]).name
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.log_path = log_path
        self.read_lines = read_lines
        self.on_line = on_line
        self.new_session = new_session
        self.tail: deque[str] = deque(maxlen=tail_lines)  # the last lines, for error messages
        self.proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()
        self._lines_read = 0
        self._output_ended = False

    def start(self) -> ChildProcess:
        if self.log_path is not None:
            self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if self.read_lines else (self._log or subprocess.DEVNULL),
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",  # a stray byte must not stop the reader
            start_new_session=self.new_session,
        )
        if self.read_lines:
            self._reader = threading.Thread(target=self._read, daemon=True, name=self.name)
            self._reader.start()
        elif self._log is not None:
            self._log.close()  # the child holds its own copy
            self._log = None
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                if self._log is not None:
                    self._log.write(line)
                    self._log.flush()
                if self.on_line is not None:
                    self.on_line(line)
                with self._cond:
                    self.tail.append(line.rstrip("\n"))
                    self._lines_read += 1
                    self._cond.notify_all()
            self.proc.wait()  # the output ends as the child exits: take its status too
        finally:
            if self._log is not None:
                self._log.close()
            with self._cond:
                self._output_ended = True
                self._cond.notify_all()

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def exited(self) -> bool:
        """The child has exited and (when read) all its output has been seen."""
        if self.proc is None or self.proc.poll() is None:
            return False
        return self._reader is None or self._output_ended

    def wait_until(
        self, ready: Callable[[], bool], timeout: float, *, probe_s: float | None = None
    ) -> None:
        """Block until ``ready()`` holds, checking it again after every output line, and
        every ``probe_s`` seconds when readiness shows only from outside (an HTTP probe).

        Raises ChildExited when the child exits first, TimeoutError after ``timeout``."""
        if self._reader is None and probe_s is None:
            probe_s = PROBE_INTERVAL_S  # no lines to wake on: exit is seen by polling
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                seen = self._lines_read
            if ready():  # outside the lock: a probe may take a while, the reader goes on
                return
            with self._cond:
                if self.exited():
                    raise ChildExited(self._exit_message())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.name} not ready in {timeout} s{self._tail_text()}")
                if self._lines_read == seen:
                    self._cond.wait(left if probe_s is None else min(left, probe_s))

    def _exit_message(self) -> str:
        where = f" (log: {self.log_path})" if self.log_path else ""
        return f"{self.name} exited with status {self.returncode}{where}{self._tail_text()}"

    def _tail_text(self) -> str:
        return (": " + " | ".join(list(self.tail)[-5:])) if self.tail else ""

    def send_signal(self, sig: int) -> None:
        """To the child alone (a LiveKit worker drains its own job processes)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 10.0, *, sig: int = signal.SIGTERM) -> int:
        """Send ``sig``, wait up to ``timeout`` s, then SIGKILL (its whole group with
        ``new_session``). Returns the exit status; stopping twice is harmless."""
        if self.proc is None:
            return 0
        self.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            self.proc.wait()
        if self._reader is not None:
            self._reader.join(5)  # a grandchild may hold the pipe open: do not wait on it
            if not self._reader.is_alive() and self.proc.stdout is not None:
                self.proc.stdout.close()
        return int(self.proc.returncode)

    def _kill(self) -> None:
        assert self.proc is not None
        try:
            if self.new_session:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
        except ProcessLookupError:
            pass  # gone between the timeout and the kill

    def __enter__(self) -> ChildProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
