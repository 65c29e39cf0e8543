"""``POST /tts/bytes`` and ``POST /tts/sse``: one generation per request, paced like the
WebSocket's (section 6 of the protocol notes), validated by the same frame parser."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from .encoding import encode
from .handshake import STATE_KEY, check_handshake
from .http_audio import HttpOutput, Mp3Encoder, Mp3Unavailable, parse_output_format, wav_header
from .messages import (
    Endpoint,
    GenerationRequest,
    ProtocolError,
    bad_request,
    chunk_event,
    done_event,
    http_error_body,
    parse_client_frame,
)
from .pacing import PlannedChunk, plan_generation, timing_events
from .rendering import Rendering
from .state import EmulatorState


@dataclass(frozen=True)
class HttpGeneration:
    state: EmulatorState
    request: GenerationRequest
    output: HttpOutput
    version: str
    body: dict[str, Any]

    async def render(self) -> Rendering:
        req = self.request
        return await self.state.render(
            req.transcript, sample_rate=req.sample_rate, speed=req.speed, language=req.language
        )

    async def paced(self, rendering: Rendering) -> AsyncIterator[PlannedChunk]:
        """The rendering's chunks, each when the latency model releases it."""
        latency = self.state.config.latency
        first_audio = latency.first_audio_delay(random.Random(latency.seed))
        loop = asyncio.get_running_loop()
        started = loop.time()
        for chunk in plan_generation(rendering, self.request.encoding, latency, first_audio):
            await asyncio.sleep(max(0.0, started + chunk.release_s - loop.time()))
            yield chunk


def _error_response(err: ProtocolError, version: str, endpoint: Endpoint) -> web.Response:
    body, content_type = http_error_body(
        err, version=version, request_id=str(uuid.uuid4()), endpoint=endpoint
    )
    return web.Response(status=err.status, text=body, content_type=content_type)


async def _http_generation(
    request: web.Request, endpoint: Literal["bytes", "sse"]
) -> HttpGeneration | web.Response:
    """Shared validation of /tts/bytes and /tts/sse bodies (section 6); an error response
    when the request is refused."""
    state = request.app[STATE_KEY]
    _key, version = check_handshake(request, state)
    try:
        try:
            body = await request.json()
        except ValueError:
            raise bad_request("Body is not valid JSON.", None) from None
        if not isinstance(body, dict):
            raise bad_request("Body must be a JSON object.", None)
        output = parse_output_format(body.get("output_format"), endpoint)
        frame = dict(body)
        frame.update(
            context_id=body.get("context_id") or f"http-{uuid.uuid4()}",
            output_format={
                "container": "raw",
                "encoding": output.encoding,
                "sample_rate": output.sample_rate,
            },
            max_buffer_delay_ms=0,
        )
        req = parse_client_frame(
            json.dumps(frame), version=version, catalogue=state.config.catalogue
        )
        if not isinstance(req, GenerationRequest):
            raise bad_request("cancel is a WebSocket message.", None)
    except ProtocolError as err:
        return _error_response(err, version, endpoint)
    state.bill(None, len(req.transcript))
    return HttpGeneration(state, req, output, version, body)


async def tts_bytes(request: web.Request) -> web.StreamResponse:
    gen = await _http_generation(request, "bytes")
    if isinstance(gen, web.Response):
        return gen
    req, output = gen.request, gen.output
    mp3: Mp3Encoder | None = None
    if output.container == "mp3":
        try:
            mp3 = Mp3Encoder(output.sample_rate, output.bit_rate or 128000)
        except Mp3Unavailable as err:
            return _error_response(err, gen.version, "bytes")
    rendering = await gen.render()
    response = web.StreamResponse(headers={"Content-Type": output.content_type})
    await response.prepare(request)
    if output.container == "wav":
        data_len = len(encode(rendering.samples[:1], req.encoding)) * len(rendering.samples)
        await response.write(wav_header(data_len, req.sample_rate, req.encoding))
    async for chunk in gen.paced(rendering):
        data = mp3.encode(chunk.audio) if mp3 is not None else chunk.audio
        if data:
            await response.write(data)
    if mp3 is not None:
        await response.write(mp3.flush())
    await response.write_eof()
    return response


async def tts_sse(request: web.Request) -> web.StreamResponse:
    gen = await _http_generation(request, "sse")
    if isinstance(gen, web.Response):
        return gen
    req = gen.request
    echo_id = gen.body.get("context_id")
    rendering = await gen.render()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)

    async def emit(event: dict) -> None:
        if echo_id is None:
            event.pop("context_id", None)
        await response.write(f"data: {json.dumps(event)}\n\n".encode())

    ctx = echo_id or ""
    async for chunk in gen.paced(rendering):
        await emit(chunk_event(ctx, chunk.audio, chunk.step_time_ms, 1))
        for event in timing_events(
            chunk, ctx, 1, 0.0, words=req.add_timestamps, phonemes=req.add_phoneme_timestamps
        ):
            await emit(event)
    await emit(done_event(ctx))
    await response.write_eof()
    return response
