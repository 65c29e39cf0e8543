"""Local stand-ins for cloud services and LiveKit I/O, for offline tests."""

from agent.local_openai import FakeOpenAI, TranscriptionRequest, split_tokens

from .livekit_io import CollectingTextOutput, InstantAudioOutput, StubTTS

__all__ = [
    "CollectingTextOutput",
    "FakeOpenAI",
    "InstantAudioOutput",
    "StubTTS",
    "TranscriptionRequest",
    "split_tokens",
]
