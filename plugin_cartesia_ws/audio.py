"""Cartesia's four wire encodings and their decoding to the 16-bit PCM LiveKit wants: the
plugin's decode path, nothing else (the emulator's encoder and the resampler live in
``emulator.encoding`` and ``emulator.resample``). Plain numpy (``audioop`` is gone in Python
3.13) and free of I/O, so both sides of the wire agree on every byte.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Encoding = Literal["pcm_s16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw"]

ENCODINGS: tuple[Encoding, ...] = ("pcm_s16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw")
SAMPLE_RATES: tuple[int, ...] = (8000, 16000, 22050, 24000, 44100, 48000)

_SAMPLE_WIDTHS: dict[str, int] = {"pcm_s16le": 2, "pcm_f32le": 4, "pcm_mulaw": 1, "pcm_alaw": 1}


def bytes_per_sample(encoding: str) -> int:
    """Bytes one mono sample occupies on the wire in ``encoding``."""
    try:
        return _SAMPLE_WIDTHS[encoding]
    except KeyError:
        raise ValueError(
            f"unsupported audio encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}"
        ) from None


# ---------------------------------------------------------------------------- G.711
# Bit-exact ports of the classic Sun/CCITT reference code (the one CPython's audioop used):
# mu-law works on the top 14 bits of a 16-bit sample, A-law on the top 13 bits.

_ULAW_BIAS = 0x84


def _ulaw_expansion_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _ULAW_BIAS - magnitude, magnitude - _ULAW_BIAS).astype(np.int16)


def _alaw_expansion_table() -> np.ndarray:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code & 0x70) >> 4
    mantissa = (code & 0x0F) << 4
    magnitude = np.where(
        segment == 0, mantissa + 8, (mantissa + 0x108) << np.maximum(segment - 1, 0)
    )
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


_ULAW_TO_S16 = _ulaw_expansion_table()
_ALAW_TO_S16 = _alaw_expansion_table()


# ---------------------------------------------------------------------------- encode / decode
def decode_to_s16(data: bytes, encoding: str) -> bytes:
    """Decode a whole number of samples to s16le bytes (what LiveKit audio frames carry).

    pcm_f32le is clipped to [-1, 1], scaled by 32768 (the inverse of ``encode``, so
    s16 -> f32 -> s16 is lossless), rounded, and +1.0 saturates at 32767. NaN becomes 0.
    G.711 uses the standard expansion tables. Partial trailing samples raise ValueError:
    the caller keeps leftovers until the next chunk completes them.
    """
    width = bytes_per_sample(encoding)
    if len(data) % width:
        raise ValueError(
            f"{encoding} data must be a multiple of {width} bytes, got {len(data)} bytes"
        )
    if encoding == "pcm_s16le":
        return bytes(data)
    if encoding == "pcm_f32le":
        floats = np.nan_to_num(np.frombuffer(data, dtype="<f4").astype(np.float64), nan=0.0)
        scaled = np.rint(np.clip(floats, -1.0, 1.0) * 32768.0)
        return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()
    table = _ULAW_TO_S16 if encoding == "pcm_mulaw" else _ALAW_TO_S16
    return table[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


class PcmJoiner:
    """The chunks of one context as whole 16-bit samples: a sample split across two chunks
    is carried to the next one, and the wire encoding is decoded (none for s16)."""

    __slots__ = ("_encoding", "_width", "_carry")

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding if encoding != "pcm_s16le" else None  # s16: no decoding
        self._width = bytes_per_sample(encoding)
        self._carry = b""

    def join(self, raw: bytes) -> bytes:
        if self._carry:
            raw = self._carry + raw
        if split := len(raw) % self._width:
            raw, self._carry = raw[:-split], raw[-split:]
        else:
            self._carry = b""
        if not raw or self._encoding is None:
            return raw
        return decode_to_s16(raw, self._encoding)
