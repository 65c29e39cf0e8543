"""The plugin's pure protocol layer: frames it builds, events it parses, errors it maps."""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from livekit.agents import APIStatusError

from plugin_cartesia_ws import protocol
from plugin_cartesia_ws.emulator.messages import CancelRequest, Catalogue, parse_client_frame
from plugin_cartesia_ws.models import TTSDefaultVoiceId

OPTS = protocol.ContextOptions(
    model="sonic-3",
    voice=TTSDefaultVoiceId,
    encoding="pcm_s16le",
    sample_rate=24000,
    language="en",
    max_buffer_delay_ms=0,
)


def test_generation_frames_carry_every_locked_field_and_an_explicit_buffer_delay() -> None:
    base = OPTS.base("turn-1")
    frames = [
        json.loads(protocol.generation_frame(base, "Hello, ")),
        json.loads(protocol.flush_frame(base)),
        json.loads(protocol.end_frame(base)),
    ]
    for frame in frames:
        assert frame["context_id"] == "turn-1"
        assert frame["model_id"] == "sonic-3"
        assert frame["voice"] == {"mode": "id", "id": OPTS.voice}
        assert frame["output_format"] == {
            "container": "raw",
            "encoding": "pcm_s16le",
            "sample_rate": 24000,
        }
        assert frame["max_buffer_delay_ms"] == 0 and frame["add_timestamps"] is True
    assert frames[0]["transcript"] == "Hello, " and frames[0]["continue"] is True
    assert (
        frames[1]["flush"] is True
        and frames[1]["transcript"] == ""
        and frames[1]["continue"] is True
    )
    assert frames[2]["continue"] is False and frames[2]["transcript"] == ""


def test_frames_are_valid_for_the_server_side_of_the_protocol() -> None:
    base = OPTS.base("turn-1")
    for raw in (
        protocol.generation_frame(base, "Hi. "),
        protocol.flush_frame(base),
        protocol.end_frame(base),
    ):
        parse_client_frame(raw, version="2026-03-01", catalogue=Catalogue())  # raises if invalid
    assert parse_client_frame(
        protocol.cancel_frame("turn-1"), version="2026-03-01", catalogue=Catalogue()
    ) == CancelRequest("turn-1")


def test_generation_config_only_for_sonic_3_and_string_speeds_use_the_legacy_field() -> None:
    sonic3 = protocol.ContextOptions(
        **{**OPTS.__dict__, "speed": 1.2, "emotion": ("calm",), "volume": 1.5}
    )
    assert sonic3.base("c")["generation_config"] == {"speed": 1.2, "emotion": "calm", "volume": 1.5}  # type: ignore[typeddict-item]
    sonic2 = protocol.ContextOptions(**{**OPTS.__dict__, "model": "sonic-2", "speed": 1.2})
    assert "generation_config" not in sonic2.base("c")
    legacy = protocol.ContextOptions(**{**OPTS.__dict__, "speed": "fastest"})
    assert legacy.base("c")["speed"] == "fast"
    no_lang = protocol.ContextOptions(**{**OPTS.__dict__, "language": None})
    assert "language" not in no_lang.base("c")


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (
            '{"type":"chunk","context_id":"c","status_code":206,"done":false,"data":"AAA=","step_time":5.5,"flush_id":1}',
            protocol.Chunk,
        ),
        (
            '{"type":"timestamps","context_id":"c","status_code":206,"done":false,"word_timestamps":{"words":["Hi"],"start":[0.0],"end":[0.2]}}',
            protocol.Timestamps,
        ),
        (
            '{"type":"phoneme_timestamps","context_id":"c","status_code":206,"done":false,"phoneme_timestamps":{"phonemes":["h"],"start":[0.0],"end":[0.1]}}',
            protocol.PhonemeTimestamps,
        ),
        (
            '{"type":"flush_done","context_id":"c","status_code":206,"done":false,"flush_done":true,"flush_id":1,"data":""}',
            protocol.FlushDone,
        ),
        ('{"type":"done","context_id":"c","status_code":206,"done":true}', protocol.Done),
        (
            '{"type":"error","done":true,"status_code":400,"error_code":"model_not_found","title":"Invalid model","message":"m","request_id":"r","context_id":"c"}',
            protocol.Error,
        ),
    ],
)
def test_every_server_event_parses_into_the_sdk_type(raw: str, kind: type) -> None:
    event = protocol.parse_event(raw)
    assert isinstance(event, kind)


