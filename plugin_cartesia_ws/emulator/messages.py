"""Pure server side of Cartesia's TTS protocol: validate client frames, build server events.

Everything here follows ``docs/cartesia-protocol.md`` (requests, events, errors, HTTP); the
emulator's I/O layer only moves the dicts built here over a socket. No asyncio, no I/O.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from ..audio import ENCODINGS, SAMPLE_RATES

# Re-exported: the catalogue used to live here.
from .catalogue import MODELS as MODELS
from .catalogue import SUNSETTED_MODELS as SUNSETTED_MODELS
from .catalogue import Catalogue as Catalogue
from .catalogue import model_status, voice_known

# API versions the emulator knows (section 1.3). Anything else is refused at the handshake.
KNOWN_VERSIONS = (
    "2024-06-10",
    "2024-11-13",
    "2025-04-16",
    "2025-11-04",
    "2026-03-01",
    "2026-08-14",
)
DEFAULT_VERSION = "2026-03-01"
STRUCTURED_ERRORS_SINCE = "2026-03-01"
MANAGED_BUFFER_DEFAULT_SINCE = "2025-11-04"

LANGUAGES = frozenset(
    "en fr de es pt zh ja hi it ko nl pl ru sv tr tl bg ro ar cs el fi hr ms sk da ta uk hu "
    "no vi bn th he ka id te gu kn ml mr pa or ur".split()
)
MODEL_SPEEDS = frozenset({"slow", "normal", "fast"})
# Fields that must not change within a context (section 2.7); `transcript`, `continue` and
# `flush` may.
LOCKED_FIELDS = (
    "model_id",
    "voice",
    "output_format",
    "language",
    "add_timestamps",
    "add_phoneme_timestamps",
    "use_normalized_timestamps",
    "generation_config",
    "max_buffer_delay_ms",
    "pronunciation_dict_id",
    "speed",
)
DOCS = "https://docs.cartesia.ai"
# The page that explains each error (the service omits ``doc_url`` when it has none).
_DOC_PATHS = {
    "model_not_found": "/build-with-cartesia/tts-models/latest",
    "model_sunsetted": "/build-with-cartesia/tts-models/api-changes",
    "voice_embedding_unsupported": "/build-with-cartesia/tts-models/api-changes",
    "concurrency_limited": "/use-the-api/concurrency-limits-and-timeouts",
}
_ENDPOINT_PAGES = {
    "websocket": "/api-reference/tts/websocket",
    "bytes": "/api-reference/tts/bytes",
    "sse": "/api-reference/tts/sse",
}
Endpoint = Literal["websocket", "bytes", "sse"]


def version_at_least(version: str, since: str) -> bool:
    """Versions are ISO dates, so string order is date order."""
    return version >= since


def default_buffer_delay_ms(version: str) -> int:
    """The server default changed from 0 to 3000 ms (section 2.5, open question 9)."""
    return 3000 if version_at_least(version, MANAGED_BUFFER_DEFAULT_SINCE) else 0


@dataclass(frozen=True)
class ProtocolError(Exception):
    """A request the server refuses; becomes an ``error`` event (section 3.7)."""

    status: int
    code: str
    title: str
    message: str
    context_id: str | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.title}: {self.message}"


def bad_request(
    message: str, context_id: str | None, code: str = "invalid_request"
) -> ProtocolError:
    return ProtocolError(400, code, "Invalid request", message, context_id)


@dataclass(frozen=True)
class GenerationRequest:
    """A validated generation request: the per-message parts and the locked parameters."""

    context_id: str
    transcript: str
    continue_: bool
    flush: bool
    params: dict[str, Any] = field(hash=False)

    @property
    def encoding(self) -> str:
        return str(self.params["output_format"]["encoding"])

    @property
    def sample_rate(self) -> int:
        return int(self.params["output_format"]["sample_rate"])

    @property
    def voice_id(self) -> str:
        voice = self.params["voice"]
        return voice if isinstance(voice, str) else str(voice.get("id", ""))

    @property
    def speed(self) -> float:
        config = self.params.get("generation_config") or {}
        if isinstance(config.get("speed"), int | float):
            return float(config["speed"])
        return {"slow": 0.8, "fast": 1.25}.get(str(self.params.get("speed")), 1.0)

    @property
    def language(self) -> str | None:
        lang = self.params.get("language")
        return lang if isinstance(lang, str) else None

    @property
    def max_buffer_delay_ms(self) -> int:
        return int(self.params["max_buffer_delay_ms"])

    @property
    def add_timestamps(self) -> bool:
        return bool(self.params.get("add_timestamps"))

    @property
    def add_phoneme_timestamps(self) -> bool:
        return bool(self.params.get("add_phoneme_timestamps"))


@dataclass(frozen=True)
class CancelRequest:
    context_id: str


def parse_client_frame(
    raw: str | bytes, *, version: str, catalogue: Catalogue
) -> GenerationRequest | CancelRequest:
    """Decode and validate one client text frame; raises ProtocolError (400/404)."""
    if isinstance(raw, bytes):
        raise bad_request("Binary frames are not supported; send JSON text frames.", None)
    try:
        msg = json.loads(raw)
    except ValueError:
        raise bad_request("Message is not valid JSON.", None) from None
    if not isinstance(msg, dict):
        raise bad_request("Message must be a JSON object.", None)
    context_id = msg.get("context_id")
    if context_id is not None and not isinstance(context_id, str):
        raise bad_request("context_id must be a string.", None)
    if "cancel" in msg:
        if msg.get("cancel") is not True or not context_id:
            raise bad_request("A cancel request needs context_id and cancel: true.", context_id)
        return CancelRequest(context_id)
    if not context_id:
        if version_at_least(version, MANAGED_BUFFER_DEFAULT_SINCE):
            raise bad_request("context_id is required.", None)
        context_id = f"ctx-{uuid.uuid4()}"  # optional in <= 2025-04-16
    return _validate_generation(msg, context_id, version, catalogue)


def _validate_generation(
    msg: dict[str, Any], context_id: str, version: str, catalogue: Catalogue
) -> GenerationRequest:
    for name in ("model_id", "transcript", "voice", "output_format"):
        if name not in msg:
            raise bad_request(f"Missing required field: {name}.", context_id)
    transcript = msg["transcript"]
    if not isinstance(transcript, str):
        raise bad_request("transcript must be a string.", context_id)
    _check_model(msg["model_id"], context_id, catalogue)
    _check_voice(msg["voice"], context_id, catalogue)
    _check_output_format(msg["output_format"], context_id)
    language = msg.get("language")
    if language is not None and (not isinstance(language, str) or language not in LANGUAGES):
        raise bad_request(f"Unsupported language: {language!r}.", context_id)
    delay = msg.get("max_buffer_delay_ms")
    if delay is None:
        delay = default_buffer_delay_ms(version)
    if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 5000:
        raise bad_request("max_buffer_delay_ms must be an integer in [0, 5000].", context_id)
    _check_generation_config(msg.get("generation_config"), context_id)
    speed = msg.get("speed")
    if speed is not None and speed not in MODEL_SPEEDS:
        raise bad_request("speed must be one of slow, normal, fast.", context_id)
    for flag in ("continue", "flush", "add_timestamps", "add_phoneme_timestamps"):
        if msg.get(flag) is not None and not isinstance(msg[flag], bool):
            raise bad_request(f"{flag} must be a boolean.", context_id)
    params = {name: msg.get(name) for name in LOCKED_FIELDS}
    params["max_buffer_delay_ms"] = delay
    return GenerationRequest(
        context_id=context_id,
        transcript=transcript,
        continue_=bool(msg.get("continue", False)),
        flush=bool(msg.get("flush", False)),
        params=params,
    )


def _check_model(model: Any, context_id: str, catalogue: Catalogue) -> None:
    status = model_status(model, catalogue)
    if status == "sunsetted":
        raise ProtocolError(
            410,
            "model_sunsetted",
            "Model sunsetted",
            "The requested model has been sunsetted and is no longer available.",
            context_id,
        )
    if status == "unknown":
        raise ProtocolError(
            400,
            "model_not_found",
            "Invalid model",
            "The model is not valid, make sure it is a valid model ID.",
            context_id,
        )


def _check_voice(voice: Any, context_id: str, catalogue: Catalogue) -> None:
    if isinstance(voice, dict):
        if voice.get("mode") == "embedding" or "embedding" in voice:
            raise bad_request(
                "Voice embeddings are no longer accepted; use a voice id.",
                context_id,
                code="voice_embedding_unsupported",
            )
        voice_id = voice.get("id")
    else:
        voice_id = voice
    if not isinstance(voice_id, str) or not voice_id:
        raise bad_request("voice must be {'mode': 'id', 'id': '<voice id>'}.", context_id)
    if not voice_known(voice_id, catalogue):
        raise ProtocolError(
            404, "voice_not_found", "Voice not found", f"No voice with id {voice_id}.", context_id
        )


def _check_output_format(fmt: Any, context_id: str) -> None:
    if not isinstance(fmt, dict):
        raise bad_request("output_format must be an object.", context_id)
    if fmt.get("container") != "raw":
        raise bad_request("output_format.container must be 'raw' on the WebSocket.", context_id)
    if fmt.get("encoding") not in ENCODINGS:
        raise bad_request(f"output_format.encoding must be one of {list(ENCODINGS)}.", context_id)
    if fmt.get("sample_rate") not in SAMPLE_RATES:
        raise bad_request(
            f"output_format.sample_rate must be one of {list(SAMPLE_RATES)}.", context_id
        )


def _check_generation_config(config: Any, context_id: str) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        raise bad_request("generation_config must be an object.", context_id)
    for name, low, high in (("speed", 0.6, 1.5), ("volume", 0.5, 2.0)):
        value = config.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise bad_request(f"generation_config.{name} must be in [{low}, {high}].", context_id)
    emotion = config.get("emotion")
    if emotion is not None and not isinstance(emotion, str):
        raise bad_request("generation_config.emotion must be a string.", context_id)


# ---------------------------------------------------------------- server events (section 3)
def _event(kind: str, context_id: str, *, done: bool = False, **fields: Any) -> dict:
    """The envelope every server event shares, then its own fields (in wire order)."""
    return {"type": kind, "context_id": context_id, "status_code": 206, "done": done, **fields}


def chunk_event(context_id: str, audio: bytes, step_time_ms: float, flush_id: int) -> dict:
    return _event(
        "chunk",
        context_id,
        data=base64.b64encode(audio).decode("ascii"),
        step_time=round(step_time_ms, 3),
        flush_id=flush_id,
    )


def timestamps_event(
    context_id: str, flush_id: int, words: list[str], starts: list[float], ends: list[float]
) -> dict:
    timestamps = {"words": words, "start": starts, "end": ends}
    return _event("timestamps", context_id, flush_id=flush_id, word_timestamps=timestamps)


def phoneme_timestamps_event(
    context_id: str, flush_id: int, phonemes: list[str], starts: list[float], ends: list[float]
) -> dict:
    timestamps = {"phonemes": phonemes, "start": starts, "end": ends}
    return _event(
        "phoneme_timestamps", context_id, flush_id=flush_id, phoneme_timestamps=timestamps
    )


def flush_done_event(context_id: str, flush_id: int) -> dict:
    return _event("flush_done", context_id, flush_done=True, flush_id=flush_id, data="")


def done_event(context_id: str) -> dict:
    return _event("done", context_id, done=True)


def doc_url(code: str, endpoint: Endpoint) -> str:
    """The docs page for an error: its topic's page, else the endpoint's reference."""
    return DOCS + _DOC_PATHS.get(code, _ENDPOINT_PAGES[endpoint])


def error_event(error: ProtocolError, *, version: str, request_id: str) -> dict:
    """Structured errors from 2026-03-01 on, the legacy ``"error": "Title: message"`` before."""
    event: dict[str, Any] = {"type": "error", "done": True, "status_code": error.status}
    if version_at_least(version, STRUCTURED_ERRORS_SINCE):
        ctx = error.context_id or "-"
        event.update(
            error_code=error.code,
            title=error.title,
            message=error.message,
            request_id=f"{request_id}:{ctx}:{uuid.uuid4()}",
            doc_url=doc_url(error.code, "websocket"),
        )
    else:
        event["error"] = f"{error.title}: {error.message}"
    if error.context_id is not None:
        event["context_id"] = error.context_id
    return event


def http_error_body(
    error: ProtocolError, *, version: str, request_id: str, endpoint: Endpoint
) -> tuple[str, str]:
    """(body, content type): JSON from 2026-03-01, plain ``Title: Message`` text before."""
    if version_at_least(version, STRUCTURED_ERRORS_SINCE):
        body = {
            "error_code": error.code,
            "title": error.title,
            "message": error.message,
            "request_id": request_id,
            "doc_url": doc_url(error.code, endpoint),
        }
        return json.dumps(body), "application/json"
    return f"{error.title}: {error.message}", "text/plain"
