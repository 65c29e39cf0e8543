"""TranscriptAligner: Cartesia word timestamps mapped back onto the exact sent text."""

from __future__ import annotations

import math

from plugin_cartesia_ws.alignment import TimedWord, TranscriptAligner, word_key


def aligner_for(*chunks: str) -> TranscriptAligner:
    aligner = TranscriptAligner()
    for chunk in chunks:
        aligner.add_sent_text(chunk)
    return aligner


def evenly(words: list[str], start: float = 0.0, step: float = 0.5) -> tuple:
    """Timestamps for words spoken back to back, ``step`` seconds each."""
    starts = [start + i * step for i in range(len(words))]
    return words, starts, [s + step for s in starts]


def texts(timed: list[TimedWord]) -> list[str]:
    return [word.text for word in timed]


def test_exact_words_with_punctuation_across_chunks() -> None:
    aligner = aligner_for("Hello, ", "world! ", "How are you? ")
    timed = aligner.align(*evenly(["Hello,", "world!", "How", "are", "you?"]))
    assert timed == [
        TimedWord("Hello, ", 0.0, 0.5),
        TimedWord("world! ", 0.5, 1.0),
        TimedWord("How ", 1.0, 1.5),
        TimedWord("are ", 1.5, 2.0),
        TimedWord("you? ", 2.0, 2.5),
    ]
    assert aligner.spoken_offset == len(aligner.sent_text) == 27
    assert aligner.finish() == []


def test_words_returned_without_punctuation_keep_the_sent_punctuation() -> None:
    aligner = aligner_for("Hello, ", "world! ", "How are you? ")
    timed = aligner.align(*evenly(["hello", "World", "how", "are", "you"]))
    assert texts(timed) == ["Hello, ", "world! ", "How ", "are ", "you? "]


def test_leading_space_and_quotes_are_attached_to_the_first_word() -> None:
    aligner = aligner_for(' "Sure!" ', "It is great.")
    timed = aligner.align(*evenly(["Sure!", "It", "is", "great."]))
    assert texts(timed) == [' "Sure!" ', "It ", "is ", "great."]


def test_cjk_one_character_per_word() -> None:
    aligner = aligner_for("你好。", "今天天气很好。")
    words = ["你", "好", "今", "天", "天", "气", "很", "好"]
    timed = aligner.align(*evenly(words, step=0.25))
    assert texts(timed) == ["你", "好。", "今", "天", "天", "气", "很", "好。"]
    assert timed[2] == TimedWord("今", 0.5, 0.75)


def test_cjk_punctuation_entries_are_ignored() -> None:
    aligner = aligner_for("你好。今天")
    timed = aligner.align(["你好", "。", "今天"], [0.0, 0.5, 0.6], [0.5, 0.6, 1.0])
    assert texts(timed) == ["你好。", "今天"]
    assert timed[1].start == 0.6


def test_normalised_number_waits_for_finish() -> None:
    aligner = aligner_for("It costs $42.50.")
    words = ["It", "costs", "forty-two", "dollars", "and", "fifty", "cents."]
    timed = aligner.align(*evenly(words))
    assert timed == [TimedWord("It ", 0.0, 0.5), TimedWord("costs ", 0.5, 1.0)]
    assert aligner.spoken_offset == len("It costs ")
    assert aligner.finish() == [TimedWord("$42.50.", 1.0, 3.5)]
    assert aligner.spoken_offset == len(aligner.sent_text)


def test_normalised_number_is_resolved_by_the_next_matching_word() -> None:
    aligner = aligner_for("It is 22.5 degrees today.")
    words = ["It", "is", "twenty-two", "point", "five", "degrees", "today."]
    timed = aligner.align(*evenly(words))
    assert timed == [
        TimedWord("It ", 0.0, 0.5),
        TimedWord("is ", 0.5, 1.0),
        TimedWord("22.5 ", 1.0, 2.5),
        TimedWord("degrees ", 2.5, 3.0),
        TimedWord("today.", 3.0, 3.5),
    ]


def test_break_tag_missing_from_words_stays_with_the_word_before() -> None:
    aligner = aligner_for('Wait <break time="1s"/> now.')
    assert texts(aligner.align(*evenly(["Wait", "now."]))) == ['Wait <break time="1s"/> ', "now."]


def test_tag_fragments_and_tags_inside_words_are_understood() -> None:
    aligner = aligner_for('Wait <break time="1s"/> now.')
    words = ["Wait", "<break", 'time="1s"/>', "now."]
    timed = aligner.align(words, [0.0, 0.4, 0.4, 1.4], [0.4, 1.4, 1.4, 1.8])
    assert timed == [TimedWord('Wait <break time="1s"/> ', 0.0, 0.4), TimedWord("now.", 1.4, 1.8)]

    aligner = aligner_for('Wait<break time="1s"/>now.')
    timed = aligner.align(["Wait", '<break time="1s"/>now.'], [0.0, 1.4], [0.4, 1.8])
    assert texts(timed) == ['Wait<break time="1s"/>', "now."]


