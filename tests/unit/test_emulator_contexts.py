"""The emulator's pure context state machine against section 8 of docs/cartesia-protocol.md."""

from __future__ import annotations

import json

import pytest

from plugin_cartesia_ws.emulator.contexts import (
    ConcurrencyGate,
    ContextRules,
    ContextTable,
    Finish,
    FlushDone,
    Send,
    Speak,
    StopNow,
    Wake,
)
from plugin_cartesia_ws.emulator.messages import Catalogue
from plugin_cartesia_ws.models import TTSDefaultVoiceId

VOICE = {"mode": "id", "id": TTSDefaultVoiceId}


def gen(ctx: str = "c1", transcript: str = "Hello. ", **extra: object) -> str:
    msg = {
        "context_id": ctx,
        "model_id": "sonic-3",
        "transcript": transcript,
        "voice": VOICE,
        "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000},
        "language": "en",
        "continue": True,
        "max_buffer_delay_ms": 0,
    }
    msg.update(extra)
    return json.dumps(msg)


def cancel(ctx: str = "c1") -> str:
    return json.dumps({"context_id": ctx, "cancel": True})


def drain(table: ContextTable, ctx: str, now: float = 0.0) -> list:
    items = []
    while (item := table.next_work(ctx)) is not None:
        items.append(item)
        table.work_finished(ctx, now)
    return items


def errors(outputs: list) -> list[dict]:
    return [o.event for o in outputs if isinstance(o, Send) and o.event["type"] == "error"]


def table(version: str = "2026-03-01", **rules: object) -> ContextTable:
    return ContextTable(version=version, rules=ContextRules(**rules))  # type: ignore[arg-type]


def test_delay_zero_generates_each_input_at_once_in_order() -> None:
    t = table()
    assert t.receive(gen(transcript="Hello, "), 0.0) == [Wake("c1")]
    t.receive(gen(transcript="world. "), 0.1)
    t.receive(gen(transcript="", **{"continue": False}), 0.2)
    assert drain(t, "c1") == [Speak("Hello, ", 1), Speak("world. ", 1), Finish()]
    assert t.contexts["c1"].transcript == "Hello, world. "


def test_flush_ids_start_at_one_and_flush_done_follows_the_audio() -> None:
    t = table()
    t.receive(gen(transcript="One. "), 0)
    t.receive(gen(transcript="", flush=True), 0)
    t.receive(gen(transcript="Two. "), 0)
    t.receive(gen(transcript="", flush=True), 0)
    t.receive(gen(transcript="", **{"continue": False}), 0)
    assert drain(t, "c1") == [
        Speak("One. ", 1),
        FlushDone(1),
        Speak("Two. ", 2),
        FlushDone(2),
        Finish(),
    ]


def test_auto_flush_done_at_input_boundaries_when_delay_is_zero() -> None:
    t = table(auto_flush_done=True)
    t.receive(gen(transcript="A. "), 0)
    t.receive(gen(transcript="B. "), 0)
    assert drain(t, "c1") == [Speak("A. ", 1), FlushDone(1), Speak("B. ", 2), FlushDone(2)]


def test_managed_buffering_holds_text_until_a_sentence_end() -> None:
    t = table()
    t.receive(gen(transcript="Hello ", max_buffer_delay_ms=3000), 0.0)
    t.receive(gen(transcript="there", max_buffer_delay_ms=3000), 0.1)
    assert t.next_work("c1") is None
    t.receive(gen(transcript=". How ", max_buffer_delay_ms=3000), 0.2)
    assert drain(t, "c1") == [Speak("Hello there. ", 1)]
    assert t.contexts["c1"].buffer == "How "


def test_managed_buffering_releases_on_delay_expiry() -> None:
    t = table()
    t.receive(gen(transcript="No sentence end yet", max_buffer_delay_ms=500), 10.0)
    assert t.next_deadline() == pytest.approx(10.5)
    assert t.poll(10.4) == []
    assert t.poll(10.5) == [Wake("c1")]
    assert drain(t, "c1") == [Speak("No sentence end yet", 1)]
    assert t.next_deadline() is None


def test_managed_buffering_releases_on_flush_and_on_end_of_input() -> None:
    t = table()
    t.receive(gen(transcript="Part one", max_buffer_delay_ms=3000), 0)
    t.receive(gen(transcript="", flush=True, max_buffer_delay_ms=3000), 0)
    t.receive(gen(transcript="part two", max_buffer_delay_ms=3000), 0)
    t.receive(gen(transcript="", max_buffer_delay_ms=3000, **{"continue": False}), 0)
    assert drain(t, "c1") == [Speak("Part one", 1), FlushDone(1), Speak("part two", 2), Finish()]


