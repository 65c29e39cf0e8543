"""The pacer alone (``pacing.Pacer``): what leaves when, so that the speech sent but not yet
heard stays within the lead, and a chunk too long for the lead still leaves in time."""

from __future__ import annotations

import pytest

from plugin_cartesia_ws.pacing import Pacer, PacingPolicy

POLICY = PacingPolicy(lead_s=3.0, max_chars=300, chars_per_s=20.0)  # floor 1 s


def started(held: list[str]) -> Pacer:
    """A pacer whose first chunk (20 characters: 1 s of speech) left, and whose first audio
    arrived at t=0 (the listener's clock starts)."""
    pacer = Pacer(POLICY)
    pacer.held = ["x" * 20, *held]
    assert pacer.take(0.0, first=True) == "x" * 20
    pacer.audio(0.1, now=0.0)
    return pacer


def test_the_first_chunk_leaves_alone_and_at_once() -> None:
    pacer = Pacer(POLICY)
    pacer.held = ["Hello there. ", "How are you? "]
    assert pacer.release_at() is None  # no audio yet: the clock has not started
    assert pacer.take(0.0, first=True) == "Hello there. "
    assert pacer.held == ["How are you? "]


def test_a_chunk_leaves_once_it_fits_within_the_lead() -> None:
    pacer = started(["y" * 40])  # 2 s of speech
    # 1 s sent; 1 + 2 <= 3 s already at t=0: it fits, so it leaves
    assert pacer.release_at() == pytest.approx(0.0)
    assert pacer.take(0.0, first=False) == "y" * 40
    assert pacer.ahead(0.0) == pytest.approx(3.0)


def test_what_leaves_keeps_the_speech_ahead_within_the_lead() -> None:
    pacer = started(["a" * 30, "b" * 30, "c" * 30])  # 1.5 s each
    assert pacer.take(0.0, first=False) == "a" * 30  # 1 + 1.5 fits, 1 + 3 does not
    assert pacer.take(0.0, first=False) is None
    due = pacer.release_at()
    assert due == pytest.approx(1.0)  # 2.5 s ahead at t=0; b fits once 1.5 s is left
    assert pacer.take(due - 0.01, first=False) is None
    assert pacer.take(due, first=False) == "b" * 30
    assert pacer.ahead(due) <= POLICY.lead_s + 1e-9


def test_a_batch_joins_the_chunks_that_fit() -> None:
    pacer = started(["a" * 10, "b" * 10, "c" * 10, "d" * 40])
    # 1 s ahead: a, b, c (1.5 s) fit within 3 s; d (2 s more) does not
    assert pacer.take(0.0, first=False) == "a" * 10 + "b" * 10 + "c" * 10
    assert pacer.held == ["d" * 40]


def test_a_chunk_too_long_for_the_lead_leaves_at_the_floor() -> None:
    pacer = started(["z" * 100])  # 5 s of speech: never fits within a 3 s lead
    due = pacer.release_at()
    assert due == pytest.approx(1.0 - POLICY.floor_s)  # 1 s ahead - the 1 s floor: t = 0
    pacer.held.insert(0, "w" * 40)  # 2 s: fits at once
    assert pacer.take(0.0, first=False) == "w" * 40
    due = pacer.release_at()
    assert due == pytest.approx(3.0 - POLICY.floor_s)  # 3 s ahead: leaves when 1 s is left
    assert pacer.take(due - 0.01, first=False) is None
    assert pacer.take(due, first=False) == "z" * 100


def test_with_word_timings_text_not_yet_timed_counts_in_full() -> None:
    pacer = started(["q" * 40, "r" * 40])
    pacer.timed(20, 0.5)  # the server timed the first chunk (0.5 s: too little to learn from)
    pacer.audio(4.0, now=0.0)  # ... and it spoke for 4.1 s, not the 1 s estimated
    assert pacer.ahead(0.0) == pytest.approx(4.1)
    assert pacer.release_at() == pytest.approx(4.1 + 2.0 - 3.0)  # q fits once 1 s is left
    assert pacer.take(3.1, first=False) == "q" * 40
    assert pacer.ahead(3.1) == pytest.approx(1.0 + 2.0)  # q's 2 s count before its audio


