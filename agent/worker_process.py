"""The worker as users run it (`python -m agent start`), in a child process, watched
through its log.

Its JSON log lines (LiveKit's `start` mode) are read on a thread and kept; callers wait for
a line that matches ("registered worker" before opening rooms: LiveKit dispatches a room
to the workers registered when the room is created, not to later ones). `stop()` sends
SIGTERM, which makes LiveKit drain: running sessions finish first.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
LogLine = dict[str, Any]


class WorkerProcess:
    def __init__(
        self,
        env: Mapping[str, str],
        *,
        command: str = "start",
        args: tuple[str, ...] = (),
        log_path: Path | None = None,
    ) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.command = command
        self.args = args
        self.log_path = log_path
        self.lines: list[LogLine] = []
        self.raw: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> WorkerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", self.command, *self.args],
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a signal to the test runner's group does not reach it
        )
        self._reader = threading.Thread(target=self._read, daemon=True, name="worker-log")
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        sink = open(self.log_path, "a", encoding="utf-8") if self.log_path else None  # noqa: SIM115
        try:
            for line in self.proc.stdout:
                if sink:
                    sink.write(line)
                    sink.flush()
                parsed: LogLine
                try:
                    parsed = json.loads(line)
                    if not isinstance(parsed, dict):
                        parsed = {"message": line.rstrip()}
                except json.JSONDecodeError:
                    parsed = {"message": line.rstrip()}
                with self._cond:
                    self.raw.append(line.rstrip("\n"))
                    self.lines.append(parsed)
                    self._cond.notify_all()
        finally:
            if sink:
                sink.close()
            with self._cond:
                self._cond.notify_all()

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def terminate(self) -> None:
        """SIGTERM: LiveKit drains (no new jobs, running sessions finish), then exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int:
        """Terminate and wait; kill the whole process group if it does not exit."""
        if self.proc is None:
            return 0
        self.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self._reader is not None:
            self._reader.join(5)
        return int(self.proc.returncode)

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the log
    def find(self, match: Callable[[LogLine], bool]) -> list[LogLine]:
        with self._cond:
            return [line for line in self.lines if match(line)]

    def messages(self, text: str) -> list[LogLine]:
        return self.find(lambda line: text in str(line.get("message", "")))

    def wait_for_sync(self, match: Callable[[LogLine], bool], timeout: float) -> LogLine:
        """Block until a log line matches; raise RuntimeError if the process exits first
        and TimeoutError after `timeout` seconds."""
        seen = 0
        with self._cond:
            deadline = _now() + timeout
            while True:
                for line in self.lines[seen:]:
                    if match(line):
                        return line
                seen = len(self.lines)
                if (
                    self.proc is not None
                    and self.proc.poll() is not None
                    and not (self._reader and self._reader.is_alive())
                ):
                    tail = " | ".join(self.raw[-5:])
                    raise RuntimeError(f"worker exited ({self.proc.returncode}): {tail}")
                left = deadline - _now()
                if left <= 0:
                    raise TimeoutError(f"no matching worker log line in {timeout}s")
                self._cond.wait(left)

    async def wait_for(self, match: Callable[[LogLine], bool], timeout: float) -> LogLine:
        return await asyncio.to_thread(self.wait_for_sync, match, timeout)

    async def wait_for_message(self, text: str, timeout: float = 60.0) -> LogLine:
        return await self.wait_for(lambda line: text in str(line.get("message", "")), timeout)

    async def wait_registered(self, timeout: float = 60.0) -> LogLine:
        return await self.wait_for_message("registered worker", timeout)

    async def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return await asyncio.to_thread(self.proc.wait, timeout)


def _now() -> float:
    import time

    return time.monotonic()
