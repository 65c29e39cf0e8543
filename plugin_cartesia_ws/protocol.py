"""Pure client side of Cartesia's TTS WebSocket: build request frames, parse server events,
map errors to LiveKit's ``APIError`` family. No sockets, no asyncio.

Frames are built as the ``cartesia`` SDK's ``GenerationRequestParam`` /
``CancelContextRequest`` and parsed into its ``WebsocketResponse`` models, so the vendor's
own schema is the contract. Dispatch is on ``type`` first: an ``error`` carries
``done: true`` and must never be mistaken for a normal end (the official plugin's bug).

A frame is parsed in one pass: pydantic-core reads its JSON text straight into the SDK's
own discriminated union of events (``_EVENTS``), faster than ``json.loads`` alone (an 80 ms
chunk frame: 2.5 us against 5.3 us, and 8.5 us for ``json.loads`` then validation; measured
in benchmarks/README.md). A frame it refuses takes the careful path (``_parse_checked``), which
classifies it exactly: malformed, of an unknown type, or the typeless final ``done``. Both
paths give the same event for every frame (tests/unit/test_protocol.py).
"""

from __future__ import annotations

import binascii
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, cast, get_args

import pydantic
from cartesia.types.generation_request_param import GenerationRequestParam
from cartesia.types.voice_specifier_param import TTSRequestVoiceObject
from cartesia.types.websocket_client_event_param import CancelContextRequest
from cartesia.types.websocket_response import (
    Chunk,
    Done,
    Error,
    FlushDone,
    PhonemeTimestamps,
    Timestamps,
    WebsocketResponse,
)
from livekit.agents import APIConnectionError, APIError, APIStatusError, APITimeoutError

from .models import is_sonic_3

__all__ = [
    "Chunk",
    "Done",
    "Error",
    "FlushDone",
    "PhonemeTimestamps",
    "Timestamps",
    "WebsocketResponse",
    "ContextOptions",
    "MalformedFrame",
    "UnknownEvent",
    "generation_frame",
    "ContextFrames",
    "flush_frame",
    "end_frame",
    "cancel_frame",
    "parse_event",
    "decode_audio",
    "CartesiaStatusError",
    "error_from_event",
    "handshake_error",
    "is_fatal",
    "close_error",
]

_EVENT_TYPES = {
    "chunk": Chunk,
    "timestamps": Timestamps,
    "phoneme_timestamps": PhonemeTimestamps,
    "flush_done": FlushDone,
    "done": Done,
    "error": Error,
}
_ADAPTERS: dict[str, pydantic.TypeAdapter[Any]] = {
    name: pydantic.TypeAdapter(cast(Any, model)) for name, model in _EVENT_TYPES.items()
}
# The SDK's union of events, discriminated on ``type`` as the SDK declares it
_EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(
    cast(Any, Annotated[get_args(WebsocketResponse)[0], pydantic.Field(discriminator="type")])
)
_VALIDATE_EVENT = _EVENTS.validator.validate_json  # (the adapter's own method only forwards)
_STRING_SPEEDS = {
    "fastest": "fast",
    "fast": "fast",
    "normal": "normal",
    "slow": "slow",
    "slowest": "slow",
}


@dataclass(frozen=True)
class ContextOptions:
    """Everything that must stay identical on every frame of one context (spec 2.7)."""

    model: str
    voice: str
    encoding: str
    sample_rate: int
    language: str | None
    max_buffer_delay_ms: int
    speed: float | str | None = None
    emotion: tuple[str, ...] = ()
    volume: float | None = None
    word_timestamps: bool = True
    add_phoneme_timestamps: bool = False
    use_normalized_timestamps: bool = False
    pronunciation_dict_id: str | None = None

    def base(self, context_id: str) -> GenerationRequestParam:
        """The fields shared by every frame of the context, as the SDK types them."""
        frame: GenerationRequestParam = {
            "context_id": context_id,
            "model_id": self.model,
            "voice": cast(TTSRequestVoiceObject, {"mode": "id", "id": self.voice}),
            "output_format": {
                "container": "raw",
                "encoding": self.encoding,  # type: ignore[typeddict-item]
                "sample_rate": self.sample_rate,  # type: ignore[typeddict-item]
            },
            "transcript": "",
            "add_timestamps": self.word_timestamps,
            "max_buffer_delay_ms": self.max_buffer_delay_ms,
        }
        if self.language:
            frame["language"] = self.language  # type: ignore[typeddict-item]
        if self.add_phoneme_timestamps:
            frame["add_phoneme_timestamps"] = True
        if self.use_normalized_timestamps:
            frame["use_normalized_timestamps"] = True
        if self.pronunciation_dict_id:
            frame["pronunciation_dict_id"] = self.pronunciation_dict_id
        config: dict[str, Any] = {}
        if isinstance(self.speed, int | float) and not isinstance(self.speed, bool):
            if is_sonic_3(self.model):
                config["speed"] = float(self.speed)
        elif isinstance(self.speed, str):
            frame["speed"] = _STRING_SPEEDS.get(self.speed, "normal")  # type: ignore[typeddict-item]
        if self.emotion and is_sonic_3(self.model):
            config["emotion"] = self.emotion[0]
        if self.volume is not None and is_sonic_3(self.model):
            config["volume"] = float(self.volume)
        if config:
            frame["generation_config"] = config  # type: ignore[typeddict-item]
        return frame


