"""The HTTP bodies of the emulator: output_format validation, content types, WAV headers and
real MP3 at the asked sample rate and bit rate."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from plugin_cartesia_ws.emulator.http_audio import (
    MP3_BIT_RATES,
    HttpOutput,
    Mp3Encoder,
    mp3_bit_rate,
    parse_output_format,
    wav_header,
)
from plugin_cartesia_ws.emulator.messages import ProtocolError
from tests.mp3frames import parse_mp3


def tone(rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (
            {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000},
            HttpOutput("raw", "pcm_s16le", 24000),
        ),
        (
            {"container": "wav", "encoding": "pcm_f32le", "sample_rate": 44100},
            HttpOutput("wav", "pcm_f32le", 44100),
        ),
        (
            {"container": "mp3", "sample_rate": 44100, "bit_rate": 128000},
            HttpOutput("mp3", "pcm_s16le", 44100, 128000),
        ),
    ],
)
def test_valid_formats(fmt: dict, expected: HttpOutput) -> None:
    assert parse_output_format(fmt, "bytes") == expected


@pytest.mark.parametrize(
    ("output", "content_type"),
    [
        (HttpOutput("raw", "pcm_s16le", 24000), "audio/pcm"),
        (HttpOutput("wav", "pcm_s16le", 24000), "audio/wav"),
        (HttpOutput("mp3", "pcm_s16le", 24000, 64000), "audio/mpeg"),
    ],
)
def test_content_types_are_audio(output: HttpOutput, content_type: str) -> None:
    assert output.content_type == content_type


@pytest.mark.parametrize(
    ("fmt", "endpoint", "needle"),
    [
        ({"container": "mp3", "sample_rate": 44100}, "bytes", "bit_rate"),
        ({"container": "mp3", "sample_rate": 44100, "bit_rate": 100000}, "bytes", "bit_rate"),
        ({"container": "mp3", "sample_rate": 44100, "bit_rate": 128000}, "sse", "container"),
        ({"container": "ogg", "sample_rate": 44100}, "bytes", "container"),
        ({"encoding": "pcm_s16le", "sample_rate": 44100}, "bytes", "container"),
        ({"container": "raw", "encoding": "pcm_s24le", "sample_rate": 44100}, "bytes", "encoding"),
        (
            {"container": "wav", "encoding": "pcm_s16le", "sample_rate": 11025},
            "bytes",
            "sample_rate",
        ),
        ("raw", "bytes", "object"),
    ],
)
def test_invalid_formats_are_400(fmt: object, endpoint: str, needle: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_output_format(fmt, endpoint)  # type: ignore[arg-type]
    assert info.value.status == 400 and needle in info.value.message


def test_wav_header_describes_the_data() -> None:
    header = wav_header(4000, 16000, "pcm_f32le")
    assert len(header) == 44 and header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt "
    fmt_code, channels, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", header[20:36])
    assert (fmt_code, channels, rate, byte_rate, align, bits) == (3, 1, 16000, 64000, 4, 32)
    assert struct.unpack("<I", header[40:44])[0] == 4000


@pytest.mark.parametrize(
    ("rate", "asked", "carried"),
    [(44100, 192000, 192000), (24000, 192000, 160000), (8000, 128000, 64000), (8000, 32000, 32000)],
)
def test_mp3_bit_rate_is_capped_only_where_mpeg_cannot_carry_it(
    rate: int, asked: int, carried: int
) -> None:
    assert mp3_bit_rate(rate, asked) == carried


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
@pytest.mark.parametrize("bit_rate", MP3_BIT_RATES)
def test_mp3_is_real_at_every_rate_and_bit_rate(rate: int, bit_rate: int) -> None:
    encoder = Mp3Encoder(rate, bit_rate)
    pcm = tone(rate, 0.5)
    # fed in chunks, as the emulator streams it
    body = b"".join(encoder.encode(pcm[i : i + 3200]) for i in range(0, len(pcm), 3200))
    body += encoder.flush()
    info = parse_mp3(body)
    assert info.sample_rates == {rate}
    assert info.bit_rates == {mp3_bit_rate(rate, bit_rate)}
    assert 0.5 <= info.duration_s < 0.5 + 0.2  # LAME pads at most a few frames


def test_the_frame_walker_rejects_what_is_not_mp3() -> None:
    with pytest.raises(ValueError):
        parse_mp3(tone(16000, 0.1))
    with pytest.raises(ValueError):
        parse_mp3(b"")
