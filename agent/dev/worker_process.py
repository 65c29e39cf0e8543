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
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from plugin_cartesia_ws.emulator.child_process import ChildProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
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
        self._lock = threading.Lock()
        self.process = ChildProcess(
            [sys.executable, "-m", "agent", self.command, *self.args],
            name="worker",
            env=self.env,
            cwd=REPO_ROOT,
            log_path=log_path,
            on_line=self._on_line,
            new_session=True,  # a signal to the test runner's group does not reach it
        )

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> WorkerProcess:
        self.process.start()
        return self

    def _on_line(self, line: str) -> None:
        parsed: LogLine
        try:
            parsed = json.loads(line)
            if not isinstance(parsed, dict):
                parsed = {"message": line.rstrip()}
        except json.JSONDecodeError:
            parsed = {"message": line.rstrip()}
        with self._lock:
            self.lines.append(parsed)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def terminate(self) -> None:
        """SIGTERM: LiveKit drains (no new jobs, running sessions finish), then exits."""
        self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int:
        """Terminate and wait; kill the whole process group if it does not exit."""
        return self.process.stop(timeout)

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the log
    def find(self, match: Callable[[LogLine], bool]) -> list[LogLine]:
        with self._lock:
            return [line for line in self.lines if match(line)]

    def messages(self, text: str) -> list[LogLine]:
        return self.find(lambda line: text in str(line.get("message", "")))

    def wait_for_sync(self, match: Callable[[LogLine], bool], timeout: float) -> LogLine:
        """Block until a log line matches; raise RuntimeError if the process exits first
        and TimeoutError after `timeout` seconds."""
        found: list[LogLine] = []
        seen = 0

        def matched() -> bool:
            nonlocal seen
            with self._lock:
                new, seen = self.lines[seen:], len(self.lines)
            found.extend(line for line in new if match(line))
            return bool(found)

        try:
            self.process.wait_until(matched, timeout)
        except TimeoutError:
            raise TimeoutError(f"no matching worker log line in {timeout}s") from None
        return found[0]

    async def wait_for(self, match: Callable[[LogLine], bool], timeout: float) -> LogLine:
        return await asyncio.to_thread(self.wait_for_sync, match, timeout)

    async def wait_for_message(self, text: str, timeout: float = 60.0) -> LogLine:
        return await self.wait_for(lambda line: text in str(line.get("message", "")), timeout)

    async def wait_registered(self, timeout: float = 60.0) -> LogLine:
        return await self.wait_for_message("registered worker", timeout)

    async def wait_exit(self, timeout: float) -> int:
        proc = self.process.proc
        assert proc is not None
        return await asyncio.to_thread(proc.wait, timeout)
