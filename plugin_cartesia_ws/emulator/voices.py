"""The emulator's synthesizers: text -> int16 audio + word and phoneme timestamps.

* ``ToneVoice`` (``tone``): a harmonic tone per word; byte-exact deterministic, no dependencies.
* ``EspeakVoice`` (``espeak``): real (robotic) speech from libespeak-ng via ctypes.

Both report words as Cartesia does (``rendering``). This module picks one.
"""

from __future__ import annotations

import logging

from .espeak import EspeakVoice
from .rendering import MAX_SPEED, MIN_SPEED, Rendering, TimedToken, Voice, VoiceUnavailable
from .tone import ToneVoice

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_SPEED",
    "MIN_SPEED",
    "EspeakVoice",
    "Rendering",
    "TimedToken",
    "ToneVoice",
    "Voice",
    "VoiceUnavailable",
    "make_voice",
]


def make_voice(kind: str = "auto") -> Voice:
    """Voice by kind: "tone", "espeak", or "auto" (espeak if libespeak-ng loads, else tone)."""
    kind = kind.strip().lower()
    if kind == "tone":
        return ToneVoice()
    if kind == "espeak":
        return EspeakVoice()
    if kind != "auto":
        raise ValueError(f"unknown voice kind {kind!r}; expected 'tone', 'espeak' or 'auto'")
    try:
        voice = EspeakVoice()
    except VoiceUnavailable as exc:
        logger.info("emulator voice: tone (espeak unavailable: %s)", exc)
        return ToneVoice()
    logger.info("emulator voice: espeak (%s)", voice.library)
    return voice