def test_untimed_text_is_estimated_at_the_voice_measured_pace() -> None:
    pacer = started(["q" * 40])
    pacer.timed(20, 2.0)  # 20 characters spoke for 2 s: this voice says 10 per second
    pacer.audio(1.9, now=0.0)
    assert pacer.ahead(0.0, adding=40) == pytest.approx(2.0 + 4.0)  # 40 more: 4 s
    assert pacer.release_at() == pytest.approx(2.0 - 1.0)  # too long to fit: at the floor


def test_without_timings_the_audio_is_taken_to_speak_the_text_sent() -> None:
    pacer = started(["q" * 40])
    pacer.audio(4.0, now=0.0)  # 4.1 s of audio for 20 characters: a slow voice
    # the 40 held characters are taken as spoken by the audio already pushed (2 s at
    # 20/s < 4.1 s): a slower voice than the estimate errs towards releasing early
    assert pacer.release_at() == pytest.approx(4.1 - 3.0)


def test_a_long_sentence_leaves_a_phrase_at_a_time() -> None:
    sentence = "Alpha beta gamma delta, epsilon zeta eta theta, iota kappa lambda mu. "
    pacer = started([sentence])
    # 1 s ahead: the first phrase (24 characters, 1.2 s) fits within 3 s, two do not
    assert pacer.take(0.0, first=False) == "Alpha beta gamma delta, "
    assert pacer.held == ["epsilon zeta eta theta, iota kappa lambda mu. "]
    due = pacer.release_at()
    assert due == pytest.approx(2.2 + 1.2 - 3.0)  # the next phrase fits once 1.8 s is left
    assert pacer.take(due, first=False) == "epsilon zeta eta theta, "
    # nothing is lost or reordered
    assert (
        "x" * 20 + "Alpha beta gamma delta, " + "epsilon zeta eta theta, " + "".join(pacer.held)
        == "x" * 20 + sentence
    )


def test_a_phrase_never_leaves_unspeakable_text_behind() -> None:
    chunk = 'Alpha beta, "'  # its clause end would leave a lone quote behind
    pacer = Pacer(PacingPolicy(lead_s=1.625, chars_per_s=20.0))  # room for 12.5 characters
    pacer.held = ["x" * 20, chunk]
    pacer.take(0.0, first=True)
    pacer.audio(0.1, now=0.0)
    assert pacer.take(0.0, first=False) is None  # "Alpha beta, " would fit; it is no phrase
    assert pacer.release_at() == pytest.approx(0.025)  # the whole chunk fits then
    assert pacer.take(0.025, first=False) == chunk


def test_a_phrase_longer_than_the_lead_is_cut_before_a_preposition_at_the_floor() -> None:
    sentence = "The quick brown fox jumps over the lazy dog and runs into the forest today. "
    pacer = started([sentence])  # 77 characters, 3.85 s: never fits within 3 s
    assert pacer.release_at() == pytest.approx(0.0)  # 1 s ahead: the floor
    # 2 s (40 characters) fit: the last good boundary within them is before "over"
    assert pacer.take(0.0, first=False) == "The quick brown fox jumps "
    assert pacer.held == ["over the lazy dog and runs into the forest today. "]


def test_a_phrase_that_fits_the_lead_alone_is_cut_only_where_a_speaker_pauses() -> None:
    # 54 characters, 2.7 s: too long for the 2 s left at the floor, short enough for the lead
    sentence = "the lights of the harbor as the evening tide came in. "
    pacer = started([sentence, "The fishermen counted their nets. "])
    assert pacer.release_at() == pytest.approx(0.0)  # at the floor
    # its only boundaries within the room are plain ("harbor | as"): it leaves whole
    assert pacer.take(0.0, first=False) == sentence
    # with a boundary before a preposition within the room, it is cut there
    pacer = started(["the bright lights shone over the harbor as the evening came. "])
    assert pacer.take(0.0, first=False) == "the bright lights shone "
