"""`python -m agent simulate --room`: the offline voice turns through a real LiveKit server.

What runs: LiveKit's server (built from the Go module proxy, `agent.livekit_server`), the
worker as users run it (`python -m agent start`, a child process), the Cartesia emulator
and a local OpenAI-compatible server (echo LLM; Whisper STT when installed, else the text
that was spoken) in this process, and a `RoomUser` that speaks each utterance into the room
over WebRTC and listens. The latency is what that participant hears: from the end of its
own speech to the first voiced frame of the agent's reply.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plugin_cartesia_ws.emulator import CartesiaEmulator

from .__main__ import make_token
from .livekit_server import LocalServer, ServerUnavailable, ensure_binary
from .local_openai import FakeOpenAI, TranscriptionRequest
from .offline_llm import echo_reply
from .room_user import HEARD_RATE, RoomUser
from .settings import Settings
from .worker_process import WorkerProcess

AGENT_NAME = "simulate-room"


class RoomSimulationError(RuntimeError):
    """One line for users."""


@dataclass
class HeardTurn:
    said: str
    user_stopped: float
    first_audio: float
    reply_end: float

    @property
    def latency_ms(self) -> float:
        return (self.first_audio - self.user_stopped) * 1000

    @property
    def reply_s(self) -> float:
        return self.reply_end - self.first_audio


def _transcriber(spoken: list[str]) -> object:
    """Whisper tiny.en when installed (`make demo` installs it), else the text that was
    spoken, in order (so the turn still runs, with an exact transcript)."""
    from .local_stt import LocalSTTUnavailable, WhisperSTT

    whisper: WhisperSTT | None
    try:
        whisper = WhisperSTT()
        whisper.load()
    except LocalSTTUnavailable:
        whisper = None

    def recognize(request: TranscriptionRequest) -> str:
        assert whisper is not None
        pcm = request.pcm.astype(np.float32) / 32768.0
        if request.sample_rate != 16000:
            from plugin_cartesia_ws.audio import resample_s16

            pcm = resample_s16(request.pcm, request.sample_rate, 16000).astype(np.float32) / 32768.0
        return whisper.transcribe(pcm)[0]

    async def transcribe(request: TranscriptionRequest) -> str:
        if whisper is not None:
            return await asyncio.to_thread(recognize, request)
        return spoken.pop(0) if spoken else ""

    return transcribe


async def run(
    utterances: list[tuple[str, np.ndarray]], out_dir: Path, *, timeout: float
) -> list[HeardTurn]:
    try:
        binary = ensure_binary()
    except ServerUnavailable as e:
        raise RoomSimulationError(str(e)) from None
    logs = Path(tempfile.mkdtemp(prefix="simulate-room-", dir=out_dir))
    spoken = [text for text, _ in utterances]
    with LocalServer(binary, log_path=logs / "livekit-server.log") as server:
        emulator = await CartesiaEmulator(voice="auto").start()
        openai = await FakeOpenAI(
            replies=lambda messages: echo_reply(str(messages[-1].get("content", ""))),
            transcripts=_transcriber(list(spoken)),  # type: ignore[arg-type]
            ttft=0.25,
            token_interval=0.02,
        ).start()
        worker = WorkerProcess(
            {
                "LIVEKIT_URL": server.url,
                "LIVEKIT_API_KEY": server.api_key,
                "LIVEKIT_API_SECRET": server.api_secret,
                "CARTESIA_API_KEY": emulator.api_key,
                "CARTESIA_BASE_URL": emulator.url,
                "OPENAI_BASE_URL": openai.base_url,
                "OPENAI_API_KEY": "sk-local",
                "AGENT_NAME": AGENT_NAME,
                "WORKER_MAX_JOBS": "1",
                "WORKER_PORT": "0",
            },
            log_path=logs / "worker.log",
        ).start()
        try:
            print(f"livekit-server {server.url}, worker starting (logs: {logs}) ...")
            await worker.wait_registered(timeout=120)
            settings = Settings(
                livekit_url=server.url,
                livekit_api_key=server.api_key,
                livekit_api_secret=server.api_secret,
            )
            room = f"simulate-{uuid.uuid4().hex[:6]}"
            token = make_token(settings, room=room, identity="user", agent_name=AGENT_NAME)
            turns: list[HeardTurn] = []
            async with RoomUser(server.url, token) as user:
                await user.wait_for_agent(timeout=timeout)
                await user.wait_for_agent_state("listening", after=0.0, timeout=timeout)
                for text, pcm in utterances:
                    said = user.say(pcm)
                    await said.done.wait()
                    first = await user.wait_for_agent_audio(after=said.voice_end, timeout=timeout)
                    end = await user.wait_for_reply_end(after=first, timeout=timeout)
                    turns.append(HeardTurn(text, said.voice_end, first, end))
                heard = user.heard.pcm_between(turns[0].first_audio - 0.2, turns[-1].reply_end)
            _write_wav(out_dir / "room_reply.wav", heard)
            return turns
        except TimeoutError:
            raise RoomSimulationError(
                f"no reply heard in the room within {timeout:.0f} s (logs: {logs})"
            ) from None
        finally:
            worker.stop()
            await openai.aclose()
            await emulator.stop()


def _write_wav(path: Path, pcm: np.ndarray) -> None:
    from .audio_io import write_wav

    write_wav(str(path), pcm, HEARD_RATE)


def print_turns(turns: list[HeardTurn]) -> None:
    print("\nheard by the participant over WebRTC (user stops speaking -> first agent audio):")
    print(f"{'turn':<5} {'latency':>9} {'reply':>7}  user said")
    for i, t in enumerate(turns, 1):
        print(f"{i:<5} {t.latency_ms:>6.0f} ms {t.reply_s:>5.1f} s  {t.said}")


def main(args: argparse.Namespace, utterances: list[tuple[str, np.ndarray]], out_dir: Path) -> int:
    started = time.perf_counter()
    with contextlib.suppress(KeyboardInterrupt):
        turns = asyncio.run(run(utterances, out_dir, timeout=args.timeout))
        print_turns(turns)
        print(f"\nwrote {out_dir / 'room_reply.wav'} ({time.perf_counter() - started:.0f} s)")
        return 0
    return 130
