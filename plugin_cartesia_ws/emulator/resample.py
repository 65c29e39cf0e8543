"""Resample 16-bit mono PCM between any two rates (polyphase windowed sinc): for the
emulator's eSpeak voice and the worker's local audio, never on the plugin's decode path."""

from __future__ import annotations

import functools
import math

import numpy as np

from .encoding import _as_int16

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
