"""TurnMachine, one failure order at a time (issue 10), with no socket and no clock."""

from __future__ import annotations

import base64

import pytest

from plugin_cartesia_ws import protocol
from plugin_cartesia_ws.turn import State, TurnMachine, TurnStateError
from plugin_cartesia_ws.turn_outputs import Audio, Cancel, Failed, Linger, Release, Words

from .turn_fakes import SAMPLE_RATE, FakeServer, Harness, chunk, machine, timestamps

TWO = "Hello there my friend. How are you doing today? "
DROP = "Cartesia WebSocket closed while audio was owed (close code 1006)"


def _drain(h: Harness, now: float, limit: int | None = None) -> None:
    steps = 0
    while (limit is None or steps < limit) and h.step(now):
        steps += 1


def test_a_drop_during_an_llm_pause_arms_no_watchdog_on_the_resumed_context() -> None:
    turn = machine()
    h = Harness(turn, FakeServer())
    h.apply(turn.text("Hello there my friend. ", 0.0))
    _drain(h, 0.1)  # all of it heard, with its receipt
    h.apply(turn.socket_lost(DROP, 5.0))  # the LLM paused far longer than the timeout
    assert h.reconnects == [False] and turn.state is State.RESUMING
    h.step(5.1)  # connected
    assert turn.next_deadline() is None  # nothing is owed: no stall can be declared
    h.apply(turn.text("And the rest. ", 9.0))
    h.apply(turn.end_input(9.0))
    _drain(h, 9.1)
    assert h.finished and h.heard == "Hello there my friend. And the rest. "
    assert h.opened <= h.closed


def test_an_error_in_the_chunker_ends_the_turn_non_retryably_and_cancels() -> None:
    class Exploding:
        def tokenize(self, text: str) -> list[str]:
            if "boom" in text:
                raise ValueError("tokenizer bug")
            return text.split(". ")

    from plugin_cartesia_ws.chunking import TokenizerChunker

    turn = machine(chunker=TokenizerChunker(Exploding()))
    h = Harness(turn, FakeServer())
    h.apply(turn.text("First one. Second", 0.0))
    assert turn.state is State.STREAMING
    outputs = h.apply(turn.text(" boom", 0.1))
    assert isinstance(outputs[0], Cancel) and outputs[0].context_id == "ctx"
    assert h.failed is not None and h.failed.failure.kind == "input"  # not retryable
    assert "ValueError" in h.failed.failure.message and turn.state is State.FAILED


def test_a_stall_of_one_context_on_a_live_socket_keeps_the_socket() -> None:
    turn = machine(timeout=1.0)
    h = Harness(turn, FakeServer())
    h.apply(turn.text(TWO, 0.0))
    _drain(h, 0.1, limit=2)  # some audio, then this context goes quiet
    deadline = turn.next_deadline()
    assert deadline is not None
    h.apply(turn.tick(deadline, socket_heard_at=deadline - 0.01))  # other contexts talk
    assert h.reconnects == [False]  # resume on the same, healthy socket
    assert "ctx" in h.server.cancelled


def test_a_stall_on_a_silent_socket_replaces_it() -> None:
    turn = machine(timeout=1.0)
    h = Harness(turn, FakeServer())
    h.apply(turn.text(TWO, 0.0))
    _drain(h, 0.1, limit=2)
    deadline = turn.next_deadline()
    assert deadline is not None
    h.apply(turn.tick(deadline, socket_heard_at=0.1))
    assert h.reconnects == [True]


def test_a_missing_done_ends_the_turn_at_the_last_receipt_not_the_timeout() -> None:
    turn = machine(timeout=60.0)
    h = Harness(turn, FakeServer(send_done=False))
    h.apply(turn.text(TWO, 0.0))
    outputs = h.apply(turn.end_input(0.0))
    for _ in range(100):
        if h.finished:
            break
        outputs = h.apply(turn.server(h.server.next_event("ctx"), 0.5))
    assert h.finished and h.heard == TWO and not h.reconnects
    assert Linger("ctx") in outputs  # the done may still come: the socket waits for it
    assert h.opened <= h.closed


def test_timings_before_their_audio_are_held_until_it_is_pushed() -> None:
    turn = machine(receipts=False)
    h = Harness(turn, FakeServer(timings="before_audio"))
    h.apply(turn.text("Hello there my friend. ", 0.0))
    h.step(0.1)  # the generation's timings, no audio yet
    assert h.words == []
    h.step(0.1)  # "Hello "
    assert h.words == ["Hello "]
    h.apply(turn.socket_lost(DROP, 0.2))
    h.step(0.3)  # connected: the unheard rest goes out again
    h.apply(turn.end_input(0.3))
    _drain(h, 0.4)
    assert h.finished and "".join(h.words) == "Hello there my friend. "  # each word once


