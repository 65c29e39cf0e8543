"""Encode 16-bit samples as Cartesia sends them, in each of its four wire encodings: what
the emulator puts on the wire (the inverse of ``plugin_cartesia_ws.audio.decode_to_s16``)."""

from __future__ import annotations

import numpy as np

from ..audio import _ULAW_BIAS, bytes_per_sample


def _as_int16(samples: np.ndarray) -> np.ndarray:
    """Validate mono integer samples and return them as a 1-D int16 array (no copy if possible)."""
    array = np.asarray(samples)
    if array.ndim > 1:
        raise ValueError(f"expected mono (1-D) samples, got shape {array.shape}")
    if array.dtype == np.int16:
        return array.reshape(-1)
    if array.size == 0:
        return np.zeros(0, dtype=np.int16)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"expected int16 samples, got dtype {array.dtype}")
    return np.clip(array.reshape(-1), -32768, 32767).astype(np.int16)


# Bit-exact ports of the classic Sun/CCITT reference code (the one CPython's audioop used):
# mu-law works on the top 14 bits of a 16-bit sample, A-law on the top 13 bits.
_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
_ULAW_CLIP = 8159


def _s16_to_ulaw(samples: np.ndarray) -> np.ndarray:
    value = samples.astype(np.int32) >> 2
    negative = value < 0
    magnitude = np.minimum(np.abs(value), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude, side="left")
    code = (segment << 4) | ((magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return (code ^ np.where(negative, 0x7F, 0xFF)).astype(np.uint8)


def _s16_to_alaw(samples: np.ndarray) -> np.ndarray:
    value = samples.astype(np.int32) >> 3
    negative = value < 0
    magnitude = np.where(negative, -value - 1, value)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, magnitude, side="left")
    shift = np.where(segment < 2, 1, np.minimum(segment, 7))
    code = (segment << 4) | ((magnitude >> shift) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return (code ^ np.where(negative, 0x55, 0xD5)).astype(np.uint8)


def encode(samples: np.ndarray, encoding: str) -> bytes:
    """Encode int16 mono samples as Cartesia sends them (raw, little-endian, no header)."""
    bytes_per_sample(encoding)  # rejects unknown names before touching the samples
    pcm = _as_int16(samples)
    if encoding == "pcm_s16le":
        return pcm.astype("<i2").tobytes()
    if encoding == "pcm_f32le":
        # Dividing by a power of two is exact, so decode_to_s16 restores every sample.
        return (pcm.astype(np.float32) / np.float32(32768.0)).astype("<f4").tobytes()
    codes = _s16_to_ulaw(pcm) if encoding == "pcm_mulaw" else _s16_to_alaw(pcm)
    return codes.tobytes()