def test_an_error_with_done_true_is_an_error_not_a_done() -> None:
    event = protocol.parse_event(
        '{"type":"error","done":true,"status_code":500,"title":"t","message":"m"}'
    )
    assert isinstance(event, protocol.Error) and not isinstance(event, protocol.Done)


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1,2]",
        '"text"',
        '{"type":"chunk","context_id":"c"}',
        '{"type":"done"}',
        b"\xff\xfe",
    ],
)
def test_malformed_frames_raise_malformed_frame(raw: str | bytes) -> None:
    with pytest.raises(protocol.MalformedFrame):
        protocol.parse_event(raw)


def test_unknown_types_are_reported_not_fatal() -> None:
    event = protocol.parse_event('{"type":"telemetry","context_id":"c","x":1}')
    assert event == protocol.UnknownEvent("telemetry", "c")


def test_a_typeless_final_message_counts_as_done() -> None:
    assert isinstance(protocol.parse_event('{"context_id":"c","done":true}'), protocol.Done)


def _outcome(raw: str | bytes, parse: Any) -> object:
    """What a parser makes of a frame, comparable (NaN as a string: it equals nothing)."""
    try:
        event = parse(raw)
    except protocol.MalformedFrame as exc:
        return ("malformed", str(exc))
    if isinstance(event, protocol.UnknownEvent):
        return event
    fields = json.dumps(event.model_dump(), sort_keys=True, default=repr, allow_nan=True)
    return (type(event), fields, repr(event.model_extra))


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300), st.floats(allow_nan=True),
    st.sampled_from(["", "c", "AAA=", "chunk", "done", "\ud800", "é"]),
    st.lists(st.one_of(st.floats(0, 3), st.text(max_size=3)), max_size=3),
)  # fmt: skip
FIELDS = st.sampled_from(
    ["type", "context_id", "status_code", "done", "data", "step_time", "flush_id", "flush_done",
     "word_timestamps", "phoneme_timestamps", "error", "title", "message", "error_code", "x"]
)  # fmt: skip
TYPES = st.sampled_from(
    ["chunk", "timestamps", "phoneme_timestamps", "flush_done", "done", "error", "other", 3]
)
TIMINGS = st.fixed_dictionaries(
    {"words": st.lists(st.text(max_size=4), max_size=3), "start": st.lists(st.floats(0, 3)),
     "end": st.lists(st.floats(0, 3))}
)  # fmt: skip


@st.composite
def server_frames(draw: st.DrawFn) -> str:
    """Frames near the real ones: a valid event of each type with fields dropped, changed
    or added, as JSON text (sometimes with a key twice, or not JSON at all)."""
    frame: dict[str, Any] = {
        "type": draw(TYPES), "context_id": "c", "status_code": 206, "done": draw(st.booleans()),
        "data": "AAA=", "step_time": 5.5, "flush_id": draw(st.one_of(st.none(), st.integers(0, 3))),
        "flush_done": True, "word_timestamps": draw(TIMINGS), "title": "t", "message": "m",
        "phoneme_timestamps": {"phonemes": ["h"], "start": [0.0], "end": [0.1]},
    }  # fmt: skip
    for key in draw(st.lists(FIELDS, max_size=3)):
        frame.pop(key, None)
    frame.update(draw(st.dictionaries(FIELDS, VALUES, max_size=3)))
    text = json.dumps(frame, allow_nan=True).replace('"\\\\ud800"', '"\\ud800"')
    if draw(st.booleans()):
        text = text[:-1] + ', "type": ' + json.dumps(draw(TYPES)) + "}"  # a key twice
    return draw(st.sampled_from([text, text, text, text[:-1], "[" + text + "]"]))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(server_frames())
def test_the_one_pass_parse_agrees_with_the_careful_one(raw: str) -> None:
    """The fast path (the SDK's union straight from the JSON text) never changes what a frame
    means: same event and fields, or the same refusal, as JSON first and then the model."""
    assert _outcome(raw, protocol.parse_event) == _outcome(raw, protocol._parse_checked)
    assert _outcome(raw.encode(), protocol.parse_event) == _outcome(raw, protocol._parse_checked)


