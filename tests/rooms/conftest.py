"""Fixtures for the room tests: a real LiveKit server (built from the Go module proxy when
missing), the Cartesia emulator and the local OpenAI-compatible server on this test
process's event loop, and the worker as a child process, as users run it.

One server, one emulator, one OpenAI stand-in and one default worker serve the whole test
session (all room tests share the session's event loop). Without a server binary and
without Go the tests are skipped with one line; under CI (CI=true) that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from agent.dev.livekit_server import LocalServer, ServerUnavailable, ensure_binary
from agent.dev.local_openai import FakeOpenAI, TranscriptionRequest
from agent.dev.local_stack import server_settings, worker_env
from agent.dev.room_user import RoomUser
from agent.dev.worker_process import WorkerProcess
from agent.settings import Settings
from agent.token import make_token
from plugin_cartesia_ws.emulator import CartesiaEmulator

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
AGENT = "voice-agent"  # the default worker's AGENT_NAME: tokens dispatch it explicitly


@pytest.fixture(scope="session")
def livekit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    try:
        binary = ensure_binary()
    except ServerUnavailable as e:
        if IN_CI:
            pytest.fail(f"room tests cannot run in CI: {e}")
        pytest.skip(str(e))
    logs = tmp_path_factory.mktemp("livekit")
    server = LocalServer(binary, log_path=logs / "livekit-server.log")
    server.start()
    yield server
    server.stop()


@dataclass
class Script:
    """What the stand-in STT hears and the stand-in LLM answers; tests set it before the
    user speaks. Replies are looked up by the user's last message."""

    transcript: str = "Hello there."
    replies: dict[str, str] = field(default_factory=dict)
    default_reply: str = "Hi! How can I help you today?"

    def transcribe(self, request: TranscriptionRequest) -> str:
        return self.transcript

    def reply(self, messages: list[dict[str, Any]]) -> str:
        users = [m for m in messages if m.get("role") == "user"]
        last = users[-1].get("content") if users else ""
        if isinstance(last, list):  # content parts
            last = " ".join(str(p.get("text", "")) for p in last if isinstance(p, dict))
        return self.replies.get(str(last).strip(), self.default_reply)


@dataclass
class Stack:
    """Everything a room test talks to, and how to start more workers against it."""

    server: LocalServer
    emulator: CartesiaEmulator
    openai: FakeOpenAI
    script: Script
    logs: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def worker_env(self, **overrides: str) -> dict[str, str]:
        env = {"AGENT_NAME": "", **overrides}
        return worker_env(self.settings(), emulator=self.emulator, openai=self.openai, **env)

    async def start_worker(self, name: str, **overrides: str) -> WorkerProcess:
        worker = WorkerProcess(
            self.worker_env(**overrides), log_path=self.logs / f"worker-{name}.log"
        ).start()
        self.workers.append(worker)
        await worker.wait_registered(timeout=120)
        return worker

    def settings(self) -> Settings:
        return server_settings(self.server)

    def token(self, room: str, *, identity: str = "user", agent: str = "") -> str:
        """What `python -m agent token` mints (the same function)."""
        return make_token(self.settings(), room=room, identity=identity, agent_name=agent)

    def user(self, room: str | None = None, *, agent: str = AGENT) -> RoomUser:
        room = room or new_room()
        return RoomUser(self.server.url, self.token(room, agent=agent))


def new_room(prefix: str = "room") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(
    livekit_server: LocalServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    script = Script()
    emulator = await CartesiaEmulator(voice="espeak", record_audio=True).start()
    openai = await FakeOpenAI(
        replies=script.reply, transcripts=script.transcribe, ttft=0.2, token_interval=0.02
    ).start()
    built = Stack(livekit_server, emulator, openai, script, tmp_path_factory.mktemp("workers"))
    try:
        yield built
    finally:
        for worker in built.workers:
            worker.stop()
        await openai.aclose()
        await emulator.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def default_worker(stack: Stack) -> WorkerProcess:
    """The worker most tests talk to. It is named, so it joins only rooms whose token
    dispatches it and the other tests' workers never meet it."""
    return await stack.start_worker("default", AGENT_NAME=AGENT)