def generation_frame(base: GenerationRequestParam, transcript: str) -> str:
    """More text for the context; Cartesia joins transcripts verbatim."""
    frame = dict(base, transcript=transcript)
    frame["continue"] = True
    return json.dumps(frame)


def flush_frame(base: GenerationRequestParam) -> str:
    """Generate what is buffered now; answered by ``flush_done`` (spec 2.6)."""
    frame = dict(base, transcript="", flush=True)
    frame["continue"] = True
    return json.dumps(frame)


def end_frame(base: GenerationRequestParam) -> str:
    """No more input: the server finishes the audio and sends one ``done``."""
    frame = dict(base, transcript="")
    frame["continue"] = False
    return json.dumps(frame)


class ContextFrames:
    """The frames of one context, encoded once: ``generation_frame``, ``flush_frame`` and
    ``end_frame`` of ``base``, byte for byte, where only the transcript is encoded per frame."""

    __slots__ = ("_head", "_tail", "_base", "flush", "end")
    _MARK = json.dumps("\x00")

    def __init__(self, base: GenerationRequestParam) -> None:
        template = generation_frame(base, "\x00")
        self._head, self._tail = template.split(self._MARK, 1)
        if self._MARK in self._tail or self._MARK in self._head:  # (a field holds a NUL)
            self._head, self._tail = "", ""
        self._base = base
        self.flush = flush_frame(base)
        self.end = end_frame(base)

    def generation(self, transcript: str) -> str:
        if not self._head:
            return generation_frame(self._base, transcript)
        return self._head + json.dumps(transcript) + self._tail


def cancel_frame(context_id: str) -> str:
    request: CancelContextRequest = {"context_id": context_id, "cancel": True}
    return json.dumps(request)


class MalformedFrame(ValueError):
    """A server frame we cannot use (not JSON, not an object, fields missing)."""


@dataclass(frozen=True)
class UnknownEvent:
    """A frame of a ``type`` this client does not know (Cartesia adds types additively)."""

    type: str
    context_id: str | None


def parse_event(raw: str | bytes) -> WebsocketResponse | UnknownEvent:
    """One server text frame -> the SDK's typed event; raises MalformedFrame."""
    try:
        return _VALIDATE_EVENT(raw)  # type: ignore[no-any-return]
    except pydantic.ValidationError:
        return _parse_checked(raw)  # not an SDK event as it stands: say what it is


