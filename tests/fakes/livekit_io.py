"""A tiny streaming TTS, for tests that need a session without the plugin (the headless
audio and text outputs are agent.dev.audio_io's VirtualSpeaker and TranscriptCollector)."""

from __future__ import annotations

import numpy as np
from livekit.agents import APIConnectOptions, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS


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
