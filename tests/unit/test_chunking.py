"""TextChunker on realistic LLM token streams: exact chunks per mode, stall timing, policies.

Over 400 lines on purpose: one list of cases per mode, each a few lines, read side by side."""

from __future__ import annotations

import pytest

from plugin_cartesia_ws.chunking import (
    ChunkingPolicy,
    TextChunker,
    count_words,
    find_cuts,
    is_speakable,
    policy_for,
)

TOKEN_INTERVAL_S = 0.02  # a fast LLM: well under the 0.25 s stall


def stream(tokens: list[str], policy: ChunkingPolicy | str = "clause") -> list[tuple[str, str]]:
    """Push tokens 20 ms apart, then flush; return (what triggered it, chunk) pairs."""
    chunker = TextChunker(policy)
    events: list[tuple[str, str]] = []
    for index, token in enumerate(tokens):
        events += [(token, chunk) for chunk in chunker.push(token, index * TOKEN_INTERVAL_S)]
    events += [("<flush>", chunk) for chunk in chunker.flush()]
    return events


def chunks_of(tokens: list[str], policy: ChunkingPolicy | str = "clause") -> list[str]:
    return [chunk for _, chunk in stream(tokens, policy)]


WEATHER = [
    "Sure", "!", " It", "'s", " sunny", " and", " 22", ".", "5", " degrees", " in", " Paris",
    " today", ".", " Enjoy", " your", " walk", "!",
]  # fmt: skip
LIST = [
    "Here", " are", " three", " options", ":\n", "1", ".", " Pasta", "\n", "2", ".", " Salad",
    "\n", "3", ".", " Soup",
]  # fmt: skip


def test_weather_clause_mode_sends_the_short_exclamation_first() -> None:
    assert stream(WEATHER) == [
        (" It", "Sure! "),
        (" Enjoy", "It's sunny and 22.5 degrees in Paris today. "),
        ("<flush>", "Enjoy your walk!"),
    ]


def test_weather_sentence_mode_merges_short_sentences_like_the_official_plugin() -> None:
    assert stream(WEATHER, "sentence") == [
        (" Enjoy", "Sure! It's sunny and 22.5 degrees in Paris today. "),
        ("<flush>", "Enjoy your walk!"),
    ]


def test_weather_tokens_mode_sends_whole_words_as_they_complete() -> None:
    assert chunks_of(WEATHER, "tokens") == [
        "Sure! ", "It's ", "sunny ", "and ", "22.5 ", "degrees ", "in ", "Paris ", "today. ",
        "Enjoy ", "your ", "walk!",
    ]  # fmt: skip


def test_list_items_end_at_newlines_and_numbers_do_not_end_sentences() -> None:
    assert stream(LIST) == [
        (":\n", "Here are three options:\n"),
        ("\n", "1. Pasta\n"),
        ("\n", "2. Salad\n"),
        ("<flush>", "3. Soup"),
    ]
    assert chunks_of(LIST, "sentence") == [
        "Here are three options:\n",
        "1. Pasta\n2. Salad\n3. Soup",
    ]


def test_decimal_split_across_tokens_is_never_cut() -> None:
    tokens = ["Pi", " is", " about", " 3", ".", "14", ".", " Nice", "."]
    assert stream(tokens) == [(" Nice", "Pi is about 3.14. "), ("<flush>", "Nice.")]


def test_code_like_reply_keeps_numbers_and_operators_together() -> None:
    tokens = [
        "The", " value", " is", " x", " =", " ", "3", ".", "14", ",", " so", " the", " area",
        " is", " ", "3", ".", "14", " *", " r", " *", " r", ".",
    ]  # fmt: skip
    assert chunks_of(tokens) == ["The value is x = 3.14, ", "so the area is 3.14 * r * r."]