def test_the_one_pass_parse_takes_the_sdk_union_for_real_frames() -> None:
    frames = [
        '{"type":"chunk","context_id":"c","status_code":206,"done":false,"data":"AAA=","step_time":5.5,"flush_id":1}',
        '{"type":"timestamps","context_id":"c","status_code":206,"done":false,"flush_id":1,"word_timestamps":{"words":["Hi"],"start":[0.0],"end":[0.2]}}',
        '{"type":"flush_done","context_id":"c","status_code":206,"done":false,"flush_done":true,"flush_id":1,"data":""}',
        '{"type":"done","context_id":"c","status_code":206,"done":true}',
    ]
    for raw in frames:
        fast = protocol._EVENTS.validate_json(raw)
        assert fast == protocol._parse_checked(raw) == protocol.parse_event(raw)
    nan = protocol.parse_event(frames[1].replace("0.0", "NaN"))
    assert isinstance(nan, protocol.Timestamps) and nan.word_timestamps is not None
    assert math.isnan(nan.word_timestamps.start[0])


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (404, False), (408, True), (429, True), (500, True), (503, True)],
)
def test_error_events_map_to_api_status_errors_with_honest_retryable(
    status: int, retryable: bool
) -> None:
    raw = json.dumps(
        {
            "type": "error",
            "done": True,
            "status_code": status,
            "error_code": "x",
            "title": "T",
            "message": "M",
            "context_id": "c",
        }
    )
    event = protocol.parse_event(raw)
    assert isinstance(event, protocol.Error)
    err = protocol.error_from_event(event)
    assert isinstance(err, APIStatusError)
    assert err.status_code == status and err.retryable is retryable
    assert "[x]" in err.message and "T: M" in err.message


def test_legacy_error_shape_keeps_its_message() -> None:
    event = protocol.parse_event(
        '{"type":"error","done":true,"status_code":400,"context_id":"c","error":"Invalid model: nope"}'
    )
    assert isinstance(event, protocol.Error)
    assert "Invalid model: nope" in protocol.error_from_event(event).message


def test_handshake_errors_name_the_cause() -> None:
    err = protocol.handshake_error(401)
    assert err.status_code == 401 and not err.retryable and "CARTESIA_API_KEY" in err.message
    assert protocol.handshake_error(429).retryable
    assert "HTTP 418" in protocol.handshake_error(418).message


def test_close_errors_are_retryable() -> None:
    err = protocol.close_error(1011, while_owed=True)
    assert err.retryable and "1011" in err.message and "owed" in err.message


@settings(max_examples=300, deadline=None)
@given(
    transcript=st.text(),
    voice=st.sampled_from([TTSDefaultVoiceId, 'a"b\\x00', "\x00"]),
    language=st.sampled_from([None, "en", "\x00"]),
    speed=st.sampled_from([None, 1.2, "fast"]),
)
def test_frames_encoded_once_per_context_are_byte_for_byte_the_same(
    transcript: str, voice: str, language: str | None, speed: float | str | None
) -> None:
    """A context's frames are encoded once and only the transcript per frame (issue 19's
    CPU): the bytes are those of generation_frame, flush_frame and end_frame."""
    options = protocol.ContextOptions(
        model="sonic-3", voice=voice, encoding="pcm_s16le", sample_rate=24000,
        language=language, max_buffer_delay_ms=0, speed=speed,
    )  # fmt: skip
    base = options.base("ctx-\x00" if voice == "\x00" else "ctx-1")
    frames = protocol.ContextFrames(base)
    assert frames.generation(transcript) == protocol.generation_frame(base, transcript)
    assert frames.flush == protocol.flush_frame(base)
    assert frames.end == protocol.end_frame(base)


def _decode(data: str, decoder: Any) -> object:
    """What decode_audio makes of ``data`` with the given SIMD decoder (None: without)."""
    saved = protocol._SIMD_BASE64
    protocol._SIMD_BASE64 = decoder
    try:
        return protocol.decode_audio(data)
    except (binascii.Error, ValueError) as exc:  # (non-ASCII: ValueError, as binascii says)
        return type(exc).__name__
    finally:
        protocol._SIMD_BASE64 = saved


B64_NOISE = st.sampled_from(["=", "==", "===", "!", " ", "\n", "-", "_", "A", "é", "\x00"])


@settings(max_examples=500, deadline=None)
@given(payload=st.binary(max_size=64), edits=st.lists(st.tuples(st.integers(0, 90), B64_NOISE)))
def test_the_simd_base64_decoder_changes_no_chunk(
    payload: bytes, edits: list[tuple[int, str]]
) -> None:
    """pybase64 takes strict base64 only; any chunk decodes to the same bytes (or fails the
    same way) as with the standard library alone."""
    data = base64.b64encode(payload).decode()
    for at, noise in edits:
        data = data[:at] + noise + data[at:]
    assert protocol._SIMD_BASE64 is not None, "pybase64 is a dependency"
    assert _decode(data, protocol._SIMD_BASE64) == _decode(data, None)