def test_without_word_timings_a_receipt_locates_the_cut() -> None:
    turn = machine()
    h = Harness(turn, FakeServer(timings="none"))
    h.apply(turn.text(TWO, 0.0))
    _drain(h, 0.1, limit=6)  # sentence 1 and its flush_done, then one word of sentence 2
    assert h.heard == "Hello there my friend. How "
    h.apply(turn.socket_lost(DROP, 9.0))
    h.apply(turn.end_input(9.0))
    _drain(h, 9.1)
    assert h.finished and h.heard == "Hello there my friend. How How are you doing today? "
    resent = h.server.contexts["ctx-r1"]
    assert resent.seconds * SAMPLE_RATE == len("How are you doing today? ")  # only that chunk again


def _resuming() -> tuple[TurnMachine, Harness]:
    """A turn whose socket dropped after some audio: it asked for a socket."""
    turn = machine()
    h = Harness(turn, FakeServer())
    h.apply(turn.text(TWO, 0.0))
    _drain(h, 0.1, limit=2)
    h.apply(turn.socket_lost(DROP, 0.2))
    return turn, h


def test_barge_in_while_resuming_cancels_and_later_input_is_illegal() -> None:
    turn, h = _resuming()
    outputs = h.apply(turn.cancel())
    assert outputs == [Release("ctx-r1")] and turn.state is State.CANCELLED
    with pytest.raises(TurnStateError, match="cancelled"):
        turn.connected(0.3)


def test_barge_in_after_the_resumed_context_opened_cancels_it() -> None:
    turn, h = _resuming()
    h.step(0.3)  # connected: the rest went out on ctx-r1
    assert h.apply(turn.cancel()) == [Cancel("ctx-r1")]
    assert h.opened <= h.closed


def test_a_partial_sample_is_carried_to_the_next_chunk() -> None:
    turn = machine()
    h = Harness(turn, FakeServer())
    h.apply(turn.text(TWO, 0.0))
    pcm = "Hi".encode("utf-16-le")

    def raw(data: bytes) -> protocol.Chunk:
        event = chunk("ctx", "")
        return event.model_copy(update={"data": base64.b64encode(data).decode()})

    first = turn.server(raw(pcm[:3]), 0.1)
    second = turn.server(raw(pcm[3:]), 0.1)
    audio = b"".join(o.pcm for o in first + second if isinstance(o, Audio))
    assert audio == pcm


def test_illegal_inputs_name_the_state() -> None:
    turn = machine()
    turn.end_input(0.0)
    assert turn.state is State.DONE  # nothing to say
    with pytest.raises(TurnStateError, match="text is illegal in state done"):
        turn.text("more", 0.1)
    streaming = machine()
    streaming.text(TWO, 0.0)
    with pytest.raises(TurnStateError, match="connected is illegal in state streaming"):
        streaming.connected(0.1)


def test_resumes_are_bounded() -> None:
    turn = machine()
    h = Harness(turn, FakeServer())
    h.apply(turn.text(TWO, 0.0))
    for n in range(3):
        h.apply(turn.socket_lost(DROP, float(n)))
        if h.failed:
            break
        h.step(float(n))
    assert isinstance(h.failed, Failed) and h.failed.failure.message == DROP and turn.resumes == 2
    assert h.opened <= h.closed


def test_words_are_timed_on_the_turns_timeline_across_a_resume() -> None:
    turn = machine(receipts=False)
    h = Harness(turn, FakeServer())
    h.apply(turn.text("Hello there my friend. ", 0.0))
    _drain(h, 0.1, limit=4)  # "Hello " and "there " with their timings
    h.apply(turn.socket_lost(DROP, 0.2))
    h.step(0.3)  # connected: "my friend. " again, on ctx-r1
    assert turn.server(timestamps("ctx-r1", ["my"], [0.0], [0.03]), 0.4) == []  # held
    released = [o for o in turn.server(chunk("ctx-r1", "my "), 0.4) if isinstance(o, Words)]
    assert released[0].words[0].text == "my "
    assert released[0].words[0].start == pytest.approx(len("Hello there ") / SAMPLE_RATE)