def test_default_buffer_delay_depends_on_the_api_version() -> None:
    new, old = table("2026-03-01"), table("2025-04-16")
    for t in (new, old):
        msg = json.loads(gen(transcript="Wait"))
        del msg["max_buffer_delay_ms"]
        t.receive(json.dumps(msg), 0)
    assert new.next_work("c1") is None  # held: 3000 ms default
    assert old.next_work("c1") == Speak("Wait", 1)  # 0 ms default


def test_cancel_drops_queued_inputs_and_lets_the_inflight_one_finish() -> None:
    t = table()
    t.receive(gen(transcript="First. "), 0)
    t.receive(gen(transcript="Second. "), 0)
    assert t.next_work("c1") == Speak("First. ", 1)  # now in flight
    assert t.receive(cancel(), 0) == []
    assert not t.should_stop("c1")  # documented: the in-flight input finishes
    t.work_finished("c1", 0)
    assert t.next_work("c1") is None  # "Second." was dropped
    assert t.receive(gen(transcript="Late. "), 0) == []  # input after cancel is ignored


def test_cancel_can_stop_the_inflight_generation_at_once() -> None:
    t = table(cancel_inflight="stop")
    t.receive(gen(transcript="First. "), 0)
    t.next_work("c1")
    assert t.receive(cancel(), 0) == [StopNow("c1")]
    assert t.should_stop("c1")


def test_cancel_optionally_sends_done() -> None:
    t = table(done_after_cancel=True)
    t.receive(gen(transcript="First. "), 0)
    assert t.receive(cancel(), 0) == [Wake("c1")]
    assert drain(t, "c1") == [Finish()]


def test_cancel_of_unknown_or_finished_context_is_ignored() -> None:
    t = table()
    assert t.receive(cancel("nope"), 0) == []
    t.receive(gen(transcript="Hi. ", **{"continue": False}), 0)
    drain(t, "c1")
    assert t.receive(cancel(), 0) == []


def test_two_contexts_interleave_on_one_socket() -> None:
    t = table()
    t.receive(gen("a", "A1. "), 0)
    t.receive(gen("b", "B1. "), 0)
    t.receive(gen("a", "A2. "), 0)
    t.receive(cancel("b"), 0)
    assert drain(t, "a") == [Speak("A1. ", 1), Speak("A2. ", 1)]
    assert drain(t, "b") == []


def test_input_after_end_of_context_is_an_error_and_expiry_forgets_the_context() -> None:
    t = table()
    t.receive(gen(transcript="Bye. ", **{"continue": False}), 0)
    late = errors(t.receive(gen(transcript="More. "), 0.1))
    assert late and late[0]["status_code"] == 400 and late[0]["context_id"] == "c1"
    drain(t, "c1", now=1.0)
    assert t.next_deadline() == pytest.approx(2.0)
    t.poll(2.0)
    assert "c1" not in t.contexts
    assert t.receive(gen(transcript="New turn. "), 2.1) == [Wake("c1")]


def test_late_input_can_be_ignored() -> None:
    t = table(late_input="ignore")
    t.receive(gen(transcript="Bye. ", **{"continue": False}), 0)
    assert t.receive(gen(transcript="More. "), 0.1) == []


def test_concurrency_limit_is_per_key_across_sockets_and_freed_by_done_and_cancel() -> None:
    gate = ConcurrencyGate(limit=2)
    s1 = ContextTable(version="2026-03-01", gate=gate, socket_id=1)
    s2 = ContextTable(version="2026-03-01", gate=gate, socket_id=2)
    s1.receive(gen("a"), 0)
    s2.receive(gen("b"), 0)
    refused = errors(s2.receive(gen("c"), 0))
    assert refused[0]["status_code"] == 429
    assert refused[0]["error_code"] == "concurrency_limited"
    assert refused[0]["context_id"] == "c"
    s1.receive(cancel("a"), 0)
    assert s2.receive(gen("c"), 0) == [Wake("c")]
    s2.receive(gen("b", "", **{"continue": False}), 0)
    drain(s2, "b")
    assert gate.active == 1
    s2.close()
    assert gate.active == 0


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"model_id": "sonic-9"}, 400, "model_not_found"),
        ({"model_id": "sonic-english"}, 410, "model_sunsetted"),
        (
            {"output_format": {"container": "mp3", "encoding": "pcm_s16le", "sample_rate": 24000}},
            400,
            "invalid_request",
        ),
        (
            {"output_format": {"container": "raw", "encoding": "pcm_s24le", "sample_rate": 24000}},
            400,
            "invalid_request",
        ),
        (
            {"output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 12345}},
            400,
            "invalid_request",
        ),
        ({"max_buffer_delay_ms": 5001}, 400, "invalid_request"),
        ({"max_buffer_delay_ms": -1}, 400, "invalid_request"),
        ({"generation_config": {"speed": 2.0}}, 400, "invalid_request"),
        ({"generation_config": {"volume": 0.1}}, 400, "invalid_request"),
        ({"language": "xx"}, 400, "invalid_request"),
        ({"voice": {"mode": "embedding", "embedding": [0.1]}}, 400, "voice_embedding_unsupported"),
        ({"speed": "warp"}, 400, "invalid_request"),
        ({"continue": "yes"}, 400, "invalid_request"),
    ],
)
def test_invalid_fields_give_structured_errors_with_the_context_id(
    change: dict, status: int, code: str
) -> None:
    t = table()
    msg = json.loads(gen())
    msg.update(change)
    [err] = errors(t.receive(json.dumps(msg), 0))
    assert (err["status_code"], err["error_code"], err["context_id"]) == (status, code, "c1")
    assert err["done"] is True and err["title"] and err["message"] and err["request_id"]


