"""A small MPEG audio layer III frame walker for the tests: proves a body is real MP3 (every
frame header valid and back to back), and reads its sample rate, bit rate and duration."""

from __future__ import annotations

from dataclasses import dataclass

_BIT_RATES = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2 and 2.5
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class Mp3Info:
    frames: int
    sample_rates: frozenset[int]
    bit_rates: frozenset[int]  # bits per second
    duration_s: float


def parse_mp3(data: bytes) -> Mp3Info:
    """Walks every frame from the start; raises ValueError on anything that is not MP3."""
    if data[:3] == b"ID3":
        raise ValueError("unexpected ID3 tag")
    pos, frames, seconds = 0, 0, 0.0
    rates: set[int] = set()
    bit_rates: set[int] = set()
    while pos < len(data):
        if len(data) - pos < 4:
            raise ValueError(f"{len(data) - pos} trailing bytes at {pos}")
        header = int.from_bytes(data[pos : pos + 4], "big")
        if header >> 21 != 0x7FF:
            raise ValueError(f"no frame sync at byte {pos}")
        version, layer = (header >> 19) & 3, (header >> 17) & 3
        bit_index, rate_index, padding = (header >> 12) & 15, (header >> 10) & 3, (header >> 9) & 1
        if version == 1 or layer != 1 or bit_index in (0, 15) or rate_index == 3:
            raise ValueError(f"not an MPEG layer III frame header at byte {pos}: {header:08x}")
        rate = _SAMPLE_RATES[version][rate_index]
        bit_rate = _BIT_RATES[1 if version == 3 else 2][bit_index] * 1000
        samples = 1152 if version == 3 else 576
        size = samples // 8 * bit_rate // rate + padding
        rates.add(rate)
        bit_rates.add(bit_rate)
        frames += 1
        seconds += samples / rate
        pos += size
    if frames == 0:
        raise ValueError("no MP3 frames")
    return Mp3Info(frames, frozenset(rates), frozenset(bit_rates), seconds)
