"""Pure: the audio bodies of ``/tts/bytes`` and ``/tts/sse`` (raw, WAV, MP3).

Validates the HTTP ``output_format`` (``docs/cartesia-protocol.md`` section 6), names the
content type, builds WAV headers and encodes MP3. MP3 needs ``lameenc`` (LAME in a small
wheel, the ``mp3`` extra): it is imported only when an mp3 is asked for, so the plugin never
loads it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Literal

from ..audio import ENCODINGS, SAMPLE_RATES
from .extras import install_hint
from .messages import ProtocolError, bad_request

MP3_BIT_RATES = (32000, 64000, 96000, 128000, 192000)
CONTAINERS: dict[str, tuple[str, ...]] = {"bytes": ("raw", "wav", "mp3"), "sse": ("raw",)}
# The highest bit rate MPEG audio layer III allows per sample rate: MPEG-1 (32-48 kHz) up to
# 320 kb/s, MPEG-2 (16-24 kHz) up to 160, MPEG-2.5 (8-12 kHz) up to 64.
_MP3_MAX_BIT_RATE = {8000: 64000, 16000: 160000, 22050: 160000, 24000: 160000}


@dataclass(frozen=True)
class HttpOutput:
    """A validated HTTP ``output_format``. An mp3 is rendered as 16-bit PCM at its sample
    rate, then encoded."""

    container: Literal["raw", "wav", "mp3"]
    encoding: str
    sample_rate: int
    bit_rate: int | None = None

    @property
    def content_type(self) -> str:
        """The API reference says ``audio/*``; the subtype names the container."""
        return {"wav": "audio/wav", "mp3": "audio/mpeg"}.get(self.container, "audio/pcm")


def parse_output_format(fmt: Any, endpoint: Literal["bytes", "sse"]) -> HttpOutput:
    """Validate an HTTP ``output_format``; raises ProtocolError (400)."""
    if not isinstance(fmt, dict):
        raise bad_request("output_format must be an object.", None)
    container = fmt.get("container")
    allowed = CONTAINERS[endpoint]
    if container not in allowed:
        raise bad_request(f"output_format.container must be one of {list(allowed)}.", None)
    if fmt.get("sample_rate") not in SAMPLE_RATES:
        raise bad_request(f"output_format.sample_rate must be one of {list(SAMPLE_RATES)}.", None)
    rate = int(fmt["sample_rate"])
    if container == "mp3":
        if fmt.get("bit_rate") not in MP3_BIT_RATES:
            raise bad_request(
                f"output_format.bit_rate must be one of {list(MP3_BIT_RATES)} for mp3.", None
            )
        return HttpOutput("mp3", "pcm_s16le", rate, int(fmt["bit_rate"]))
    if fmt.get("encoding") not in ENCODINGS:
        raise bad_request(f"output_format.encoding must be one of {list(ENCODINGS)}.", None)
    return HttpOutput("wav" if container == "wav" else "raw", str(fmt["encoding"]), rate)


def mp3_bit_rate(sample_rate: int, bit_rate: int) -> int:
    """The bit rate an MP3 at this sample rate can carry: the asked one, capped by MPEG."""
    return min(bit_rate, _MP3_MAX_BIT_RATE.get(sample_rate, bit_rate))


def wav_header(data_len: int, rate: int, encoding: str) -> bytes:
    """A 44-byte RIFF/WAVE header for mono audio in one of the four raw encodings."""
    fmt_code, width = {
        "pcm_s16le": (1, 2),
        "pcm_f32le": (3, 4),
        "pcm_alaw": (6, 1),
        "pcm_mulaw": (7, 1),
    }[encoding]
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_len)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, fmt_code, 1, rate, rate * width, width, 8 * width)
        + b"data"
        + struct.pack("<I", data_len)
    )


class Mp3Unavailable(ProtocolError):
    """The ``mp3`` extra is not installed: the emulator says so instead of sending noise."""


class Mp3Encoder:
    """Streaming MP3 (constant bit rate, mono) of 16-bit PCM, fed chunk by chunk as the
    audio is generated; ``flush`` returns the last frames."""

    def __init__(self, sample_rate: int, bit_rate: int) -> None:
        try:
            import lameenc  # type: ignore[import-not-found]
        except ImportError:
            raise Mp3Unavailable(
                501,
                "mp3_unavailable",
                "MP3 not available",
                f"This emulator has no MP3 encoder (lameenc): {install_hint('mp3')}.",
            ) from None
        self.sample_rate = sample_rate
        self.bit_rate = mp3_bit_rate(sample_rate, bit_rate)
        self._lame = lameenc.Encoder()
        self._lame.set_channels(1)
        self._lame.set_in_sample_rate(sample_rate)
        self._lame.set_out_sample_rate(sample_rate)  # never let LAME resample
        self._lame.set_bit_rate(self.bit_rate // 1000)
        self._lame.set_quality(7)  # fast; the emulator's voices need no more

    def encode(self, pcm_s16le: bytes) -> bytes:
        """The MP3 frames complete so far (LAME holds back about one frame)."""
        return bytes(self._lame.encode(pcm_s16le))

    def flush(self) -> bytes:
        return bytes(self._lame.flush())
