"""pipecat's Cartesia services against the emulator, run in pipecat's own virtual environment
(.venv-pipecat, see requirements.txt) the way pipecat's examples build a bot: the service in
a Pipeline, a PipelineWorker, a WorkerRunner, frames queued on the worker. Only the URL
points at the emulator; the key comes from CARTESIA_API_KEY and the CA from SSL_CERT_FILE.

    python scenarios.py '{"scenario": "websocket", "url": "wss://...", "text": "Hello."}'

Prints one JSON line with what the pipeline produced; tests/clients/test_pipecat.py checks it
against the emulator's records.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys

from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.cartesia.tts import CartesiaHttpTTSService, CartesiaTTSService
from pipecat.workers.runner import WorkerRunner

VOICE = "f786b574-daa5-4673-aa0c-cbe3e8534c02"


class Collector(FrameProcessor):
    """The end of the pipeline: keeps the audio, the spoken words and any error."""

    def __init__(self) -> None:
        super().__init__()
        self.audio: dict[str, list[bytes]] = {}  # by context id
        self.sample_rates: set[int] = set()
        self.words: list[str] = []
        self.errors: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.audio.setdefault(str(frame.context_id), []).append(frame.audio)
            self.sample_rates.add(frame.sample_rate)
        elif isinstance(frame, TTSTextFrame):
            self.words.append(frame.text)
        elif isinstance(frame, ErrorFrame):
            self.errors.append(str(frame.error))
        await self.push_frame(frame, direction)


async def speak(tts: FrameProcessor, texts: list[str]) -> dict:
    collector = Collector()
    context_ids: list[str] = []

    @tts.event_handler("on_tts_request")
    async def on_tts_request(_tts: object, context_id: str, _text: str) -> None:
        if context_id not in context_ids:
            context_ids.append(context_id)

    worker = PipelineWorker(
        Pipeline([tts, collector]),
        params=PipelineParams(audio_out_sample_rate=24000),
        idle_timeout_secs=30,
    )

    @worker.event_handler("on_pipeline_error")
    async def on_error(_worker: object, frame: ErrorFrame) -> None:
        collector.errors.append(str(frame.error))

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await worker.queue_frames([*(TTSSpeakFrame(t) for t in texts), EndFrame()])
    await runner.run()
    return {
        "context_ids": context_ids,
        "sample_rates": sorted(collector.sample_rates),
        "audio_b64": {
            ctx: base64.b64encode(b"".join(chunks)).decode()
            for ctx, chunks in collector.audio.items()
        },
        "words": collector.words,
        "errors": collector.errors,
    }


async def main(args: dict) -> dict:
    api_key = os.environ["CARTESIA_API_KEY"]
    if args["scenario"] == "websocket":
        tts: FrameProcessor = CartesiaTTSService(
            api_key=api_key,
            url=args["url"],
            settings=CartesiaTTSService.Settings(voice=VOICE),
        )
    else:
        tts = CartesiaHttpTTSService(
            api_key=api_key,
            base_url=args["url"],
            settings=CartesiaHttpTTSService.Settings(voice=VOICE),
        )
    return await speak(tts, args["text"])


if __name__ == "__main__":
    try:
        result = asyncio.run(main(json.loads(sys.argv[1])))
    except Exception as exc:  # one line for the test to show
        result = {"failed": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)
