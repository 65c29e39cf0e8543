"""Smallest offline demo: the emulator speaks a sentence through the official ``cartesia``
SDK client into a WAV file. ``make demo`` runs the full voice turn (``python -m agent
simulate``); this one shows the emulator alone: ``python -m plugin_cartesia_ws.demo``."""

from __future__ import annotations

import argparse
import asyncio
import time
import wave
from pathlib import Path

from cartesia import AsyncCartesia

from .emulator import CartesiaEmulator

SENTENCE = "Hello! This sentence was spoken by the local Cartesia emulator, with no network at all."


async def speak(text: str, out: Path, voice: str) -> None:
    async with CartesiaEmulator(voice=voice) as emu:
        client = AsyncCartesia(
            api_key=emu.api_key,
            base_url=emu.url,
            websocket_base_url=emu.url.replace("http://", "ws://"),
            max_retries=0,
        )
        started = time.perf_counter()
        first_audio = None
        audio = bytearray()
        words: list[str] = []
        async with client.tts.websocket_connect() as conn:
            ctx = conn.context(
                model_id="sonic-3",
                voice="f786b574-daa5-4673-aa0c-cbe3e8534c02",
                output_format={"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000},
                add_timestamps=True,
                max_buffer_delay_ms=0,
            )
            await ctx.push(text)
            await ctx.no_more_inputs()
            async for event in ctx.receive():
                if event.type == "chunk" and event.audio:
                    first_audio = first_audio or time.perf_counter() - started
                    audio += event.audio
                elif event.type == "timestamps" and event.word_timestamps:
                    words += event.word_timestamps.words
                elif event.type == "error":
                    raise SystemExit(f"emulator error: {event.title}: {event.message}")
        voice_name = emu.state.voice.name if emu.state else voice
    out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(24000)
        wav.writeframes(bytes(audio))
    print(f"voice: {voice_name}")
    print(f"time to first audio: {1000 * (first_audio or 0):.0f} ms (emulated model latency)")
    print(f"audio: {len(audio) / 2 / 24000:.2f} s, {len(words)} timed words")
    print(f"wrote {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("text", nargs="?", default=SENTENCE)
    p.add_argument("-o", "--out", default="out/emulator-demo.wav")
    p.add_argument("--voice", default="auto", choices=["auto", "espeak", "tone"])
    args = p.parse_args()
    asyncio.run(speak(args.text, Path(args.out), args.voice))


if __name__ == "__main__":
    main()