def test_thousands_separator_and_phone_number_are_not_clause_ends() -> None:
    tokens = [
        "It", " costs", " $", "1", ",", "000", ",", " or", " call", " 555", "-", "1234", ".",
    ]  # fmt: skip
    assert chunks_of(tokens) == ["It costs $1,000, ", "or call 555-1234."]
    assert chunks_of(tokens, "tokens") == [
        "It ", "costs ", "$1,000, ", "or ", "call ", "555-1234.",
    ]  # fmt: skip


def test_emoji_alone_is_merged_forward_or_dropped_at_the_end() -> None:
    tokens = ["Great", " job", "!", " 🎉", " You", " did", " it", ".", " 🎉"]
    assert chunks_of(tokens) == ["Great job! ", "🎉 You did it. "]
    assert chunks_of(tokens, "tokens") == ["Great ", "job! ", "🎉 You ", "did ", "it. "]


def test_cjk_sentences_cut_at_full_width_punctuation_without_spaces() -> None:
    tokens = ["你好", "。", "今天", "天气", "很", "好", "。"]
    assert stream(tokens) == [("。", "你好。"), ("。", "今天天气很好。")]
    assert chunks_of(tokens, "sentence") == ["你好。今天天气很好。"]
    assert chunks_of(tokens, "tokens") == ["你好。", "今天天气很好。"]


def test_cjk_clause_end_counts_characters_as_words() -> None:
    tokens = ["今天", "天气", "很好", "，", "我们", "去", "公园", "吧", "。"]
    assert chunks_of(tokens) == ["今天天气很好，", "我们去公园吧。"]


def test_reply_starting_with_short_clauses_waits_for_enough_words() -> None:
    tokens = [
        "Well", ",", " actually", ",", " it", "'s", " not", " that", " simple", ".", " Let",
        " me", " explain", ".",
    ]  # fmt: skip
    assert chunks_of(tokens) == ["Well, actually, it's not that simple. ", "Let me explain."]
    two_words = ChunkingPolicy(min_first_words=2)
    assert chunks_of(tokens, two_words) == [
        "Well, actually, ", "it's not that simple. ", "Let me explain.",
    ]  # fmt: skip


def test_long_first_sentence_goes_out_at_its_first_clause() -> None:
    tokens = (
        "I think the best approach, given everything you told me about your schedule and"
        " budget, would be to take the train. It is cheaper."
    ).split(" ")
    tokens = [tokens[0]] + [" " + token for token in tokens[1:]]
    assert stream(tokens) == [
        (" given", "I think the best approach, "),
        (
            " It",
            "given everything you told me about your schedule and budget, would be to take"
            " the train. ",
        ),
        ("<flush>", "It is cheaper."),
    ]


def test_max_chunk_chars_cuts_at_the_last_clause_else_word_boundary() -> None:
    policy = ChunkingPolicy(max_chunk_chars=30)
    words = "Okay. one two three, four five six seven eight nine ten eleven twelve thirteen"
    tokens = [words.split(" ")[0]] + [" " + word for word in words.split(" ")[1:]]
    chunks = chunks_of(tokens, policy)
    assert chunks == [
        "Okay. ", "one two three, ", "four five six seven eight ", "nine ten eleven twelve ",
        "thirteen",
    ]  # fmt: skip
    assert all(len(chunk) <= 30 for chunk in chunks)


def test_break_tag_split_across_tokens_is_never_cut() -> None:
    tokens = [
        "Wait",
        " a",
        " moment",
        " <",
        "break",
        " time",
        '="',
        "500",
        "ms",
        '"/>',
        " okay",
        "?",
    ]
    assert chunks_of(tokens) == ['Wait a moment <break time="500ms"/> okay?']
    assert chunks_of(tokens, "tokens") == ["Wait ", "a ", "moment ", '<break time="500ms"/> okay?']


