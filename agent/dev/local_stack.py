"""The worker and what it talks to, started on this machine: a LiveKit server, the Cartesia
emulator, a local OpenAI-compatible server, and `python -m agent start` as a child process.

`python -m agent simulate --room` and `python -m agent playground` start it through
`local_agent()`, the room tests build the same worker environment with `worker_env()`. Each
part is optional, so a caller starts only what is missing (the playground uses LiveKit
Cloud or real Cartesia keys when they are set). Rooms may be opened once `local_agent()`
has yielded: the worker has registered by then (LiveKit dispatches a room only to the
workers registered when it is created).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from plugin_cartesia_ws.emulator import CartesiaEmulator

from ..settings import Settings
from ..token import make_token
from .livekit_server import LocalServer, ensure_binary
from .local_openai import FakeOpenAI, TranscriptionRequest
from .offline_llm import echo_reply
from .worker_process import WorkerProcess

if TYPE_CHECKING:
    from .local_stt import WhisperSTT


# What the worker logs as its LLM and STT when the local stand-in answers for OpenAI.
ECHO_LLM_NAME = "offline-echo-llm"
LOCAL_WHISPER_NAME = "local-whisper-tiny.en"
FIXED_TRANSCRIPT_NAME = "fixed-transcript"


def server_settings(server: LocalServer) -> Settings:
    return Settings(
        livekit_url=server.url,
        livekit_api_key=server.api_key,
        livekit_api_secret=server.api_secret,
    )


def worker_env(
    livekit: Settings,
    *,
    emulator: CartesiaEmulator | None = None,
    openai: FakeOpenAI | None = None,
    **overrides: str,
) -> dict[str, str]:
    """The environment of a worker on `livekit`, using the local stand-ins that are given
    (the others come from the caller's environment)."""
    livekit.require("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
    env = {
        "LIVEKIT_URL": str(livekit.livekit_url),
        "LIVEKIT_API_KEY": str(livekit.livekit_api_key),
        "LIVEKIT_API_SECRET": str(livekit.livekit_api_secret),
        "WORKER_PORT": "0",
        "WORKER_HOST": "127.0.0.1",  # its health check, like everything here, on loopback
        # capacity by job slots, not CPU: LiveKit's server weighs workers by 1 - load and
        # dispatches to none when a busy machine's CPU load reaches 1.0
        "WORKER_MAX_JOBS": "4",
    }
    if emulator is not None:
        env.update(CARTESIA_API_KEY=emulator.api_key, CARTESIA_BASE_URL=emulator.url)
    if openai is not None:
        # the stand-in's own names, so the worker's log says what answers
        env.update(
            OPENAI_BASE_URL=openai.base_url,
            OPENAI_API_KEY="sk-local",
            OPENAI_LLM_MODEL=openai.model,
            OPENAI_STT_MODEL=openai.stt_model,
        )
    env.update(overrides)
    return env


def local_whisper() -> WhisperSTT | None:
    """Whisper tiny.en, loaded, when installed (`pip install -e ".[whisper]"`)."""
    from .local_stt import LocalSTTUnavailable, WhisperSTT

    try:
        whisper = WhisperSTT()
        whisper.load()
    except LocalSTTUnavailable:
        return None
    return whisper


def echo_openai(
    whisper: WhisperSTT | None,
    fallback: Callable[[], str],
    *,
    ttft: float = 0.25,
    token_interval: float = 0.02,
) -> FakeOpenAI:
    """The local OpenAI stand-in: the offline echo LLM, and `whisper` as the STT (without
    it, `fallback()` is every transcript)."""

    def recognize(request: TranscriptionRequest) -> str:
        assert whisper is not None
        pcm = request.pcm
        if request.sample_rate != 16000:
            from plugin_cartesia_ws.emulator.resample import resample_s16

            pcm = resample_s16(request.pcm, request.sample_rate, 16000)
        return whisper.transcribe(pcm.astype(np.float32) / 32768.0)[0]

    async def transcribe(request: TranscriptionRequest) -> str:
        if whisper is not None:
            return await asyncio.to_thread(recognize, request)
        return fallback()

    return FakeOpenAI(
        replies=lambda messages: echo_reply(str(messages[-1].get("content", ""))),
        transcripts=transcribe,
        ttft=ttft,
        token_interval=token_interval,
        model=ECHO_LLM_NAME,
        stt_model=LOCAL_WHISPER_NAME if whisper is not None else FIXED_TRANSCRIPT_NAME,
    )


@dataclass
class LocalAgent:
    """What `local_agent()` runs; the parts it did not start are None."""

    livekit: Settings  # the server the rooms are on, with its keys
    agent_name: str
    server: LocalServer | None
    emulator: CartesiaEmulator | None
    openai: FakeOpenAI | None
    worker: WorkerProcess | None

    @property
    def url(self) -> str:
        assert self.livekit.livekit_url is not None
        return self.livekit.livekit_url

    def token(self, room: str, identity: str) -> str:
        """A join token that also dispatches this agent to the room."""
        return make_token(self.livekit, room=room, identity=identity, agent_name=self.agent_name)


@contextlib.asynccontextmanager
async def local_agent(
    *,
    logs: Path,
    agent_name: str,
    livekit: Settings | None = None,
    emulator: CartesiaEmulator | None = None,
    openai: FakeOpenAI | None = None,
    worker: bool = True,
    max_jobs: int = 1,
    register_timeout: float = 120.0,
    worker_stop_timeout: float = 30.0,
) -> AsyncIterator[LocalAgent]:
    """Start what is given or missing and stop it on exit: a LiveKit server unless
    `livekit` names one, the (not yet started) `emulator` and `openai` stand-ins, and a
    worker named `agent_name` on that server (unless `worker` is False). Raises
    `ServerUnavailable` when no server can be built, TimeoutError when the worker does not
    register. On exit the worker drains: its running sessions get `worker_stop_timeout` s."""
    async with contextlib.AsyncExitStack() as stack:
        server = None
        if livekit is None:
            server = LocalServer(ensure_binary(), log_path=logs / "livekit-server.log")
            stack.enter_context(server)
            livekit = server_settings(server)
        if emulator is not None:
            await emulator.start()
            stack.push_async_callback(emulator.stop)
        if openai is not None:
            await openai.start()
            stack.push_async_callback(openai.aclose)
        process = None
        if worker:
            env = worker_env(
                livekit,
                emulator=emulator,
                openai=openai,
                AGENT_NAME=agent_name,
                WORKER_MAX_JOBS=str(max_jobs),
            )
            process = WorkerProcess(env, log_path=logs / "worker.log").start()
            stack.callback(process.stop, worker_stop_timeout)
            await process.wait_registered(timeout=register_timeout)
        yield LocalAgent(livekit, agent_name, server, emulator, openai, process)
