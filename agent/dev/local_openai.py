"""A local OpenAI-compatible server: chat completions (streamed like OpenAI) and audio
transcriptions, on 127.0.0.1 with a random port.

The worker in a real room talks to it through the real `livekit-plugins-openai` clients
(`OPENAI_BASE_URL`), so the room tests, `python -m agent simulate --room` and the room
benchmarks run the whole pipeline offline. Replies and transcripts are scripted: a list,
or a callable (sync or async) given the request.

    async with FakeOpenAI(replies=["Sure! It is sunny."], transcripts=["hello"]) as fake:
        llm = openai.LLM(base_url=fake.base_url, api_key="test", model="gpt-4o-mini")
        ...
        fake.chat_requests[-1]["messages"]      # what the client sent

Streaming follows OpenAI's wire format: one `data: {chat.completion.chunk}` SSE event per
token (the first carries `role`), a last chunk with `finish_reason`, a usage-only chunk
when `stream_options.include_usage` is set, then `data: [DONE]`. Timing is realistic:
the first token after `ttft`, then one every `token_interval` seconds.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import math
import time
import uuid
import wave
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import BodyPartReader, web

from plugin_cartesia_ws.emulator.serving import start_site

from .scripted import llm_tokens


@dataclass
class TranscriptionRequest:
    """One `POST /v1/audio/transcriptions`: the form fields and the decoded WAV."""

    fields: dict[str, str]
    filename: str
    content_type: str
    wav_bytes: bytes
    sample_rate: int = 0
    num_channels: int = 0
    pcm: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))

    @property
    def duration(self) -> float:
        if not self.sample_rate or not self.num_channels:
            return 0.0
        return len(self.pcm) / (self.sample_rate * self.num_channels)


Replies = Sequence[str] | Callable[[list[dict[str, Any]]], str | Awaitable[str]]
Transcripts = Sequence[str] | Callable[[TranscriptionRequest], str | Awaitable[str]]


class FakeOpenAI:
    """The fake server. Use it as an async context manager; `.base_url` ends in `/v1`.

    replies: chat replies, one per request in order (the last one repeats), or a callable
        taking the request's `messages` and returning the reply.
    transcripts: the same for transcriptions; a callable gets the `TranscriptionRequest`.
    api_key: when set, requests without `Authorization: Bearer <api_key>` get a 401.
    """

    def __init__(
        self,
        replies: Replies = ("Hello! How can I help you today?",),
        *,
        transcripts: Transcripts = ("Hello there.",),
        ttft: float = 0.25,
        token_interval: float = 0.02,
        api_key: str | None = None,
        model: str = "gpt-4o-mini",
        stt_model: str = "gpt-4o-mini-transcribe",
    ) -> None:
        self._replies = replies
        self._transcripts = transcripts
        self.ttft = ttft
        self.token_interval = token_interval
        self.api_key = api_key
        self.model = model
        self.stt_model = stt_model  # the names a worker using this server should log
        self.chat_requests: list[dict[str, Any]] = []
        self.transcription_requests: list[TranscriptionRequest] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("FakeOpenAI is not running")
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> FakeOpenAI:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(
            [
                web.post("/v1/chat/completions", self._chat_completions),
                web.post("/v1/audio/transcriptions", self._transcriptions),
                web.get("/v1/models", self._models),
            ]
        )
        self._runner, self.port = await start_site(app)
        return self

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def wait_for_requests(
        self, *, chat: int = 0, transcriptions: int = 0, timeout: float = 10.0
    ) -> None:
        """Wait until at least `chat` chat requests and `transcriptions` transcription
        requests have arrived (raises TimeoutError otherwise)."""

        def ready() -> bool:
            return (
                len(self.chat_requests) >= chat
                and len(self.transcription_requests) >= transcriptions
            )

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(ready), timeout)

    async def _record(self, bucket: list[Any], item: Any) -> None:
        async with self._changed:
            bucket.append(item)
            self._changed.notify_all()

    # ------------------------------------------------------------------ helpers
    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return _error(
            401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
        )

    @staticmethod
    async def _pick(source: Any, index: int, arg: Any) -> str:
        if callable(source):
            result = source(arg)
            return str(await result if inspect.isawaitable(result) else result)
        if not source:
            raise LookupError("no scripted responses")
        return source[min(index, len(source) - 1)]

    # ------------------------------------------------------------------ chat
    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "We could not parse the JSON body of your request.")
        if not isinstance(body.get("messages"), list):
            return _error(400, "'messages' is a required property", param="messages")

        index = len(self.chat_requests)
        await self._record(self.chat_requests, body)
        reply = await self._pick(self._replies, index, body["messages"])
        model = body.get("model") or self.model
        tokens = llm_tokens(reply)
        usage = {
            "prompt_tokens": sum(
                len(llm_tokens(m.get("content") or ""))
                for m in body["messages"]
                if isinstance(m.get("content"), str)
            ),
            "completion_tokens": len(tokens),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())

        if not body.get("stream"):
            await asyncio.sleep(self.ttft + self.token_interval * max(len(tokens) - 1, 0))
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply, "refusal": None},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                    "system_fingerprint": "fp_fake",
                }
            )

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            c: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
            }
            if include_usage:
                c["usage"] = None
            return c

        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        await response.prepare(request)
        try:
            await asyncio.sleep(self.ttft)
            await _sse(response, chunk({"role": "assistant", "content": "", "refusal": None}))
            for i, token in enumerate(tokens):
                if i:
                    await asyncio.sleep(self.token_interval)
                await _sse(response, chunk({"content": token}))
            await _sse(response, chunk({}, finish_reason="stop"))
            if include_usage:
                last = chunk({})
                last["choices"] = []
                last["usage"] = {
                    **usage,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
                }
                await _sse(response, last)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            # the client went away mid-stream (an interrupted turn): nothing to finish
            pass
        return response

    # ------------------------------------------------------------------ transcription
    async def _transcriptions(self, request: web.Request) -> web.Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        if not request.content_type.startswith("multipart/"):
            return _error(400, "Expected multipart/form-data")
        fields: dict[str, str] = {}
        wav_bytes, filename, file_type = b"", "", ""
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue  # a nested multipart: not something OpenAI's clients send
            if part.name == "file":
                filename = part.filename or ""
                file_type = part.headers.get("Content-Type", "")
                wav_bytes = await part.read()
            elif part.name:
                fields[part.name] = await part.text()
        if not wav_bytes:
            return _error(400, "'file' is a required property", param="file")
        if "model" not in fields:
            return _error(400, "'model' is a required property", param="model")

        req = TranscriptionRequest(
            fields=fields, filename=filename, content_type=file_type, wav_bytes=wav_bytes
        )
        try:
            with wave.open(io.BytesIO(wav_bytes), "rb") as w:
                req.sample_rate = w.getframerate()
                req.num_channels = w.getnchannels()
                if w.getsampwidth() != 2:
                    return _error(400, "Only 16-bit PCM WAV is supported by the fake")
                req.pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        except (wave.Error, EOFError):
            return _error(400, "Audio file might be corrupted or unsupported", param="file")

        index = len(self.transcription_requests)
        await self._record(self.transcription_requests, req)
        text = await self._pick(self._transcripts, index, req)

        fmt = fields.get("response_format", "json")
        if fmt == "text":
            return web.Response(text=text, content_type="text/plain")
        if fmt == "verbose_json":
            return web.json_response(
                {
                    "task": "transcribe",
                    "language": fields.get("language") or "english",
                    "duration": round(req.duration, 3),
                    "text": text,
                    "segments": [],
                }
            )
        if fmt in ("srt", "vtt"):
            end = _timestamp(req.duration, "," if fmt == "srt" else ".")
            start = _timestamp(0.0, "," if fmt == "srt" else ".")
            head = "WEBVTT\n\n" if fmt == "vtt" else "1\n"
            return web.Response(
                text=f"{head}{start} --> {end}\n{text}\n", content_type="text/plain"
            )
        return web.json_response(
            {"text": text, "usage": {"type": "duration", "seconds": math.ceil(req.duration)}}
        )

    async def _models(self, request: web.Request) -> web.Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        names = [self.model, "whisper-1", "gpt-4o-mini-transcribe"]
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": n, "object": "model", "created": 0, "owned_by": "fake"} for n in names
                ],
            }
        )


async def _sse(response: web.StreamResponse, payload: dict[str, Any]) -> None:
    await response.write(b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n")


def _error(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": type_, "param": param, "code": code}},
        status=status,
    )


def _timestamp(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"
