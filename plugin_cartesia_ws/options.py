"""A TTS's settings, apart from the TTS: each turn works from its own copy, and the turn's
modules (``stream``, ``chunked``) need them, and what a turn needs of its TTS (``TurnHost``),
without importing ``tts``, which imports them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from . import protocol
from .chunking import ChunkingPolicy
from .log import WarnOnce
from .pool import SocketPool


@dataclass
class TTSOptions:
    """Everything a TTS is configured with; each turn takes its own copy."""

    model: str
    voice: str
    language: str | None
    encoding: str
    sample_rate: int
    speed: float | str | None
    emotion: tuple[str, ...]
    volume: float | None
    word_timestamps: bool
    add_phoneme_timestamps: bool
    use_normalized_timestamps: bool
    pronunciation_dict_id: str | None
    chunking: ChunkingPolicy
    api_key: str = field(repr=False)
    base_url: str
    api_version: str

    def context_options(self) -> protocol.ContextOptions:
        return protocol.ContextOptions(
            model=self.model,
            voice=self.voice,
            encoding=self.encoding,
            sample_rate=self.sample_rate,
            language=self.language,
            max_buffer_delay_ms=self.chunking.buffer_delay_ms(),
            speed=self.speed,
            emotion=self.emotion,
            volume=self.volume,
            word_timestamps=self.word_timestamps,
            add_phoneme_timestamps=self.add_phoneme_timestamps,
            use_normalized_timestamps=self.use_normalized_timestamps,
            pronunciation_dict_id=self.pronunciation_dict_id,
        )

    def ws_url(self) -> str:
        base = self.base_url.rstrip("/").replace("http", "ws", 1)
        return f"{base}/tts/websocket?cartesia_version={self.api_version}"


class TurnHost(Protocol):
    """What a turn needs of the TTS that made it (``tts.TTS`` is one). Structural, so this
    module and ``chunked`` never import ``tts``, which imports them."""

    @property
    def pool(self) -> SocketPool: ...

    @property
    def sample_rate(self) -> int: ...

    _tokenizer: Any  # a user's SentenceTokenizer, or NOT_GIVEN
    _warn_once: WarnOnce

    def _options_snapshot(self) -> TTSOptions: ...
