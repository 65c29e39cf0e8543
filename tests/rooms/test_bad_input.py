"""What the worker says when the room side is wrong: no server, or a wrong secret. One
clear line and exit status 2, at once (LiveKit's own worker retries for minutes)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from agent.livekit_server import free_port
from agent.worker_process import REPO_ROOT

from .conftest import Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")


def run_worker(stack: Stack, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = stack.worker_env(**overrides)
    return subprocess.run(
        [sys.executable, "-m", "agent", "start"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,  # LiveKit's own worker would retry for minutes
    )


async def test_no_server_is_one_line_and_exit_status(stack: Stack) -> None:
    url = f"ws://127.0.0.1:{free_port()}"  # nothing listens there
    out = run_worker(stack, LIVEKIT_URL=url)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: cannot reach a LiveKit server at {url}")


async def test_wrong_secret_is_one_line_and_exit_status(stack: Stack) -> None:
    out = run_worker(stack, LIVEKIT_API_SECRET="not-the-secret-" + "x" * 20)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "rejected LIVEKIT_API_KEY/LIVEKIT_API_SECRET" in lines[0]
    assert "not-the-secret" not in out.stderr + out.stdout