def test_spell_element_is_sent_whole() -> None:
    tokens = [
        "Your", " code", " is", " <", "spell", ">", "AB", "C", " 12", "3", "</", "spell", ">.",
        " Thanks", "!",
    ]  # fmt: skip
    assert chunks_of(tokens, "tokens") == [
        "Your ", "code ", "is ", "<spell>ABC 123</spell>. ", "Thanks!",
    ]  # fmt: skip
    assert chunks_of(tokens) == ["Your code is <spell>ABC 123</spell>. ", "Thanks!"]


def test_ellipsis_and_exclamation_runs() -> None:
    tokens = ["Hmm", "...", " let", " me", " think", ".", " Okay", "!!!"]
    assert chunks_of(tokens) == ["Hmm... ", "let me think. ", "Okay!!!"]
    assert chunks_of(["Wow", "!!!", " Great", "!", " ", "!!!"]) == ["Wow!!! ", "Great! "]
    assert chunks_of(["...", " ", "!!!"]) == []


def test_abbreviations_do_not_end_the_first_chunk() -> None:
    tokens = ["Dr", ".", " Smith", " says", " hi", ".", " Mr", ".", " Lee", " agrees", "."]
    assert chunks_of(tokens) == ["Dr. Smith says hi. ", "Mr. Lee agrees."]
    tokens = [
        "Use",
        " e",
        ".g",
        ".",
        " a",
        " map",
        ".",
        " Or",
        " the",
        " U",
        ".S",
        ".",
        " one",
        ".",
    ]
    assert chunks_of(tokens) == ["Use e.g. a map. ", "Or the U.S. one."]


def test_empty_and_whitespace_only_pushes() -> None:
    tokens = [
        "",
        " ",
        "\n",
        "Hello",
        "",
        " ",
        " ",
        "world",
        ".",
        " ",
        "",
        "How",
        " are",
        " you",
        "?",
    ]
    assert stream(tokens) == [(" ", "Hello  world. "), ("<flush>", "How are you?")]
    assert chunks_of(["", " ", "\n\n", ""]) == []
    assert chunks_of(["  Hi", " there", "."], "tokens") == ["Hi ", "there."]


def test_stall_releases_the_complete_words_of_the_first_chunk() -> None:
    chunker = TextChunker("clause")
    for index, token in enumerate(["Let", " me", " check", " the", " weather"]):
        assert chunker.push(token, index * 0.05) == []
    assert chunker.next_deadline() == pytest.approx(0.25)  # the first-chunk deadline
    assert chunker.poll(0.25) == []  # the only cut of four words would end on "the"
    assert chunker.next_deadline() == pytest.approx(0.2 + 0.25)  # then the LLM stall
    assert chunker.poll(0.44) == []
    assert chunker.poll(0.45) == ["Let me check the "]
    assert chunker.next_deadline() is None
    assert chunker.push(" for", 0.5) == []
    assert chunker.push(" you", 0.55) == []
    assert chunker.poll(5.0) == []  # only the first chunk is timed
    assert chunker.push(".", 0.6) == []
    assert chunker.flush() == ["weather for you."]
    assert chunker.chunks_sent == 2


def test_stall_needs_min_first_words() -> None:
    chunker = TextChunker("clause")
    chunker.push("Let", 0.0)
    chunker.push(" me", 0.05)
    assert chunker.next_deadline() == pytest.approx(0.25)  # the deadline, not the stall:
    assert chunker.poll(10.0) == []  # "Let " is a single complete word
    assert chunker.next_deadline() is None  # tried on this text: no timer spins
    chunker.push(" see", 10.0)
    chunker.push(" what", 10.05)
    assert chunker.next_deadline() == pytest.approx(10.3)


def test_late_token_after_a_missed_timer_still_releases_the_stall_chunk_first() -> None:
    chunker = TextChunker("clause")
    for index, token in enumerate(["Let", " me", " look", " that"]):
        chunker.push(token, index * 0.05)
    assert chunker.push(" up", 2.0) == ["Let me look "]
    assert chunker.buffered_text == "that up"


