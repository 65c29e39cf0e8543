"""Smallest offline demo: the emulator speaks a sentence through this plugin into a WAV
file, with nothing but a plain install from a checkout of this repository (``pip install .``;
the package is not on PyPI): ``python -m plugin_cartesia_ws.demo``. ``make demo`` runs a
full voice turn instead."""

from __future__ import annotations

import argparse
import asyncio
import time
import wave
from pathlib import Path

import aiohttp

from .emulator import CartesiaEmulator
from .tts import TTS

SENTENCE = "Hello! This sentence was spoken by the local Cartesia emulator, with no network at all."
RATE = 24000


async def speak(text: str, out: Path, voice: str) -> None:
    async with CartesiaEmulator(voice=voice) as emu, aiohttp.ClientSession() as http:
        tts = TTS(api_key=emu.api_key, base_url=emu.url, sample_rate=RATE, http_session=http)
        started = time.perf_counter()
        first_audio = None
        audio = bytearray()
        try:
            async with tts.synthesize(text) as stream:
                async for event in stream:
                    first_audio = first_audio or time.perf_counter() - started
                    audio += bytes(event.frame.data)
        finally:
            await tts.aclose()
        voice_name = emu.state.voice.name if emu.state else voice
    out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(bytes(audio))
    print(f"voice: {voice_name}")
    print(f"time to first audio: {1000 * (first_audio or 0):.0f} ms (emulated model latency)")
    print(f"audio: {len(audio) / 2 / RATE:.2f} s")
    print(f"wrote {out}")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m plugin_cartesia_ws.demo", description=__doc__)
    p.add_argument("text", nargs="?", default=SENTENCE)
    p.add_argument("-o", "--out", default="out/emulator-demo.wav")
    p.add_argument("--voice", default="auto", choices=["auto", "espeak", "tone"])
    args = p.parse_args()
    asyncio.run(speak(args.text, Path(args.out), args.voice))


if __name__ == "__main__":
    main()
