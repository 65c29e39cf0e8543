"""File-backed audio I/O for an AgentSession with no room and no sound card.

``SpeechInput`` plays user speech into the session in real time (20 ms frames, silence in
between, like an open microphone). ``VirtualSpeaker`` plays the agent's audio on a virtual
real-time clock, keeps what was actually heard (an interruption cuts it) and reports
playback to the session, which needs those events for its speaking state and latency
metrics. Both are used by ``python -m agent simulate`` and the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import wave
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from livekit import rtc
from livekit.agents.voice.io import AudioInput, AudioOutput, AudioOutputCapabilities, TextOutput

from plugin_cartesia_ws.pulse import Pulse

FRAME_MS = 20


class SpeechInput(AudioInput):
    """A microphone that says what it is told to, on time."""

    def __init__(self, sample_rate: int = 16000) -> None:
        super().__init__(label="SpeechInput")
        self.sample_rate = sample_rate
        self._per_frame = sample_rate * FRAME_MS // 1000
        self._pending = np.zeros(0, dtype=np.int16)
        self._next_at: float | None = None
        self._closed = False
        self.drained = asyncio.Event()
        self.drained.set()
        self.started_at: float | None = None  # wall time of the first frame
        self.frames_sent = 0

    def play(self, pcm: np.ndarray) -> None:
        """Queue int16 mono speech at ``sample_rate``; it starts at the next frame."""
        self._pending = np.concatenate([self._pending, pcm.astype(np.int16)])
        self.drained.clear()

    def close(self) -> None:
        self._closed = True

    async def __anext__(self) -> rtc.AudioFrame:
        if self._closed:
            raise StopAsyncIteration
        now = time.perf_counter()
        if self._next_at is None:
            self._next_at = now
            self.started_at = time.time()
        if self._next_at > now:
            await asyncio.sleep(self._next_at - now)  # real-time pacing is the point here
        self._next_at += FRAME_MS / 1000
        chunk = self._pending[: self._per_frame]
        self._pending = self._pending[self._per_frame :]
        if len(chunk) < self._per_frame:
            chunk = np.concatenate([chunk, np.zeros(self._per_frame - len(chunk), np.int16)])
            if not len(self._pending):
                self.drained.set()
        self.frames_sent += 1
        return rtc.AudioFrame(chunk.tobytes(), self.sample_rate, 1, self._per_frame)


@dataclass
class PlayedSegment:
    """One agent reply as the listener got it."""

    started_at: float  # wall time its first frame started playing
    frames: list[rtc.AudioFrame] = field(default_factory=list)
    received_s: float = 0.0  # audio the TTS delivered
    played_s: float = 0.0  # audio actually heard (less when interrupted)
    interrupted: bool = False

    def audio_bytes(self) -> bytes:
        """Every byte the speaker received for this reply, played or not."""
        return b"".join(bytes(f.data) for f in self.frames)

    def sha256(self) -> str:
        """Comparable with the emulator's `audio_sha256` for the reply's context."""
        return audio_sha256(self.frames)

    def heard_pcm(self) -> np.ndarray:
        if not self.frames:
            return np.zeros(0, np.int16)
        pcm = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in self.frames])
        rate = self.frames[0].sample_rate
        return pcm[: int(round(self.played_s * rate))]


class VirtualSpeaker(AudioOutput):
    """Accepts frames faster than real time and "plays" them on a virtual clock; with
    ``instant``, a reply has played the moment the TTS has delivered all of it (for tests
    and benchmarks whose figures end at the first frame)."""

    def __init__(self, *, instant: bool = False) -> None:
        super().__init__(
            label="VirtualSpeaker",
            capabilities=AudioOutputCapabilities(pause=False),
            sample_rate=None,
        )
        self.instant = instant
        self.segments: list[PlayedSegment] = []
        self._current: PlayedSegment | None = None
        self._finish_timer: asyncio.TimerHandle | None = None
        self.playing_changed = Pulse()  # fired when a reply starts or stops playing

    @property
    def playing(self) -> bool:
        return self._current is not None

    @property
    def received_s(self) -> float:
        """Seconds of audio received over all replies."""
        return sum(s.received_s for s in self.segments)

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._current is None:
            self._current = PlayedSegment(started_at=time.time())
            self.segments.append(self._current)
            self.on_playback_started(created_at=self._current.started_at)
            self._signal()
        self._current.frames.append(frame)
        self._current.received_s += frame.duration

    def flush(self) -> None:
        super().flush()
        segment = self._current
        if segment is None:
            return
        remaining = 0.0 if self.instant else segment.received_s - (time.time() - segment.started_at)
        loop = asyncio.get_running_loop()
        self._finish_timer = loop.call_later(
            max(remaining, 0.0), self._finish, segment, segment.received_s, False
        )

    def clear_buffer(self) -> None:
        segment = self._current
        if segment is None:
            return
        if self._finish_timer is not None:
            self._finish_timer.cancel()
        heard = segment.received_s
        if not self.instant:
            heard = min(time.time() - segment.started_at, heard)
        self._finish(segment, heard, True)

    def _finish(self, segment: PlayedSegment, position: float, interrupted: bool) -> None:
        if self._current is not segment:
            return
        self._finish_timer = None
        self._current = None
        segment.played_s = position
        segment.interrupted = interrupted
        self.on_playback_finished(playback_position=position, interrupted=interrupted)
        self._signal()

    def _signal(self) -> None:
        self.playing_changed.fire()


class TranscriptCollector(TextOutput):
    """The agent's transcript as the session emits it, one string per reply."""

    def __init__(self) -> None:
        super().__init__(label="TranscriptCollector", next_in_chain=None)
        self.replies: list[str] = []
        self._current = ""

    async def capture_text(self, text: str) -> None:
        self._current += text

    def flush(self) -> None:
        if self._current:
            self.replies.append(self._current)
        self._current = ""


class AudioHash:
    """SHA-256 and byte count of audio as it arrives, as the emulator records them per
    context (`audio_sha256`, `audio_bytes`): equal means the very bytes the server sent."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.bytes = 0

    def add(self, audio: rtc.AudioFrame | bytes) -> None:
        data = audio.data.tobytes() if isinstance(audio, rtc.AudioFrame) else audio
        self._sha.update(data)
        self.bytes += len(data)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def audio_sha256(audio: Iterable[rtc.AudioFrame | bytes]) -> str:
    digest = AudioHash()
    for piece in audio:
        digest.add(piece)
    return digest.hexdigest()


def write_wav(path: str, pcm: np.ndarray, sample_rate: int) -> None:
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.astype("<i2").tobytes())


def read_wav(path: str) -> tuple[np.ndarray, int]:
    """Mono 16-bit PCM (the first channel of a stereo file)."""
    with wave.open(path, "rb") as src:
        if src.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV files are supported")
        rate, channels = src.getframerate(), src.getnchannels()
        pcm = np.frombuffer(src.readframes(src.getnframes()), dtype="<i2")
    return pcm[::channels].astype(np.int16), rate
