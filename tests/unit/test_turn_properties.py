"""The model-based test of TurnMachine: random interleavings of text, LiveKit flushes, server
events, drops, failed sends, LLM pauses, stalls and cancels, against a fake server in every
timing order and every receipt behaviour (answers our flushes; also numbers its own at each
input, as the real service does; never answers). Invariants: the turn always ends, soon
after ``done`` or a loss; no audio after a cancel; every word heard, once, unless a barge-in
cut it (one chunk may repeat per resume); the transcript never claims a word the audio did
not carry; every context opened is finished, cancelled or left lingering for its done."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from plugin_cartesia_ws import protocol
from plugin_cartesia_ws.turn import State, TurnStateError

from .turn_fakes import PACED, FakeServer, Harness, chunk, machine

DROP = "dropped"
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("text"), st.integers(1, 12)),
        st.tuples(st.just("step"), st.integers(1, 8)),
        st.tuples(st.just("drop"), st.just(0)),
        st.tuples(st.just("stall"), st.integers(0, 1)),
        st.tuples(st.just("end"), st.just(0)),
        st.tuples(st.just("flush"), st.just(0)),
        st.tuples(st.just("send_failed"), st.just(0)),
        st.tuples(st.just("pause"), st.integers(1, 5)),
    ),
    max_size=40,
)
CANCEL_AT = st.one_of(st.none(), st.integers(0, 40))  # barge-in is one moment, if any


def _word(i: int) -> str:
    return f"w{i}" + (". " if i % 4 == 3 else " ")


def _indices(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"w(\d+)", text)]


_REAL = {
    "cancel_at": None,
    "timings": "with_audio",
    "send_done": True,
    "receipts": True,
    "paced": False,
}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# the real service's orders, always tried: its own receipts, a done that never comes
@example(ops=[("text", 12), ("end", 0)], server_receipts="auto", **_REAL)
@example(ops=[("text", 12), ("step", 8), ("drop", 0), ("end", 0)], server_receipts="auto", **_REAL)
@example(
    ops=[("text", 12), ("step", 8), ("pause", 5), ("end", 0)], server_receipts="never", **_REAL
)
@example(ops=[("text", 12), ("end", 0)], server_receipts="ours", **{**_REAL, "send_done": False})
@example(
    ops=[("text", 12), ("step", 3), ("end", 0)], server_receipts="auto", **{**_REAL, "paced": True}
)
# found by this test: a context quiet for the expiry guard, its audio still owed (timings
# came first, or one chunk of several), was left to linger and its audio never heard
@example(
    ops=[("text", 9), ("step", 1), ("pause", 1)],
    server_receipts="ours",
    **{**_REAL, "timings": "before_audio", "send_done": False, "receipts": False},
)
@example(
    ops=[("text", 9), ("step", 1), ("pause", 1)],
    server_receipts="ours",
    **{**_REAL, "send_done": False, "receipts": False},
)
# found by a longer run of this test: resumes spent, then a stall while the pacer drains
@example(
    ops=[("text", 9), ("drop", 0), ("step", 1), ("drop", 0), ("step", 1), ("end", 0), ("stall", 0)],
    server_receipts="ours",
    **{**_REAL, "send_done": False, "paced": True},
)
@given(
    ops=OPS,
    cancel_at=CANCEL_AT,
    timings=st.sampled_from(["with_audio", "before_audio", "per_generation", "none"]),
    send_done=st.booleans(),
    receipts=st.booleans(),
    server_receipts=st.sampled_from(["ours", "auto", "never"]),
    paced=st.booleans(),
)
def test_every_interleaving_ends_the_turn_with_no_word_lost(
    ops: list[tuple[str, int]],
    cancel_at: int | None,
    timings: str,
    send_done: bool,
    receipts: bool,
    server_receipts: str,
    paced: bool,
) -> None:
    turn = machine(receipts=receipts, timeout=1.0, pacing=PACED if paced else None)
    h = Harness(turn, FakeServer(timings, send_done, server_receipts))  # type: ignore[arg-type]
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
        elif kind == "flush" and not ended:
            h.apply(turn.flush(now))
        elif kind == "drop" and turn.state in (State.OPENING, State.STREAMING, State.ENDING):
            h.apply(turn.socket_lost(DROP, now))
        elif kind == "send_failed" and turn.state in (State.STREAMING, State.ENDING):
            h.apply(turn.send_failed(DROP, now))
            assert turn.finished or h.reconnects[-1], "a socket whose send failed was reused"
        elif kind == "pause":  # the LLM thinks; the server is quiet; only due deadlines fire
            until = now + arg
            while (deadline := turn.next_deadline()) is not None and deadline <= until:
                now = max(now, deadline)
                h.apply(turn.tick(now, socket_heard_at=now))
                if turn.finished or turn.state is State.RESUMING:
                    break
            now = max(now, until)
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
    quiet_since = now
    for _ in range(10_000):
        if turn.finished:
            break
        now += 0.01
        done_due = _done_is_next(h)
        if h.step(now):
            quiet_since = now
            assert not done_due or turn.finished, "a done did not end an ended turn"
            continue
        deadline = turn.next_deadline()
        assert deadline is not None, f"the turn hangs in state {turn.state.value}"
        now = max(now, deadline)
        h.apply(turn.tick(now, socket_heard_at=0.0))
        # the end comes within a stall bound of silence per allowed resume, never later
        bound = (turn.config.max_resumes + 1) * (turn.config.stall_after + 0.1)
        assert now - quiet_since <= bound, "the turn outlived its bound after the last event"

    assert turn.finished
    assert not h.audio_after_end
    assert h.opened <= h.closed, "a context was left open at the server"
    transcript = _indices("".join(h.words))
    assert transcript == sorted(set(transcript)), "a word timing was repeated"
    assert set(transcript) <= set(_indices(h.heard)), "the transcript claims an unheard word"
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


def _done_is_next(h: Harness) -> bool:
    """The current context's next event is its done, and the input has ended."""
    ctx = h.server.contexts.get(h.turn.context_id)
    return (
        h.turn.state is State.ENDING
        and ctx is not None
        and h.turn.context_id not in h.server.cancelled
        and bool(ctx.events)
        and isinstance(ctx.events[0], protocol.Done)
    )
