"""plugin_cartesia_ws.audio: wire encodings, their inverses and resampling."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from plugin_cartesia_ws.audio import ENCODINGS, SAMPLE_RATES, bytes_per_sample, decode_to_s16
from plugin_cartesia_ws.emulator.encoding import encode
from plugin_cartesia_ws.emulator.resample import resample_s16

EVERY_S16 = np.arange(-32768, 32768, dtype=np.int16)


def _s16(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2")


def _sine(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 10000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def _peak_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * rate / len(samples)


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


# ---------------------------------------------------------------------------- widths
def test_constants() -> None:
    assert ENCODINGS == ("pcm_s16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw")
    assert SAMPLE_RATES == (8000, 16000, 22050, 24000, 44100, 48000)


@pytest.mark.parametrize(
    ("encoding", "width"),
    [("pcm_s16le", 2), ("pcm_f32le", 4), ("pcm_mulaw", 1), ("pcm_alaw", 1)],
)
def test_bytes_per_sample(encoding: str, width: int) -> None:
    assert bytes_per_sample(encoding) == width
    assert len(encode(EVERY_S16[:10], encoding)) == 10 * width


@pytest.mark.parametrize("encoding", ["pcm_s24le", "mp3", "", "PCM_S16LE"])
def test_unknown_encoding_is_rejected_everywhere(encoding: str) -> None:
    with pytest.raises(ValueError, match="unsupported audio encoding"):
        bytes_per_sample(encoding)
    with pytest.raises(ValueError, match="pcm_s16le"):
        encode(EVERY_S16[:4], encoding)
    with pytest.raises(ValueError):
        decode_to_s16(b"\x00" * 8, encoding)


# ---------------------------------------------------------------------------- round trips
def test_s16_round_trip_is_exact_and_little_endian() -> None:
    data = encode(EVERY_S16, "pcm_s16le")
    assert data[:4] == b"\x00\x80\x01\x80"  # -32768, -32767 little-endian
    assert decode_to_s16(data, "pcm_s16le") == data


def test_f32_values_and_round_trip() -> None:
    data = encode(np.array([0, 16384, -32768, 32767], dtype=np.int16), "pcm_f32le")
    assert struct.unpack("<4f", data) == (0.0, 0.5, -1.0, 32767 / 32768)
    decoded = _s16(decode_to_s16(encode(EVERY_S16, "pcm_f32le"), "pcm_f32le"))
    assert np.abs(decoded.astype(int) - EVERY_S16).max() <= 1
    np.testing.assert_array_equal(decoded, EVERY_S16)  # scale 32768 both ways: lossless


def test_f32_decode_clips_and_scales_by_32768() -> None:
    floats = struct.pack("<7f", 1.0, -1.0, 2.5, -7.0, float("nan"), 0.5, 1e-6)
    assert _s16(decode_to_s16(floats, "pcm_f32le")).tolist() == [
        32767,
        -32768,
        32767,
        -32768,
        0,
        16384,
        0,
    ]


@pytest.mark.parametrize(
    ("encoding", "code_of_zero", "code_of_max", "code_of_min"),
    [("pcm_mulaw", 0xFF, 0x80, 0x00), ("pcm_alaw", 0xD5, 0xAA, 0x2A)],
)
def test_g711_known_codes(encoding: str, code_of_zero: int, code_of_max: int, code_of_min: int):
    samples = np.array([0, 32767, -32768], dtype=np.int16)
    assert encode(samples, encoding) == bytes([code_of_zero, code_of_max, code_of_min])


def test_g711_known_expansions() -> None:
    assert _s16(decode_to_s16(bytes([0xFF, 0x7F, 0x80, 0x00]), "pcm_mulaw")).tolist() == [
        0,
        0,
        32124,
        -32124,
    ]
    assert _s16(decode_to_s16(bytes([0xD5, 0x55, 0xAA, 0x2A]), "pcm_alaw")).tolist() == [
        8,
        -8,
        32256,
        -32256,
    ]


@pytest.mark.parametrize("encoding", ["pcm_mulaw", "pcm_alaw"])
def test_g711_round_trip_within_quantisation_error(encoding: str) -> None:
    decoded = _s16(decode_to_s16(encode(EVERY_S16, encoding), encoding)).astype(int)
    error = np.abs(decoded - EVERY_S16)
    # logarithmic companding: the step grows with the magnitude (4 mantissa bits per segment)
    assert (error <= 8 + np.abs(EVERY_S16.astype(int)) / 16).all()
    assert error[np.abs(EVERY_S16.astype(int)) < 64].max() <= 8


@pytest.mark.parametrize("encoding", ["pcm_mulaw", "pcm_alaw"])
def test_g711_matches_audioop_bit_for_bit(encoding: str) -> None:
    audioop = pytest.importorskip("audioop")  # gone in Python 3.13: then this is skipped
    pcm = EVERY_S16.tobytes()
    compress = audioop.lin2ulaw if encoding == "pcm_mulaw" else audioop.lin2alaw
    expand = audioop.ulaw2lin if encoding == "pcm_mulaw" else audioop.alaw2lin
    assert encode(EVERY_S16, encoding) == compress(pcm, 2)
    assert decode_to_s16(bytes(range(256)), encoding) == expand(bytes(range(256)), 2)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_round_trips_speech_like_audio(encoding: str) -> None:
    samples = _sine(220, 16000, 0.1)
    decoded = _s16(decode_to_s16(encode(samples, encoding), encoding))
    assert len(decoded) == len(samples)
    assert np.abs(decoded.astype(int) - samples).max() <= 8 + 10000 / 16


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_empty_input(encoding: str) -> None:
    assert encode(np.zeros(0, dtype=np.int16), encoding) == b""
    assert decode_to_s16(b"", encoding) == b""


@pytest.mark.parametrize(("encoding", "length"), [("pcm_s16le", 3), ("pcm_f32le", 6)])
def test_partial_sample_is_rejected(encoding: str, length: int) -> None:
    with pytest.raises(ValueError, match="multiple of"):
        decode_to_s16(b"\x00" * length, encoding)


def test_encode_input_validation() -> None:
    with pytest.raises(TypeError):
        encode(np.zeros(4, dtype=np.float32), "pcm_s16le")
    with pytest.raises(ValueError, match="mono"):
        encode(np.zeros((2, 4), dtype=np.int16), "pcm_s16le")
    wide = np.array([40000, -40000, 5], dtype=np.int32)  # saturates instead of wrapping
    assert _s16(encode(wide, "pcm_s16le")).tolist() == [32767, -32768, 5]


# ---------------------------------------------------------------------------- resampling
def test_resample_identity_is_a_copy() -> None:
    samples = _sine(440, 16000, 0.05)
    out = resample_s16(samples, 16000, 16000)
    np.testing.assert_array_equal(out, samples)
    assert out is not samples and out.dtype == np.int16


@pytest.mark.parametrize("in_rate", SAMPLE_RATES)
@pytest.mark.parametrize("out_rate", SAMPLE_RATES)
def test_resample_length(in_rate: int, out_rate: int) -> None:
    for n in (0, 1, 7, 1001, in_rate // 3):
        out = resample_s16(np.ones(n, dtype=np.int16), in_rate, out_rate)
        assert out.dtype == np.int16
        assert abs(len(out) - round(n * out_rate / in_rate)) <= 1


@pytest.mark.parametrize(
    ("in_rate", "out_rate"),
    [(22050, 16000), (22050, 24000), (22050, 48000), (48000, 8000), (8000, 44100), (44100, 48000)],
)
@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0])
def test_resample_keeps_frequency_and_level(in_rate: int, out_rate: int, freq: float) -> None:
    samples = _sine(freq, in_rate)
    out = resample_s16(samples, in_rate, out_rate)
    assert abs(_peak_frequency(out, out_rate) - freq) <= 2.0
    middle = slice(len(out) // 10, -len(out) // 10)  # away from the zero-padded edges
    assert _rms(out[middle]) == pytest.approx(_rms(samples), rel=0.03)


def test_downsampling_filters_out_what_would_alias() -> None:
    tone_above_new_nyquist = _sine(6000, 48000, amplitude=20000)
    out = resample_s16(tone_above_new_nyquist, 48000, 8000)  # would fold to 2 kHz
    assert _rms(out[800:-800]) < 0.01 * _rms(tone_above_new_nyquist)


def test_resample_is_deterministic_and_saturates() -> None:
    loud = np.tile(np.array([32767, -32768], dtype=np.int16), 2000)  # Nyquist square wave
    first = resample_s16(loud, 22050, 48000)
    np.testing.assert_array_equal(first, resample_s16(loud, 22050, 48000))
    assert first.dtype == np.int16


def test_resample_exotic_ratio() -> None:
    samples = _sine(500, 44100)
    out = resample_s16(samples, 44100, 44099)  # 44099 phases: the gathering fallback
    assert len(out) == 44099
    assert abs(_peak_frequency(out, 44099) - 500) <= 2.0


def test_resample_rejects_bad_rates() -> None:
    with pytest.raises(ValueError):
        resample_s16(np.zeros(10, dtype=np.int16), 0, 16000)
    with pytest.raises(ValueError):
        resample_s16(np.zeros(10, dtype=np.int16), 16000, -8000)
