"""What the worker says when the room side is wrong: no server or a wrong secret (one line
and exit status 2 at once: LiveKit's own worker retries for minutes), and a room it cannot
join (one line, the job ends, the worker stays for the next room)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from livekit import api

from agent.dev.livekit_server import LocalServer, free_port
from agent.dev.worker_process import REPO_ROOT, WorkerProcess

from .conftest import Stack, new_room

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


async def test_a_room_the_agent_cannot_join(stack: Stack, tmp_path: Path) -> None:
    # a server that creates rooms only through its API: the room is deleted while the
    # agent is on its way, so its join is refused ("requested room does not exist")
    with LocalServer(
        stack.server.binary,
        extra_args=("--room.auto_create=false",),
        log_path=tmp_path / "server.log",
    ) as server:
        worker = WorkerProcess(
            stack.worker_env(
                LIVEKIT_URL=server.url,
                LIVEKIT_API_KEY=server.api_key,
                LIVEKIT_API_SECRET=server.api_secret,
                AGENT_NAME="latecomer",
            ),
            log_path=tmp_path / "worker.log",
        ).start()
        try:
            await worker.wait_registered(timeout=120)
            room = new_room("vanishing")
            async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
                await lk.room.create_room(api.CreateRoomRequest(name=room))
                await lk.agent_dispatch.create_dispatch(
                    api.CreateAgentDispatchRequest(agent_name="latecomer", room=room)
                )
                await worker.wait_for_message("received job request", timeout=60)
                await lk.room.delete_room(api.DeleteRoomRequest(room=room))
            line = await worker.wait_for(
                lambda entry: "cannot join room" in str(entry.get("message")), timeout=60
            )
            message = str(line["message"])
            assert line["level"] == "ERROR"
            assert message.startswith(f"cannot join room {room}: ") and "\n" not in message
            assert "does not exist" in message
            # the job's process ends; the worker itself carries on
            await worker.wait_for(
                lambda entry: (
                    entry.get("room") == room and "process exiting" in str(entry.get("message"))
                ),
                timeout=60,
            )
            assert worker.returncode is None
        finally:
            worker.stop()
