"""Pure latency model: when each chunk of a generation may leave the server.

Cartesia reports ~90 ms to first audio per generation and generates faster than real time
(docs/cartesia-protocol.md, section 7). ``plan_generation`` cuts one rendering into
sample-aligned chunks and gives each its release time relative to the start of the
generation, so audio is never released before it could have been generated.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from .encoding import encode
from .messages import phoneme_timestamps_event, timestamps_event
from .rendering import Rendering, TimedToken


@dataclass(frozen=True)
class LatencyModel:
    ttfa_ms: float = 90.0  # time to first audio of every generation
    realtime_factor: float = 3.0  # seconds of audio generated per second of wall time
    chunk_ms: float = 80.0  # audio per chunk event
    jitter_ms: float = 0.0  # uniform +- jitter on the time to first audio
    seed: int = 0

    def __post_init__(self) -> None:
        if self.realtime_factor <= 0 or self.chunk_ms <= 0 or self.ttfa_ms < 0:
            raise ValueError("latency model needs realtime_factor > 0, chunk_ms > 0, ttfa_ms >= 0")

    def first_audio_delay(self, rng: random.Random) -> float:
        jitter = rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, self.ttfa_ms + jitter) / 1000.0


@dataclass(frozen=True)
class PlannedChunk:
    audio: bytes  # encoded in the requested encoding
    start_s: float  # position in this rendering
    end_s: float
    release_s: float  # wall time after the generation started
    step_time_ms: float
    words: tuple[TimedToken, ...]  # words whose audio is complete with this chunk
    phonemes: tuple[TimedToken, ...]


def plan_generation(
    rendering: Rendering, encoding: str, latency: LatencyModel, first_audio_s: float
) -> list[PlannedChunk]:
    """Chunks of one rendering with release times; empty audio gives no chunks."""
    samples = rendering.samples
    rate = rendering.sample_rate
    per_chunk = max(1, int(round(latency.chunk_ms * rate / 1000.0)))
    chunks: list[PlannedChunk] = []
    words = list(rendering.words)
    phonemes = list(rendering.phonemes)
    total = len(samples)
    for index, begin in enumerate(range(0, total, per_chunk)):
        end = min(total, begin + per_chunk)
        start_s, end_s = begin / rate, end / rate
        last = end == total
        done_words, words = _split_done(words, end_s, last)
        done_phonemes, phonemes = _split_done(phonemes, end_s, last)
        generate_s = (end_s - start_s) / latency.realtime_factor
        chunks.append(
            PlannedChunk(
                audio=encode(np.asarray(samples[begin:end]), encoding),
                start_s=start_s,
                end_s=end_s,
                release_s=first_audio_s + start_s / latency.realtime_factor,
                step_time_ms=1000.0 * (generate_s + (first_audio_s if index == 0 else 0.0)),
                words=tuple(done_words),
                phonemes=tuple(done_phonemes),
            )
        )
    return chunks


def _split_done(
    tokens: list[TimedToken], until_s: float, last: bool
) -> tuple[list[TimedToken], list[TimedToken]]:
    if last:
        return tokens, []
    cut = 0
    while cut < len(tokens) and tokens[cut].end <= until_s + 1e-9:
        cut += 1
    return tokens[:cut], tokens[cut:]


def timing_events(
    chunk: PlannedChunk,
    context_id: str,
    flush_id: int,
    offset_s: float,
    *,
    words: bool,
    phonemes: bool,
) -> list[dict]:
    """The ``timestamps`` / ``phoneme_timestamps`` events that follow a chunk's audio, with
    times on the context's timeline (``offset_s`` = its audio before this generation)."""
    events = []
    if words and chunk.words:
        events.append(timestamps_event(context_id, flush_id, *_columns(chunk.words, offset_s)))
    if phonemes and chunk.phonemes:
        events.append(
            phoneme_timestamps_event(context_id, flush_id, *_columns(chunk.phonemes, offset_s))
        )
    return events


def _columns(
    tokens: tuple[TimedToken, ...], offset_s: float
) -> tuple[list[str], list[float], list[float]]:
    return (
        [t.text for t in tokens],
        [round(offset_s + t.start, 4) for t in tokens],
        [round(offset_s + t.end, 4) for t in tokens],
    )
