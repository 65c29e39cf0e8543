"""The CPU floor: the least a LiveKit streaming TTS on Cartesia's WebSocket can do per turn.

Not a product. It waits for the whole reply, sends it as one frame, and then only does what
every plugin on this protocol must: read each server message, parse its JSON, decode the
audio, hand audio and word timings to LiveKit's AudioEmitter. No chunking, no recovery, no
barge-in handling. Whatever CPU per second of audio it spends in the scale benchmark is spent
by LiveKit's stream API, aiohttp, JSON and base64 and the harness; a plugin with the same
features (word timestamps, 24 kHz PCM) cannot spend less. It tells how far a CPU target below
the official plugin can go.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions, tts, utils
from livekit.agents.voice.io import TimedString

from plugin_cartesia_ws.models import DEFAULT_API_VERSION, DEFAULT_MODEL, TTSDefaultVoiceId

SAMPLE_RATE = 24000


class FloorTTS(tts.TTS):
    """One socket shared by all streams; its reader hands each message to its turn's handler
    directly (no queue, no task switch per message)."""

    def __init__(self, *, base_url: str, api_key: str, http_session: aiohttp.ClientSession):
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True, aligned_transcript=True),
            sample_rate=SAMPLE_RATE,
            num_channels=1,
        )
        self._url = base_url.replace("http", "ws", 1) + "/tts/websocket"
        self._headers = {"X-API-Key": api_key, "Cartesia-Version": DEFAULT_API_VERSION}
        self._http = http_session
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._connecting = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self.contexts: dict[str, Callable[[dict[str, Any] | None], None]] = {}

    async def socket(self) -> aiohttp.ClientWebSocketResponse:
        async with self._connecting:
            if self._ws is None or self._ws.closed:
                self._ws = await self._http.ws_connect(self._url, headers=self._headers)
                self._reader = asyncio.create_task(self._read(self._ws))
            return self._ws

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            event = json.loads(msg.data)
            handle = self.contexts.get(event.get("context_id", ""))
            if handle is not None:
                handle(event)
        for handle in list(self.contexts.values()):
            handle(None)  # the socket closed: every open turn fails

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        raise NotImplementedError("the floor measures streams only")

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> FloorStream:
        return FloorStream(tts=self, conn_options=conn_options)

    async def aclose(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader


class FloorStream(tts.SynthesizeStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        floor: FloorTTS = self._tts  # type: ignore[assignment]
        context_id = uuid.uuid4().hex
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=SAMPLE_RATE,
            num_channels=1,
            mime_type="audio/pcm",
            stream=True,
        )
        text = [item async for item in self._input_ch if isinstance(item, str)]
        ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def handle(event: dict[str, Any] | None) -> None:
            kind = event.get("type") if event is not None else None
            if kind == "chunk":
                output_emitter.push(base64.b64decode(event["data"]))  # type: ignore[index]
            elif kind == "timestamps":
                words = event["word_timestamps"]  # type: ignore[index]
                for word, start, end in zip(
                    words["words"], words["start"], words["end"], strict=True
                ):
                    output_emitter.push_timed_transcript(
                        TimedString(text=word + " ", start_time=start, end_time=end)
                    )
            elif kind == "done" and not ended.done():
                ended.set_result(None)
            elif (kind == "error" or event is None) and not ended.done():  # None: socket closed
                ended.set_exception(RuntimeError(f"the context failed: {event}"))

        floor.contexts[context_id] = handle
        try:
            ws = await floor.socket()
            output_emitter.start_segment(segment_id=context_id)
            self._mark_started()
            request = {
                "model_id": DEFAULT_MODEL,
                "voice": {"mode": "id", "id": TTSDefaultVoiceId},
                "output_format": {
                    "container": "raw",
                    "encoding": "pcm_s16le",
                    "sample_rate": SAMPLE_RATE,
                },
                "transcript": "".join(text),
                "context_id": context_id,
                "continue": False,
                "add_timestamps": True,
            }
            await ws.send_str(json.dumps(request))
            await ended
            output_emitter.end_segment()
        finally:
            del floor.contexts[context_id]
