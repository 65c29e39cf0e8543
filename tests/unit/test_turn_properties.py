"""TurnMachine under random interleavings of text, server events, drops, stalls and
cancels, against a fake server in every timing order: the turn always ends, no audio after
a cancel, no word lost, at most one chunk said twice per resume, and every context opened
is finished or cancelled."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from livekit.agents import APIConnectionError

from plugin_cartesia_ws.turn import State, TurnStateError

from .turn_fakes import FakeServer, Harness, chunk, machine

DROP = APIConnectionError("dropped")
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("text"), st.integers(1, 6)),
        st.tuples(st.just("step"), st.integers(1, 8)),
        st.tuples(st.just("drop"), st.just(0)),
        st.tuples(st.just("stall"), st.integers(0, 1)),
        st.tuples(st.just("end"), st.just(0)),
    ),
    max_size=40,
)
CANCEL_AT = st.one_of(st.none(), st.integers(0, 40))  # barge-in is one moment, if any


def _word(i: int) -> str:
    return f"w{i}" + (". " if i % 4 == 3 else " ")


def _indices(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"w(\d+)", text)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=OPS,
    cancel_at=CANCEL_AT,
    timings=st.sampled_from(["with_audio", "before_audio", "per_generation", "none"]),
    send_done=st.booleans(),
    receipts=st.booleans(),
)
def test_every_interleaving_ends_the_turn_with_no_word_lost(
    ops: list[tuple[str, int]],
    cancel_at: int | None,
    timings: str,
    send_done: bool,
    receipts: bool,
) -> None:
    turn = machine(receipts=receipts, timeout=1.0)
    h = Harness(turn, FakeServer(timings, send_done))  # type: ignore[arg-type]
    now, words, ended, cancelled = 0.0, 0, False, False
    if cancel_at is not None:
        ops = [*ops[:cancel_at], ("cancel", 0)]
    for kind, arg in ops:
        if turn.finished:
            break
        now += 0.01
        if kind == "text" and not ended:
            h.apply(turn.text("".join(_word(i) for i in range(words, words + arg)), now))
            words += arg
        elif kind == "end" and not ended:
            ended = True
            h.apply(turn.end_input(now))
        elif kind == "step":
            for _ in range(arg):
                if not h.step(now):
                    break
        elif kind == "drop" and turn.state in (State.OPENING, State.STREAMING, State.ENDING):
            h.apply(turn.socket_lost(DROP, now))
        elif kind == "stall":
            deadline = turn.next_deadline()
            if deadline is not None:
                now = max(now, deadline)
                h.apply(turn.tick(now, socket_heard_at=now if arg else 0.0))
        elif kind == "cancel":
            h.apply(turn.cancel())
            cancelled = True
            with pytest.raises(TurnStateError):  # no audio after a cancel, by construction
                turn.server(chunk(turn.context_id, "late "), now)
    if not turn.finished and not ended:
        h.apply(turn.end_input(now))
    for _ in range(10_000):
        if turn.finished:
            break
        now += 0.01
        if h.step(now):
            continue
        deadline = turn.next_deadline()
        assert deadline is not None, f"the turn hangs in state {turn.state.value}"
        now = max(now, deadline)
        h.apply(turn.tick(now, socket_heard_at=0.0))

    assert turn.finished
    assert not h.audio_after_end
    assert h.opened <= h.closed, "a context was left open at the server"
    transcript = _indices("".join(h.words))
    assert transcript == sorted(set(transcript)), "a word timing was repeated"
    if cancelled or h.failed:
        return
    heard = _indices(h.heard)
    assert sorted(set(heard)) == list(range(words)), "a word was lost"
    longest = max((len(t.split()) for c in h.server.contexts.values() for t in c.texts), default=0)
    top = -1
    for index in heard:
        assert index <= top + 1, "a word was skipped"
        top = max(top, index)
    repeats = len(heard) - len(set(heard))
    assert repeats <= longest * turn.resumes, "more than one chunk repeated per resume"
