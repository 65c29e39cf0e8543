"""The plugin's pure protocol layer: frames it builds, events it parses, errors it maps."""

from __future__ import annotations

import json

import pytest
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
