"""Issue 19: the orders of events the real Cartesia sends that the turn engine once got
wrong, replayed on the pure machine against the fake server (each test names its order)."""

from __future__ import annotations

from plugin_cartesia_ws.receipts import Trust
from plugin_cartesia_ws.turn import State
from plugin_cartesia_ws.turn_outputs import Linger, Send, Words

from .turn_fakes import FakeServer, Harness, machine

THREE = "Hello there my friend. How are you doing today? I hope that all is well. "
DROP = "Cartesia WebSocket closed while audio was owed (close code 1006)"


def _drain(h: Harness, now: float) -> None:
    while h.step(now):
        pass


def _sentences(h: Harness, text: str, now: float) -> None:
    for sentence in text.split(". "):
        h.apply(h.turn.text(sentence + ". " if not sentence.endswith(" ") else sentence, now))


def test_order1_unsolicited_flush_done_never_ends_the_turn_before_its_audio() -> None:
    """The server numbers flushes of its own: receipt 2 answers our flush 1, not chunk 2."""
    turn = machine(timeout=60.0)
    h = Harness(turn, FakeServer(receipts="auto"))
    h.apply(turn.text(THREE, 0.0))  # three sentences: three chunks, three flushes
    h.apply(turn.end_input(0.0))
    _drain(h, 0.1)
    assert turn.receipts is Trust.DISTRUSTED  # out of step: receipts prove nothing here
    assert h.finished and h.heard == THREE  # the end came with done, after every sample
    assert turn.done_received


def test_order1_a_resume_after_unsolicited_receipts_starts_at_the_first_unheard_word() -> None:
    turn = machine(timeout=60.0)
    h = Harness(turn, FakeServer(timings="none", receipts="auto"))
    h.apply(turn.text(THREE, 0.0))
    for _ in range(5):  # sentence 1, its receipts, a word of sentence 2
        h.step(0.1)
    heard_before = h.heard
    h.apply(turn.socket_lost(DROP, 0.2))
    h.apply(turn.end_input(0.2))
    _drain(h, 0.3)
    assert h.finished
    resent = h.server.contexts["ctx-r1"].texts[0]
    assert heard_before + THREE[len(heard_before) :] in h.heard or THREE.endswith(resent)
    assert THREE.startswith(heard_before) and THREE[len(heard_before) :].strip() in resent


def test_order5_end_of_input_after_the_last_receipt_ends_the_turn_at_once() -> None:
    turn = machine(timeout=10.0)
    h = Harness(turn, FakeServer(send_done=False))
    h.apply(turn.text(THREE, 0.0))
    _drain(h, 0.1)  # every sample and every receipt is in; the LLM has not ended yet
    outputs = h.apply(turn.end_input(3.0))
    assert turn.state is State.DONE and h.heard == THREE
    assert Linger("ctx") in outputs  # the done may still come: the socket waits for it


def test_order7_a_server_that_never_sends_flush_done_makes_no_pause_a_stall() -> None:
    """Audio of flush window 2 before receipt 1 shows the server sends none. (API versions
    without flush_done get no flushes at all: tests/plugin/test_cartesia_orders.py.)"""
    turn = machine(timeout=1.0)
    h = Harness(turn, FakeServer(receipts="never"))
    h.apply(turn.text(THREE, 0.0))
    _drain(h, 0.1)
    assert turn.receipts is Trust.DISTRUSTED
    assert turn.next_deadline() is None  # nothing is owed while the LLM thinks
    h.apply(turn.text("Fine, thanks. ", 30.0))
    h.apply(turn.end_input(30.0))
    _drain(h, 30.1)
    assert h.finished and not h.reconnects and turn.resumes == 0


def test_order8_a_drop_in_an_llm_pause_repeats_and_fuses_nothing() -> None:
    turn = machine(timeout=1.0)
    h = Harness(turn, FakeServer(timings="with_audio", receipts="auto"))
    h.apply(turn.text("Sure, I can book that for you.", 0.0))
    h.apply(turn.flush(0.0))  # LiveKit's flush at the end of the LLM's segment
    _drain(h, 0.1)
    h.apply(turn.socket_lost(DROP, 5.0))  # the LLM thinks; the idle socket drops
    h.step(5.1)  # connected
    h.apply(turn.text(" Your flight leaves at nine.", 6.0))
    h.apply(turn.end_input(6.0))
    _drain(h, 6.1)
    assert h.finished
    assert h.heard.split() == "Sure, I can book that for you. Your flight leaves at nine.".split()
    sent = "".join(t for c in h.server.contexts.values() for t in c.texts)
    assert "you.Your" not in sent


def test_order9_a_late_done_is_waited_for_by_the_socket_not_cancelled() -> None:
    turn = machine(timeout=10.0)
    h = Harness(turn, FakeServer())
    h.apply(turn.text(THREE, 0.0))
    outputs = h.apply(turn.end_input(0.0))
    while not turn.finished:
        event = h.server.next_event("ctx")
        outputs = h.apply(turn.server(event, 0.2))
    assert turn.state is State.DONE and h.heard == THREE
    assert Linger("ctx") in outputs and "ctx" not in h.server.cancelled


def test_order3_a_failed_send_resumes_on_a_new_socket() -> None:
    turn = machine()
    h = Harness(turn, FakeServer())
    outputs = h.apply(turn.text(THREE, 0.0))
    assert any(isinstance(o, Send) for o in outputs)
    h.apply(turn.send_failed("sending to Cartesia failed (ConnectionResetError)", 0.0))
    assert h.reconnects == [True]  # never the socket whose send failed
    h.step(0.1)
    h.apply(turn.end_input(0.1))
    _drain(h, 0.2)
    assert h.finished and h.heard == THREE


def test_a_context_quiet_long_enough_to_expire_is_left_for_a_new_one() -> None:
    """Cartesia expires a context 1 s after its last audio: text after a longer LLM pause
    goes in a new context, and its word timings run on on the turn's timeline."""
    turn = machine(timeout=10.0)
    h = Harness(turn, FakeServer())
    h.apply(turn.text("Hello there my friend. ", 0.0))
    _drain(h, 0.1)
    first_words = list(h.words)
    h.apply(turn.text("How are you? ", 3.0))
    outputs = h.apply(turn.end_input(3.0))  # quiet for 2.9 s: expired
    assert turn.context_id == "ctx-r1" and Linger("ctx") in outputs  # ended, its done awaited
    before = len(h.words)
    events = h.server.contexts["ctx-r1"].events
    timings = []
    while events and not turn.finished:
        for out in h.apply(turn.server(events.popleft(), 3.1)):
            if isinstance(out, Words):
                timings += [w.start for w in out.words]
    assert h.finished and h.heard == "Hello there my friend. How are you? "
    assert first_words and len(h.words) > before
    assert min(timings) >= len("Hello there my friend. ") / 100 - 1e-6  # on one timeline