def test_stall_never_cuts_inside_an_open_tag() -> None:
    chunker = TextChunker("clause")
    for index, token in enumerate(["One", " two", " three", " <", "break", " time", '="']):
        chunker.push(token, index * 0.01)
    assert chunker.poll(1.0) == ["One two three "]
    assert chunker.buffered_text == '<break time="'


def test_sentence_and_tokens_modes_have_no_timer() -> None:
    for mode in ("sentence", "tokens"):
        chunker = TextChunker(mode)
        chunker.push("Let me check the weather", 0.0)
        assert chunker.next_deadline() is None
        assert chunker.poll(100.0) == []


def test_policy_defaults_and_buffer_delay() -> None:
    assert ChunkingPolicy().mode == "clause"
    assert policy_for("clause").buffer_delay_ms() == 0
    assert policy_for("sentence").buffer_delay_ms() == 0
    assert policy_for("tokens").buffer_delay_ms() == 1000
    assert ChunkingPolicy(mode="tokens", max_buffer_delay_ms=3000).buffer_delay_ms() == 3000
    assert ChunkingPolicy(max_buffer_delay_ms=0).buffer_delay_ms() == 0
    policy = ChunkingPolicy(min_first_words=5)
    assert policy_for(policy) is policy
    assert policy_for(" Sentence ").mode == "sentence"
    assert TextChunker().policy == ChunkingPolicy()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "words"},
        {"min_first_words": 0},
        {"first_chunk_stall_s": 0},
        {"max_chunk_chars": 0},
        {"max_buffer_delay_ms": -1},
        {"max_buffer_delay_ms": 5001},
    ],
)
def test_invalid_policies_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ChunkingPolicy(**kwargs)  # type: ignore[arg-type]


def test_unknown_mode_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="clause, sentence, tokens"):
        policy_for("paragraph")
    with pytest.raises(ValueError):
        TextChunker("words")


def test_helpers() -> None:
    assert is_speakable("a") and is_speakable("٣") and is_speakable("<spell>B</spell>")
    assert not is_speakable(" ... !!! 🎉 ") and not is_speakable('<break time="1s"/> ')
    assert count_words("Hello, wide world! 你好") == 5
    assert count_words('<break time="1s"/> — ok') == 1
    assert [cut.kind for cut in find_cuts("Hi, you. Dr. X\nY")] == [
        "clause", "sentence", "word", "sentence",
    ]  # fmt: skip


def test_flush_mid_turn_keeps_the_spacing_of_what_follows() -> None:
    chunker = TextChunker("clause")
    assert chunker.push("Hello there", 0.0) == []
    assert chunker.flush() == ["Hello there"]
    assert chunker.push(" friend.", 0.1) == []
    assert chunker.push(" Bye", 0.2) == [" friend. "]
    assert chunker.flush() == ["Bye"]
    assert chunker.chunks_sent == 3


# ------------------------------------------------------------ first-chunk deadline
def words_as_tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [words[0]] + [" " + word for word in words[1:]]


def test_long_first_sentence_without_comma_is_cut_at_the_deadline_before_a_preposition() -> None:
    tokens = words_as_tokens(
        "The fastest way into the city is the express train from the lower level of terminal"
        " two and it takes twenty minutes."
    )
    events = stream(tokens)
    # 20 ms tokens: " from" arrives at 0.20 s, " lower" (the first push past 0.25 s) at 0.26 s.
    assert events[0] == (" level", "The fastest way into the city is the express train ")
    assert [chunk for _, chunk in events[1:]] == [
        "from the lower level of terminal two and it takes twenty minutes."
    ]


def test_deadline_timer_fires_without_a_new_token() -> None:
    chunker = TextChunker("clause")
    for index, token in enumerate(words_as_tokens("I booked a table for four people at")):
        assert chunker.push(token, index * 0.02) == []
    assert chunker.next_deadline() == pytest.approx(0.25)
    assert chunker.poll(0.249) == []
    assert chunker.poll(0.25) == ["I booked a table "]  # before "for", not after "people"
    assert chunker.first_chunk_reason == "deadline: before a preposition"
    assert chunker.next_deadline() is None