@pytest.mark.parametrize("field", ["model_id", "transcript", "voice", "output_format"])
def test_missing_required_field(field: str) -> None:
    msg = json.loads(gen())
    del msg[field]
    [err] = errors(table().receive(json.dumps(msg), 0))
    assert err["status_code"] == 400 and field in err["message"]


def test_unknown_voice_is_404_when_the_catalogue_is_strict() -> None:
    t = ContextTable(version="2026-03-01", catalogue=Catalogue(voices=frozenset({"known"})))
    [err] = errors(t.receive(gen(), 0))
    assert (err["status_code"], err["error_code"]) == (404, "voice_not_found")
    assert t.receive(gen(voice={"mode": "id", "id": "known"}), 0) == [Wake("c1")]


def test_legacy_error_shape_before_2026_03_01() -> None:
    msg = json.loads(gen())
    msg["model_id"] = "nope"
    [err] = errors(table("2025-04-16").receive(json.dumps(msg), 0))
    assert (
        err["error"] == "Invalid model: The model is not valid, make sure it is a valid model ID."
    )
    assert "error_code" not in err and err["context_id"] == "c1" and err["done"] is True


def test_malformed_frames_are_400_without_context() -> None:
    t = table()
    for raw in ("not json", "[1, 2]", b"\x00binary", json.dumps({"cancel": True})):
        [err] = errors(t.receive(raw, 0))
        assert err["status_code"] == 400


def test_accepts_null_language_bare_voice_string_and_unknown_fields() -> None:
    t = table()
    assert t.receive(gen(language=None, voice=TTSDefaultVoiceId, extra_field=1), 0) == [Wake("c1")]


def test_strict_mode_rejects_changed_locked_fields() -> None:
    t = table(strict_fields=True)
    t.receive(gen(), 0)
    [err] = errors(t.receive(gen(language="fr"), 0))
    assert err["error_code"] == "context_fields_changed"
    assert "c1" not in t.contexts


def test_an_error_ends_its_context() -> None:
    t = table()
    t.receive(gen(), 0)
    bad = json.loads(gen())
    bad["model_id"] = "nope"
    t.receive(json.dumps(bad), 0)
    assert "c1" not in t.contexts and t.should_stop("c1")


@pytest.mark.parametrize(
    ("change", "page"),
    [
        ({"model_id": "sonic-9"}, "/build-with-cartesia/tts-models/latest"),
        ({"model_id": "sonic-english"}, "/build-with-cartesia/tts-models/api-changes"),
        ({"max_buffer_delay_ms": 5001}, "/api-reference/tts/websocket"),
    ],
)
def test_error_doc_url_links_the_page_about_the_error(change: dict, page: str) -> None:
    msg = json.loads(gen())
    msg.update(change)
    [err] = errors(table().receive(json.dumps(msg), 0))
    assert err["doc_url"] == "https://docs.cartesia.ai" + page


def test_a_strict_catalogue_refuses_a_newer_snapshot_the_default_accepts() -> None:
    msg = json.loads(gen())
    msg["model_id"] = "sonic-3.6-2026-12-01"
    assert table().receive(json.dumps(msg), 0) == [Wake("c1")]
    strict = ContextTable(version="2026-03-01", catalogue=Catalogue.strict())
    [err] = errors(strict.receive(json.dumps(msg), 0))
    assert (err["status_code"], err["error_code"]) == (400, "model_not_found")