def test_spelled_text_may_come_back_one_character_at_a_time() -> None:
    aligner = aligner_for("Code <spell>AB1</spell>, thanks.")
    timed = aligner.align(*evenly(["Code", "A", "B", "1", "thanks."]))
    assert texts(timed) == ["Code ", "<spell>A", "B", "1</spell>, ", "thanks."]


def test_timestamps_split_across_messages_and_chunks() -> None:
    aligner = aligner_for("The quick brown ")
    first = aligner.align(["The", "quick"], [0.0, 0.3], [0.3, 0.6])
    assert texts(first) == ["The ", "quick "]
    assert aligner.spoken_offset == 10
    aligner.add_sent_text("fox jumps.")
    second = aligner.align(["brown", "fox"], [0.6, 0.9], [0.9, 1.2])
    third = aligner.align(["jumps."], [1.2], [1.6])
    assert texts(second + third) == ["brown ", "fox ", "jumps."]
    assert aligner.spoken_offset == len("The quick brown fox jumps.")


def test_finish_covers_the_unspoken_remainder() -> None:
    aligner = aligner_for("One two ", "three four.")
    aligner.align(["One"], [0.0], [0.4])
    assert aligner.spoken_offset == 4
    assert aligner.sent_text[aligner.spoken_offset :] == "two three four."
    assert aligner.finish(end_time=2.0) == [TimedWord("two three four.", 0.4, 2.0)]
    assert aligner.finish() == []


def test_finish_without_words_returns_everything() -> None:
    aligner = aligner_for(" Hi. ")
    assert aligner.finish() == [TimedWord(" Hi. ", 0.0, 0.0)]


def test_recovers_at_the_next_matching_word_unlike_the_official_plugin() -> None:
    aligner = aligner_for("Meet Dr. Smith at noon today.")
    words = ["Meet", "Doctor", "Smith", "at", "twelve", "today."]
    timed = aligner.align(*evenly(words))
    assert texts(timed) == ["Meet ", "Dr. ", "Smith ", "at ", "noon ", "today."]
    assert [w.start for w in timed] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]


def test_extra_words_merge_into_the_following_word() -> None:
    aligner = aligner_for("Go now.")
    timed = aligner.align(["Go", "uh", "now."], [0.0, 0.3, 0.6], [0.3, 0.6, 0.9])
    assert timed == [TimedWord("Go ", 0.0, 0.3), TimedWord("now.", 0.3, 0.9)]


def test_repeated_and_missing_words() -> None:
    aligner = aligner_for("no no no, yes yes.")
    timed = aligner.align(*evenly(["no", "no", "yes", "yes."]))
    assert texts(timed) == ["no ", "no ", "no, yes ", "yes."]


def test_case_and_accents_are_ignored_when_matching() -> None:
    aligner = aligner_for("Café CRÈME, s'il vous plaît.")
    timed = aligner.align(*evenly(["cafe", "creme", "sil", "VOUS", "plait"]))
    assert texts(timed) == ["Café ", "CRÈME, ", "s'il ", "vous ", "plaît."]


def test_short_word_does_not_match_inside_a_longer_one() -> None:
    aligner = aligner_for("an apple a day")
    timed = aligner.align(*evenly(["an", "a", "day"]))
    assert texts(timed) == ["an ", "apple a ", "day"]


def test_bad_inputs_never_raise_and_times_are_clamped() -> None:
    aligner = aligner_for("one two three four five")
    timed = aligner.align(
        ["one", "two", None, "three", "four"],  # type: ignore[list-item]
        [float("nan"), -3.0, 1.0, "x", 2.0],  # type: ignore[list-item]
        [0.5, float("inf"), 1.5, 1.2],
    )
    assert texts(timed) == ["one ", "two ", "three "]
    assert [(w.start, w.end) for w in timed] == [(0.0, 0.5), (0.5, 0.5), (0.5, 1.2)]
    assert aligner.align(None, 3, "abc") == []  # type: ignore[arg-type]
    aligner.add_sent_text(None)  # type: ignore[arg-type]
    rest = aligner.finish(end_time=math.nan)
    assert rest == [TimedWord("four five", 1.2, 1.2)]


def test_times_are_monotonic_even_when_cartesia_goes_backwards() -> None:
    aligner = aligner_for("a b c")
    timed = aligner.align(["a", "b", "c"], [1.0, 0.5, 2.0], [1.5, 0.7, 1.9])
    assert [(w.start, w.end) for w in timed] == [(1.0, 1.5), (1.5, 1.5), (2.0, 2.0)]


def test_word_key() -> None:
    assert word_key("Hello,") == "hello"
    assert word_key("forty-two") == "fortytwo"
    assert word_key('<break time="1s"/>now') == "now"
    assert word_key("<break") == "" and word_key("...") == "" and word_key("。") == ""
    assert word_key("Ｆｕｌｌ") == "full"
