"""``ToneVoice``: deterministic stand-in speech, a harmonic tone per word.

Byte-exact the same for the same input, with no dependencies: what tests compare against.
"""

from __future__ import annotations

import zlib

import numpy as np

from .rendering import Rendering, TimedToken, Token, check_rate, clamp_speed, silence, tokenize

_LETTER_SECONDS = 0.06
_WORD_SECONDS = 0.05
_WORD_GAP_SECONDS = 0.03
_SYMBOL_PAUSE_SECONDS = 0.1
_FADE_SECONDS = 0.005
_HARMONICS = ((1, 0.40), (2, 0.20), (3, 0.10))  # (multiple of f0, amplitude re full scale)
_TONE_BLOCK = 1 << 16


def _letter_phonemes(word: TimedToken) -> list[TimedToken]:
    """One pseudo-phoneme per letter/digit, evenly spread over the word."""
    letters = [char for char in word.text if char.isalnum()]
    step = (word.end - word.start) / len(letters)
    return [
        TimedToken(letter, word.start + i * step, min(word.end, word.start + (i + 1) * step))
        for i, letter in enumerate(letters)
    ]


def _word_pitch(word: str) -> float:
    """A stable 110-260 Hz base frequency per word (crc32: not salted like hash())."""
    digest = zlib.crc32(word.lower().encode("utf-8", "surrogatepass"))
    return 110.0 + (digest % 1000) * 0.15


def _tone(n_samples: int, f0: float, sample_rate: int) -> np.ndarray:
    out = np.empty(n_samples, dtype=np.int16)
    for first in range(0, n_samples, _TONE_BLOCK):
        phase = 2.0 * np.pi * f0 * np.arange(first, min(n_samples, first + _TONE_BLOCK))
        wave = sum(amp * np.sin(phase * k / sample_rate) for k, amp in _HARMONICS)
        out[first : first + len(phase)] = np.rint(wave * 32767.0)
    fade = min(int(_FADE_SECONDS * sample_rate), n_samples // 2)
    if fade > 0:
        ramp = np.arange(1, fade + 1) / (fade + 1)
        out[:fade] = np.rint(out[:fade] * ramp)
        out[n_samples - fade :] = np.rint(out[n_samples - fade :] * ramp[::-1])
    return out


class ToneVoice:
    """Deterministic stand-in speech: a 3-harmonic tone per word, digital silence between.

    Per word 0.06 s per letter/digit + 0.05 s, then 0.03 s of silence, +0.08 s after , ; :
    and +0.15 s after . ! ?; all divided by ``speed``. Same input -> same bytes, always.
    """

    name = "tone"

    def render(
        self, text: str, *, sample_rate: int, speed: float = 1.0, language: str | None = None
    ) -> Rendering:
        rate = check_rate(sample_rate)
        scale = rate / clamp_speed(speed)  # samples per second of speech at speed 1

        def samples(seconds: float) -> int:
            return max(0, round(seconds * scale))

        layout: list[tuple[Token, int, int]] = []  # (token, first sample, sample count)
        cursor = 0
        for token in tokenize(text):
            if token.is_word:
                letters = sum(char.isalnum() for char in token.text)
                length = samples(_LETTER_SECONDS * letters + _WORD_SECONDS)
                layout.append((token, cursor, length))
                cursor += length + samples(_WORD_GAP_SECONDS + token.pause_after)
            else:
                cursor += samples(_SYMBOL_PAUSE_SECONDS + token.pause_after)
        if cursor == 0:
            return silence(rate)

        audio = np.zeros(cursor, dtype=np.int16)
        words, phonemes = [], []
        for token, first, length in layout:
            audio[first : first + length] = _tone(length, _word_pitch(token.text), rate)
            word = TimedToken(token.text, first / rate, (first + length) / rate)
            words.append(word)
            phonemes.extend(_letter_phonemes(word))
        return Rendering(audio, rate, words, phonemes)
