"""Local stand-ins for cloud services and LiveKit I/O, for offline tests."""

from agent.dev.local_openai import FakeOpenAI, TranscriptionRequest
from agent.dev.scripted import llm_tokens

from .livekit_io import StubTTS

__all__ = [
    "FakeOpenAI",
    "StubTTS",
    "TranscriptionRequest",
    "llm_tokens",
]
