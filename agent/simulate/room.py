"""`python -m agent simulate --room`: the offline voice turns through a real LiveKit server.

What runs: LiveKit's server (built from the Go module proxy, `agent.dev.livekit_server`), the
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

from ..dev.livekit_server import ServerUnavailable
from ..dev.local_stack import echo_openai, local_agent, local_whisper
from ..dev.room_user import HEARD_RATE, RoomUser

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


async def run(
    utterances: list[tuple[str, np.ndarray]], out_dir: Path, *, timeout: float
) -> list[HeardTurn]:
    logs = Path(tempfile.mkdtemp(prefix="simulate-room-", dir=out_dir))
    spoken = [text for text, _ in utterances]
    print(f"livekit-server, emulator and worker starting (logs: {logs}) ...")
    try:
        async with local_agent(
            logs=logs,
            agent_name=AGENT_NAME,
            emulator=CartesiaEmulator(voice="auto"),
            # without Whisper the stand-in STT hears exactly what was spoken, in order
            openai=echo_openai(local_whisper(), lambda: spoken.pop(0) if spoken else ""),
        ) as local:
            turns: list[HeardTurn] = []
            room = f"simulate-{uuid.uuid4().hex[:6]}"
            async with RoomUser(local.url, local.token(room, "user")) as user:
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
    except ServerUnavailable as e:
        raise RoomSimulationError(str(e)) from None
    except TimeoutError:
        raise RoomSimulationError(
            f"no reply heard in the room within {timeout:.0f} s (logs: {logs})"
        ) from None


def _write_wav(path: Path, pcm: np.ndarray) -> None:
    from ..dev.audio_io import write_wav

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
        heard_s = sum(t.reply_s for t in turns)
        took = time.perf_counter() - started
        print(
            f"\nwrote {out_dir / 'room_reply.wav'} (the agent as heard, {heard_s:.1f} s of reply)"
        )
        print(f"the run took {took:.0f} s")
        return 0
    return 130
