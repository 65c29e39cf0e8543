"""A TTS's settings, apart from the TTS: each turn works from its own copy, and the turn's
modules (``stream``, ``chunked``) need them, and what a turn needs of its TTS (``TurnHost``),
without importing ``tts``, which imports them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from livekit.agents.utils import is_given

from . import protocol
from .chunking import ChunkingPolicy, TextChunker, TokenizerChunker
from .log import WarnOnce
from .pacing import PacingPolicy
from .pool import SocketPool
from .turn import TurnConfig

FIRST_RECEIPTS_VERSION = "2024-11-13"  # API versions before it never send flush_done


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
    pacing: PacingPolicy | None
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

    def turn_config(self, timeout: float, paced: bool) -> TurnConfig:
        """A turn's settings; receipts where the server sends them and holds no text."""
        options = self.context_options()
        receipts = options.max_buffer_delay_ms == 0 and self.api_version >= FIRST_RECEIPTS_VERSION
        pacing = self.pacing if paced else None
        return TurnConfig(options=options, timeout=timeout, receipts=receipts, pacing=pacing)

    def chunker(self, tokenizer: Any) -> TextChunker | TokenizerChunker:
        """A user's SentenceTokenizer decides the chunks when given; else our policy."""
        return TokenizerChunker(tokenizer) if is_given(tokenizer) else TextChunker(self.chunking)

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