def test_deadline_never_leaves_fewer_than_four_words_or_cuts_inside_a_number() -> None:
    chunker = TextChunker(ChunkingPolicy(first_chunk_stall_s=5.0))
    for index, token in enumerate(words_as_tokens("That comes to twenty two")):
        assert chunker.push(token, index * 0.1) == []
    # "That comes to twenty " has four words but ends inside a number; "That comes to "
    # ends with "to" and has three: nothing may leave yet; only the stall timer is armed.
    assert chunker.next_deadline() == pytest.approx(0.4 + 5.0)
    assert chunker.poll(1.0) == []
    assert chunker.push(" dollars", 1.0) == []
    assert chunker.push(" and", 1.1) == ["That comes to twenty two dollars "]


def test_deadline_prefers_punctuation_then_conjunctions_over_later_plain_boundaries() -> None:
    chunker = TextChunker(ChunkingPolicy(min_first_words=10))
    text = "Yes, the museum opens at nine but the gallery opens later today"
    for index, token in enumerate(words_as_tokens(text)):
        chunker.push(token, index * 0.01)
    assert chunker.poll(0.3) == ["Yes, the museum opens at nine "]
    assert chunker.first_chunk_reason == "deadline: before a conjunction"
    chunker = TextChunker(ChunkingPolicy(min_first_words=10))
    for index, token in enumerate(words_as_tokens("Well, one two three four, five six seven")):
        chunker.push(token, index * 0.01)
    assert chunker.poll(0.3) == ["Well, one two three four, "]
    assert chunker.first_chunk_reason == "deadline: punctuation"


def test_a_sentence_end_before_the_deadline_still_goes_first() -> None:
    chunker = TextChunker("clause")
    assert chunker.push("Of", 0.0) == []
    assert chunker.push(" course", 0.02) == []
    assert chunker.push("!", 0.04) == []
    assert chunker.push(" The", 0.06) == ["Of course! "]
    assert chunker.first_chunk_reason == "sentence"


def test_deadline_can_be_switched_off() -> None:
    policy = ChunkingPolicy(first_chunk_deadline_s=None)
    tokens = words_as_tokens("The fastest way into the city is the express train today.")
    assert chunks_of(tokens, policy) == [
        "The fastest way into the city is the express train today."
    ]
    with pytest.raises(ValueError, match="first_chunk_deadline_s"):
        ChunkingPolicy(first_chunk_deadline_s=0)
    with pytest.raises(ValueError, match="deadline_min_words"):
        ChunkingPolicy(deadline_min_words=0)


def test_phrase_boundary_ranks() -> None:
    from plugin_cartesia_ws import phrasing

    assert phrasing.rank("table,", "for", punctuated=True) == phrasing.PUNCTUATION
    assert phrasing.rank("nine", "but", punctuated=False) == phrasing.BEFORE_CONJUNCTION
    assert phrasing.rank("book", "which", punctuated=False) == phrasing.BEFORE_RELATIVE
    assert phrasing.rank("train", "from", punctuated=False) == phrasing.BEFORE_PREPOSITION
    assert phrasing.rank("accuracy", "and", punctuated=False) == phrasing.BEFORE_AND_OR
    assert phrasing.rank("increments", "the", punctuated=False) == phrasing.BEFORE_PHRASE
    assert phrasing.rank("express", "train", punctuated=False) == phrasing.PLAIN
    for before, after in (
        ("the", "train"),
        ("twenty", "two"),
        ("$42", "dollars"),
        ("42", "%"),
        ("along", "the"),
    ):
        assert phrasing.rank(before, after, punctuated=False) == 0, (before, after)
    assert phrasing.rank("twenty", None, punctuated=False) == 0  # may continue as a number
    assert phrasing.rank("train", None, punctuated=False) == phrasing.PLAIN
