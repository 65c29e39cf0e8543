"""The emulator's context lifecycle: its transition table, the orders Cartesia sends
(issue 19: unsolicited or missing flush_done, a late done, faults per context), context
expiry (issue 20) and the characters billed."""

from __future__ import annotations

import json
import random

import pytest

from plugin_cartesia_ws.emulator.contexts import (
    ConcurrencyGate,
    ContextRules,
    ContextTable,
    Finish,
    FlushDone,
    Speak,
    Wake,
)
from plugin_cartesia_ws.emulator.faults import Fault, FaultBook, rule_changes
from plugin_cartesia_ws.emulator.lifecycle import (
    TRANSITIONS,
    Event,
    IllegalTransition,
    Phase,
    step,
)

from .test_emulator_contexts import cancel, drain, errors, gen, table


def test_every_event_a_phase_cannot_take_raises_naming_both() -> None:
    taken = set(TRANSITIONS)
    missing = [(p, e) for p in Phase for e in Event if (p, e) not in taken]
    assert (Phase.OPEN, Event.FINISHED) in missing
    for phase, event in missing:
        with pytest.raises(IllegalTransition, match=f"{event.value}.*{phase.value}"):
            step(phase, event)


def test_unsolicited_flush_done_ids_run_ahead_of_the_clients_own_flush() -> None:
    t = table(auto_flush_done=True)
    t.receive(gen(transcript="A. "), 0)
    t.receive(gen(transcript="", flush=True), 0)  # the client's first flush
    assert drain(t, "c1") == [Speak("A. ", 1), FlushDone(1), FlushDone(2)]


@pytest.mark.parametrize(
    ("version", "rules"), [("2026-03-01", {"flush_done": False}), ("2024-06-10", {})]
)
def test_no_flush_done_at_all_as_before_2024_11_13(version: str, rules: dict) -> None:
    t = table(version, auto_flush_done=True, **rules)
    t.receive(gen(transcript="A. "), 0)
    t.receive(gen(transcript="B", flush=True), 0)
    t.receive(gen(transcript="", **{"continue": False}), 0)
    assert drain(t, "c1") == [Speak("A. ", 1), Speak("B", 1), Finish()]


def test_rules_overridden_for_one_context_leave_the_others_alone() -> None:
    t = table()
    t.override_rules("c1", auto_flush_done=True)
    t.receive(gen("c1", "A. "), 0)
    t.receive(gen("c2", "A. "), 0)
    assert drain(t, "c1") == [Speak("A. ", 1), FlushDone(1)]
    assert drain(t, "c2") == [Speak("A. ", 1)]
    assert t.rules_of("c2") == t.rules and t.rules_of("c1").auto_flush_done


def test_the_done_delay_is_drawn_within_its_bounds() -> None:
    rng = random.Random(1)
    rules = ContextRules(done_delay_s=(0.0, 1.0))
    delays = [rules.done_delay(rng) for _ in range(50)]
    assert all(0.0 <= d <= 1.0 for d in delays) and len(set(delays)) > 1
    assert ContextRules(done_delay_s=(0.3, 0.3)).done_delay(rng) == 0.3
    assert ContextRules().done_delay(rng) == 0.0
    with pytest.raises(ValueError, match="done_delay_s"):
        ContextRules(done_delay_s=(1.0, 0.5))


def spoken(t: ContextTable, ctx: str, text: str, at: float) -> None:
    """Input whose audio has been streamed by ``at``."""
    t.receive(gen(ctx, text), at)
    drain(t, ctx, now=at)


def test_expiry_off_takes_input_however_late() -> None:
    t = table()
    spoken(t, "c1", "A. ", 1.0)
    assert t.next_deadline() is None
    assert t.receive(gen(transcript="B. "), 60.0) == [Wake("c1")]


def test_expiry_error_answers_input_after_a_second_without_audio() -> None:
    t = table(expiry="error")
    spoken(t, "c1", "A. ", 1.0)
    assert t.next_deadline() == pytest.approx(2.0)
    t.poll(1.9)
    assert t.phase_of("c1") is Phase.OPEN
    t.poll(2.0)
    assert t.phase_of("c1") is Phase.EXPIRED
    for late in (gen(transcript="B. "), gen(transcript="", **{"continue": False})):
        [err] = errors(t.receive(late, 2.1))
        assert (err["status_code"], err["error_code"], err["context_id"]) == (
            400,
            "context_expired",
            "c1",
        )
    assert t.next_work("c1") is None and t.phase_of("c1") is Phase.EXPIRED
    assert t.receive(cancel(), 2.2) == []
    assert t.billed_chars["c1"] == 3  # the refused text is not billed


def test_expiry_ignore_drops_input_silently_even_before_the_timer_ran() -> None:
    t = table(expiry="ignore")
    spoken(t, "c1", "A. ", 1.0)
    assert t.receive(gen(transcript="B. "), 2.5) == []  # no poll yet: the clock decides
    assert t.phase_of("c1") is Phase.EXPIRED and t.next_work("c1") is None


def test_a_context_with_work_pending_or_input_in_time_does_not_expire() -> None:
    t = table(expiry="error")
    spoken(t, "c1", "A. ", 1.0)
    assert t.receive(gen(transcript="B. "), 1.9) == [Wake("c1")]  # in time
    assert t.next_deadline() is None  # "B." is queued: no expiry while work is pending
    t.poll(5.0)
    assert t.phase_of("c1") is Phase.OPEN
    drain(t, "c1", now=6.0)  # its audio streamed until 6.0: the clock starts again
    assert t.next_deadline() == pytest.approx(7.0)
    buffered = table(expiry="error")
    buffered.receive(gen(transcript="Held", max_buffer_delay_ms=3000), 0)
    assert buffered.next_deadline() == pytest.approx(3.0)  # only the buffer's own deadline


def test_an_expired_context_frees_its_concurrency_slot() -> None:
    gate = ConcurrencyGate(limit=1)
    t = ContextTable(version="2026-03-01", gate=gate, rules=ContextRules(expiry="ignore"))
    spoken(t, "a", "A. ", 0.0)
    t.poll(1.0)
    assert gate.active == 0 and t.receive(gen("b"), 1.0) == [Wake("b")]


def test_billed_characters_count_what_was_accepted_including_cancelled_text() -> None:
    t = table()
    t.receive(gen(transcript="Hello, "), 0)
    t.receive(gen(transcript="world. "), 0)
    t.receive(cancel(), 0)
    t.receive(gen(transcript="ignored after the cancel"), 0)
    bad = json.loads(gen("c2"))
    bad["model_id"] = "nope"
    t.receive(json.dumps(bad), 0)
    assert dict(t.billed_chars) == {"c1": len("Hello, world. ")}


def test_fault_rule_changes_and_skip() -> None:
    assert rule_changes(
        [
            Fault("auto_flush_done"),
            Fault("no_flush_done"),
            Fault("late_done", seconds=0.3),
            Fault("expire", mode="ignore"),
        ]
    ) == {
        "auto_flush_done": True,
        "flush_done": False,
        "done_delay_s": (0.3, 0.3),
        "expiry": "ignore",
        "expiry_s": 1.0,
    }
    with pytest.raises(ValueError, match="mode"):
        Fault("expire", mode="explode")
    book = FaultBook()
    book.add(Fault("refuse", skip=1, times=2))
    assert [bool(book.take_for_socket(None)) for _ in range(4)] == [False, True, True, False]
