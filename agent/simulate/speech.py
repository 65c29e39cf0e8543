"""The user's side of a simulated call: utterances from text (eSpeak) or a WAV file."""

from __future__ import annotations

import wave
from dataclasses import dataclass

import numpy as np

from ..dev.audio_io import read_wav

USER_RATE = 16000


class SimulationError(Exception):
    """The simulation cannot run or did not complete. `str(e)` is one line, for users."""


@dataclass
class Utterance:
    source: str  # "eSpeak" or the WAV path
    pcm: np.ndarray  # int16 mono, USER_RATE
    said: str | None = None  # the text, for eSpeak

    @property
    def duration(self) -> float:
        return len(self.pcm) / USER_RATE

    def voiced_range(self) -> tuple[float, float]:
        """Seconds from the start to the first and last voiced 10 ms frame."""
        hop = USER_RATE // 100
        n = len(self.pcm) // hop
        if n == 0:
            return 0.0, 0.0
        frames = self.pcm[: n * hop].astype(np.float64).reshape(n, hop)
        rms = np.sqrt((frames**2).mean(axis=1))
        voiced = np.flatnonzero(rms > max(150.0, 0.05 * rms.max()))
        if not len(voiced):
            return 0.0, 0.0
        return voiced[0] * hop / USER_RATE, (voiced[-1] + 1) * hop / USER_RATE

    def describe(self) -> str:
        what = f'"{self.said}"' if self.said is not None else self.source
        via = "eSpeak" if self.said is not None else "WAV"
        return f"{what} ({via}, {self.duration:.1f} s)"


def espeak_utterance(text: str) -> Utterance:
    from plugin_cartesia_ws.emulator.voices import EspeakVoice, VoiceUnavailable

    if not text.strip():
        raise SimulationError(f"nothing to say: the text to speak is empty ({text!r})")
    try:
        voice = EspeakVoice()
    except VoiceUnavailable as e:
        raise SimulationError(
            f"eSpeak NG is needed to speak --say text ({e}): pip install espeakng-loader, "
            "or give a recording with --input file.wav"
        ) from None
    rendering = voice.render(text, sample_rate=USER_RATE)
    if not len(rendering.samples):
        raise SimulationError(f"eSpeak produced no audio for {text!r}")
    return Utterance("eSpeak", rendering.samples.astype(np.int16), said=text)


def wav_utterance(path: str) -> Utterance:
    from plugin_cartesia_ws.emulator.resample import resample_s16

    try:
        pcm, rate = read_wav(path)
    except FileNotFoundError:
        raise SimulationError(f"{path}: no such file") from None
    except (wave.Error, ValueError, EOFError, OSError) as e:
        raise SimulationError(f"{path}: not a readable WAV file ({e})") from None
    if rate != USER_RATE:
        pcm = resample_s16(pcm, rate, USER_RATE)
    if not len(pcm):
        raise SimulationError(f"{path}: the file holds no audio")
    return Utterance(path, pcm.astype(np.int16))
