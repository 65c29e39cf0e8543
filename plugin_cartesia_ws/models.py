"""Literal types and defaults (LiveKit plugin convention); names match livekit-plugins-cartesia.
``TTSEncoding`` and ``ChunkingMode`` are the ones ``audio`` and ``chunking`` define."""

from __future__ import annotations

from typing import Literal

from .audio import Encoding
from .chunking import ChunkingMode as ChunkingMode  # re-exported

TTSModels = Literal[
    "sonic-3.6",
    "sonic-3.5",
    "sonic-3",
    "sonic-latest",
    "sonic-3-latest",
    "sonic-2",
    "sonic-turbo",
]
TTSEncoding = Encoding  # the four raw encodings (audio.ENCODINGS)
TTSSampleRate = Literal[8000, 16000, 22050, 24000, 44100, 48000]
TTSVoiceSpeed = Literal["fastest", "fast", "normal", "slow", "slowest"]
TTSVoiceEmotion = Literal[
    "neutral",
    "calm",
    "angry",
    "content",
    "sad",
    "scared",
    "happy",
    "excited",
    "curious",
    "sympathetic",
]
TTSLanguages = Literal[
    "en", "es", "fr", "de", "pt", "zh", "ja", "hi", "ko", "it", "nl", "pl", "ru", "sv", "tr",
    "tl", "bg", "ro", "ar", "cs", "el", "fi", "hr", "ms", "sk", "da", "ta", "uk", "hu", "no",
    "vi", "bn", "th", "he", "ka", "id", "te", "gu", "kn", "ml", "mr", "or", "pa", "ur",
]  # fmt: skip

# The official plugin's default voice, so a drop-in swap sounds the same.
TTSDefaultVoiceId = "f786b574-daa5-4673-aa0c-cbe3e8534c02"
DEFAULT_MODEL = "sonic-3"
DEFAULT_BASE_URL = "https://api.cartesia.ai"
# First version with structured error events (error_code, title, message); see
# docs/cartesia-protocol.md, section 1.3.
DEFAULT_API_VERSION = "2026-03-01"
# Cartesia closes a socket after 5 minutes without traffic; refresh a little before that.
IDLE_REFRESH_S = 270.0


def is_sonic_3(model: str) -> bool:
    """generation_config (speed, volume, emotion) only applies to the sonic-3 family."""
    return model.startswith("sonic-3") or model in ("sonic-latest",)