def _parse_checked(raw: str | bytes) -> WebsocketResponse | UnknownEvent:
    """``parse_event`` the careful way: JSON first, then the model its ``type`` names."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedFrame("frame is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedFrame("frame is not a JSON object")
    kind = data.get("type")
    context_id = data.get("context_id")
    context_id = context_id if isinstance(context_id, str) else None
    adapter = _ADAPTERS.get(kind) if isinstance(kind, str) else None
    if adapter is None:
        if kind is None and data.get("done") is True and context_id:
            # Some servers omit `type` on the final message; a bare done is still a done.
            return Done(context_id=context_id, done=True, status_code=200, type="done")
        return UnknownEvent(str(kind), context_id)
    try:
        return adapter.validate_python(data)  # type: ignore[no-any-return]
    except pydantic.ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise MalformedFrame(f"{kind} frame with missing or invalid fields: {fields}") from None


def _simd_base64() -> Callable[[str], bytes] | None:
    """pybase64's strict decoder (SIMD): an 80 ms chunk in 0.7 us instead of binascii's 10;
    None where it is not installed (it is a dependency; the standard library is the
    fallback)."""
    try:
        import pybase64
    except ImportError:
        return None
    return functools.partial(pybase64.b64decode, validate=True)


_SIMD_BASE64 = _simd_base64()


def decode_audio(data: str) -> bytes:
    """A chunk's base64 audio. Strict base64 (what Cartesia sends) takes the SIMD decoder;
    anything else takes the standard library's path, which says what it is: the lenient C
    decoder (~3x faster than ``validate=True``) skips characters outside the alphabet, a
    length check catches that, and only then the strict decoder runs (raising
    ``binascii.Error``). Both give the same bytes for every input (tests/unit/test_protocol.py)."""
    if _SIMD_BASE64 is not None:
        try:
            return _SIMD_BASE64(data)
        except (binascii.Error, ValueError):
            pass  # not plain base64: the standard library's verdict below
    raw = binascii.a2b_base64(data)
    expected = len(data) // 4 * 3 - data.endswith("=") - data.endswith("==")
    if len(data) % 4 or len(raw) != expected:
        return binascii.a2b_base64(data, strict_mode=True)
    return raw


class CartesiaStatusError(APIStatusError):
    """An ``APIStatusError`` whose ``str()`` is its message, a sentence for people.

    LiveKit's ``APIStatusError.__str__`` renders ``message='...', status_code=401,
    retryable=False``, and that is what users saw wherever the error was logged or printed
    (LiveKit's "closing due to unrecoverable error", the worker's error line). The status and
    ``retryable`` stay attributes, and in ``repr()``."""

    def __str__(self) -> str:
        return self.message


# What the user can do about an error event, by Cartesia's error_code (the message alone
# names the voice or model but not the setting that chose it).
_EVENT_HINTS = {
    "voice_not_found": "check the voice id (voice=, CARTESIA_VOICE in the worker)",
    "model_not_found": "check the model id (model=, CARTESIA_MODEL in the worker)",
    "model_sunsetted": "choose a current model (model=, CARTESIA_MODEL in the worker)",
}


def turn_error(kind: str, message: str, event: Error | None = None) -> APIError:
    """A turn's failure (``turn_outputs.Failure``) as the LiveKit error its retry logic and
    users expect."""
    if kind == "server" and event is not None:
        return error_from_event(event)
    if kind == "timeout":
        return APITimeoutError(message)
    if kind == "input":  # LiveKit's retry would feed the same text to the same code
        return APIError(message, retryable=False)
    return APIConnectionError(message)


def error_from_event(event: Error, *, request_id: str | None = None) -> APIError:
    """An ``error`` event -> APIStatusError with honest ``retryable`` (4xx but 408/429 fatal)."""
    title = event.title or "Cartesia error"
    legacy = (event.model_extra or {}).get("error")  # "Title: message" before 2026-03-01
    message = event.message or (str(legacy) if legacy else "")
    code = f" [{event.error_code}]" if event.error_code else ""
    status = event.status_code if event.status_code is not None else 500
    hint = _EVENT_HINTS.get(event.error_code or "")
    text = f"Cartesia error {status}{code}: {title}: {message}".rstrip(": ")
    return CartesiaStatusError(
        f"{text.rstrip('.')}: {hint}" if hint else text,
        status_code=status,
        request_id=event.request_id or request_id,
        body={"error_code": event.error_code, "context_id": event.context_id},
        retryable=None,
    )


_HANDSHAKE_HINTS = {
    401: "Cartesia rejected the API key (HTTP 401): check CARTESIA_API_KEY (or api_key=)",
    403: "Cartesia refused access (HTTP 403): use a key with TTS access in CARTESIA_API_KEY",
    404: (
        "Cartesia does not know this URL or API version (HTTP 404): check CARTESIA_BASE_URL "
        "(base_url=) and api_version"
    ),
    429: (
        "Cartesia refused the connection: too many open WebSockets for this key (HTTP 429); "
        "retrying: close other sessions on this key or raise its limit"
    ),
}


def handshake_error(status: int, request_id: str | None = None) -> APIStatusError:
    """A refused upgrade; the message names the cause, never the key."""
    message = _HANDSHAKE_HINTS.get(status, f"Cartesia refused the WebSocket (HTTP {status})")
    return CartesiaStatusError(message, status_code=status, request_id=request_id, retryable=None)


def is_fatal(error: APIError) -> bool:
    """Retrying cannot help (a bad key, an unknown voice or URL): 4xx but 408/429."""
    return isinstance(error, APIStatusError) and not error.retryable


def close_error(close_code: int | None, *, while_owed: bool) -> APIConnectionError:
    """The socket closed under a context; always retryable (a new socket may work)."""
    what = "while audio was owed" if while_owed else "unexpectedly"
    return APIConnectionError(f"Cartesia WebSocket closed {what} (close code {close_code})")
