"""Pure audio format helpers shared by the emulator (encode) and the plugin (decode).

Cartesia streams raw mono PCM in one of four encodings; LiveKit wants 16-bit PCM. Everything
here is plain numpy (``audioop`` is gone in Python 3.13) and free of I/O, so both sides of
the wire agree on every byte.
"""

from __future__ import annotations

import functools
import math
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


# ---------------------------------------------------------------------------- G.711
# Bit-exact ports of the classic Sun/CCITT reference code (the one CPython's audioop used):
# mu-law works on the top 14 bits of a 16-bit sample, A-law on the top 13 bits.

_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
_ULAW_BIAS = 0x84
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


# ---------------------------------------------------------------------------- resampling
_ZERO_CROSSINGS = 16  # sinc lobes on each side of the centre tap
_KAISER_BETA = 6.0  # ~60 dB stop band: plenty for speech
_PASSBAND = 0.9  # cutoff as a fraction of the lower Nyquist frequency
_MAX_PHASES = 4096  # exotic rate pairs share a quantised phase table
_MAX_MATRIX_CELLS = 1 << 22  # larger frame matrices fall back to per-sample gathering
_SMALL_PRODUCT = 1 << 18  # OpenBLAS keeps a GEMM with M*N*K below this single-threaded


def _filter_shape(up: int, down: int) -> tuple[float, float]:
    """(cutoff in cycles per input sample, half the filter length in input samples)."""
    cutoff = 0.5 * min(1.0, up / down) * _PASSBAND
    return cutoff, _ZERO_CROSSINGS / (2.0 * cutoff)


def _polyphase_taps(up: int, down: int, phases: int) -> tuple[np.ndarray, np.ndarray]:
    """Kaiser-windowed sinc taps for ``phases`` evenly spaced output phases.

    Returns (taps[phase, tap], tap offsets relative to floor(output position)); each row is
    normalised to unit DC gain so no phase adds ripple.
    """
    cutoff, half_width = _filter_shape(up, down)
    reach = math.ceil(half_width)
    offsets = np.arange(-reach + 1, reach + 1)
    distance = np.arange(phases)[:, None] / phases - offsets[None, :]
    inside = np.abs(distance) <= half_width
    window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1.0 - (distance / half_width) ** 2, 0, 1)))
    taps = 2.0 * cutoff * np.sinc(2.0 * cutoff * distance) * window * inside
    taps /= taps.sum(axis=1, keepdims=True)
    return taps, offsets


@functools.lru_cache(maxsize=32)
def _frame_matrix(up: int, down: int) -> tuple[np.ndarray, int]:
    """Matrix mapping one frame of input (``down`` samples + filter reach) to ``up`` outputs.

    The phase pattern repeats every ``up`` outputs, so resampling becomes BLAS matrix
    products over overlapping input frames: ~1 ms for seconds of audio.
    Returns (matrix[frame_input, up], left padding in samples).
    """
    taps, offsets = _polyphase_taps(up, down, up)
    first_output = np.arange(up)
    base = first_output * down // up  # floor of each output's input position within a frame
    matrix = np.zeros((int(base[-1]) + len(offsets), up))
    for column, (start, phase) in enumerate(zip(base, first_output * down % up, strict=True)):
        matrix[start : start + len(offsets), column] = taps[phase]
    matrix.setflags(write=False)
    return matrix, -int(offsets[0])


def _resample_by_frames(pcm: np.ndarray, up: int, down: int, n_out: int) -> np.ndarray:
    matrix, pad = _frame_matrix(up, down)
    frame_len = matrix.shape[0]
    # Many small products instead of one big one: OpenBLAS runs small ones on the calling
    # thread, and its worker hand-off stalls for tens of ms when both cores are busy.
    rows = max(1, _SMALL_PRODUCT // matrix.size)
    n_frames = -(-n_out // (up * rows)) * rows
    padded = np.zeros(max((n_frames - 1) * down + frame_len, pad + len(pcm)))
    padded[pad : pad + len(pcm)] = pcm
    step = padded.strides[0]
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(n_frames, frame_len), strides=(down * step, step), writeable=False
    )
    out = np.empty((n_frames, up))
    block = rows * max(1, (1 << 18) // (rows * frame_len))  # frames copied at a time
    for first in range(0, n_frames, block):
        chunk = np.ascontiguousarray(frames[first : first + block])
        products = chunk.reshape(-1, rows, frame_len) @ matrix
        out[first : first + len(chunk)] = products.reshape(-1, up)
    return out.reshape(-1)[:n_out]


def _resample_by_gathering(pcm: np.ndarray, up: int, down: int, n_out: int) -> np.ndarray:
    phases = min(up, _MAX_PHASES)
    taps, offsets = _polyphase_taps(up, down, phases)
    pad = -int(offsets[0])
    padded = np.concatenate([np.zeros(pad), pcm.astype(np.float64), np.zeros(len(offsets))])
    out = np.empty(n_out)
    block = max(1024, (1 << 20) // len(offsets))
    for first in range(0, n_out, block):
        position = np.arange(first, min(n_out, first + block), dtype=np.int64) * down
        window = padded[(position // up)[:, None] + offsets[None, :] + pad]
        out[first : first + len(position)] = np.einsum(
            "ij,ij->i", window, taps[(position % up) * phases // up]
        )
    return out


def resample_s16(samples: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Band-limited (polyphase windowed-sinc) int16 resampling, numpy only and deterministic.

    Output length is round(n * out_rate / in_rate); the low-pass keeps downsampled speech free
    of aliasing. Equal rates return a copy.
    """
    if in_rate <= 0 or out_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
    pcm = _as_int16(samples)
    if in_rate == out_rate:
        return pcm.copy()
    gcd = math.gcd(in_rate, out_rate)
    up, down = out_rate // gcd, in_rate // gcd
    n_out = (len(pcm) * up + down // 2) // down
    if n_out == 0:
        return np.zeros(0, dtype=np.int16)
    n_taps = 2 * math.ceil(_filter_shape(up, down)[1])
    if up * (down + n_taps) <= _MAX_MATRIX_CELLS:
        out = _resample_by_frames(pcm, up, down, n_out)
    else:
        out = _resample_by_gathering(pcm, up, down, n_out)
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)
