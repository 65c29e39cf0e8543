"""Headless stand-ins for the LiveKit side of a session: an audio sink that "plays"
instantly and a tiny streaming TTS, for tests that need a session without a room."""

from __future__ import annotations

import time

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectOptions, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS
from livekit.agents.voice.io import AudioOutput, AudioOutputCapabilities, TextOutput


class InstantAudioOutput(AudioOutput):
    """Records the agent's frames; a segment counts as played the moment it is flushed."""

    def __init__(self) -> None:
        super().__init__(
            label="InstantAudioOutput", capabilities=AudioOutputCapabilities(pause=False)
        )
        self.frames: list[rtc.AudioFrame] = []
        self._segment_duration = 0.0
        self._playing = False

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._playing:
            self._playing = True
            self.on_playback_started(created_at=time.time())
        self.frames.append(frame)
        self._segment_duration += frame.duration

    def flush(self) -> None:
        super().flush()
        self._finish(interrupted=False)

    def clear_buffer(self) -> None:
        self._finish(interrupted=True)

    def _finish(self, *, interrupted: bool) -> None:
        if not self._playing:
            return
        self._playing = False
        position, self._segment_duration = self._segment_duration, 0.0
        self.on_playback_finished(playback_position=position, interrupted=interrupted)

    @property
    def duration(self) -> float:
        return sum(f.duration for f in self.frames)


class CollectingTextOutput(TextOutput):
    """Collects the agent's transcript, one string per segment."""

    def __init__(self) -> None:
        super().__init__(label="CollectingTextOutput", next_in_chain=None)
        self.segments: list[str] = []
        self._current = ""

    async def capture_text(self, text: str) -> None:
        self._current += text

    def flush(self) -> None:
        if self._current:
            self.segments.append(self._current)
        self._current = ""


class StubTTS(tts.TTS):
    """A streaming TTS that answers every piece of text with 50 ms of tone per word.
    `texts` collects what each stream was given."""

    def __init__(self, *, sample_rate: int = 24000) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True),
            sample_rate=sample_rate,
            num_channels=1,
        )
        self.texts: list[str] = []

    @property
    def model(self) -> str:
        return "stub"

    @property
    def provider(self) -> str:
        return "tests"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return self._synthesize_with_stream(text, conn_options=conn_options)

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.SynthesizeStream:
        return _StubStream(tts=self, conn_options=conn_options)


class _StubStream(tts.SynthesizeStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        stub: StubTTS = self._tts  # type: ignore[assignment]
        rate = stub.sample_rate
        output_emitter.initialize(
            request_id="stub", sample_rate=rate, num_channels=1, mime_type="audio/pcm", stream=True
        )
        output_emitter.start_segment(segment_id="stub")
        index = len(stub.texts)
        stub.texts.append("")
        async for data in self._input_ch:
            if not isinstance(data, str):
                continue
            self._mark_started()
            stub.texts[index] += data
            words = max(len(data.split()), 1)
            t = np.arange(int(0.05 * rate * words)) / rate
            tone = (0.2 * 32767 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
            output_emitter.push(tone.tobytes())
