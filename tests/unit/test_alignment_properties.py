"""Properties of TranscriptAligner for any sent text, any chunking and any word lists."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin_cartesia_ws.alignment import TimedWord, TranscriptAligner, word_key

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FRAGMENTS = [
    '<break time="1s"/>', "<spell>AB 1</spell>", "<spell>", "$42.50", "22.5", "你好。", " ",
    "\n", "...", "Dr.", "é", "Ｆ",
]  # fmt: skip
ANY_TEXT = st.lists(st.one_of(st.text(max_size=8), st.sampled_from(FRAGMENTS)), max_size=12).map(
    "".join
)
ANY_TIME = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.floats(min_value=0, max_value=60)
)
WORD_CHARS = st.sampled_from(list("abcXYZ019éß你好ＦΣ.,!?'\"-—…。、$%()"))
TOKEN = st.text(alphabet=WORD_CHARS, min_size=1, max_size=6)
SPACE = st.text(alphabet=st.sampled_from([" ", "\n", "\t", "\u3000"]), min_size=1, max_size=3)


def split_at(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted(min(cut, len(text)) for cut in cuts), len(text)]
    return [text[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]


def check_times(timed: list[TimedWord]) -> None:
    previous_end = 0.0
    for word in timed:
        assert math.isfinite(word.start) and math.isfinite(word.end)
        assert previous_end <= word.start <= word.end
        previous_end = word.end


@st.composite
def spaced_text(draw: st.DrawFn, speakable_tokens_only: bool) -> tuple[str, list[str]]:
    """Text made of tokens and whitespace; returns (text, its whitespace tokens)."""
    token = TOKEN.filter(lambda t: bool(word_key(t))) if speakable_tokens_only else TOKEN
    tokens = draw(st.lists(token, max_size=15))
    text = draw(st.one_of(st.just(""), SPACE))
    for item in tokens:
        text += item + draw(SPACE)
    if tokens and draw(st.booleans()):
        text = text.rstrip()
    return text, text.split()


@FAST
@given(text=ANY_TEXT, cuts=st.lists(st.integers(0, 100), max_size=8), data=st.data())
def test_any_words_any_times_cover_the_sent_text_exactly(
    text: str, cuts: list[int], data: st.DataObject
) -> None:
    aligner = TranscriptAligner()
    timed: list[TimedWord] = []
    offsets = [0]
    for chunk in split_at(text, cuts):
        aligner.add_sent_text(chunk)
        for _ in range(data.draw(st.integers(0, 2))):
            words = data.draw(st.lists(st.one_of(st.text(max_size=6), TOKEN), max_size=6))
            starts = data.draw(st.lists(ANY_TIME, max_size=7))
            ends = data.draw(st.lists(ANY_TIME, max_size=7))
            timed += aligner.align(words, starts, ends)
            offsets.append(aligner.spoken_offset)
    timed += aligner.finish(data.draw(st.one_of(st.none(), ANY_TIME)))

    assert "".join(word.text for word in timed) == text == aligner.sent_text
    assert all(word.text for word in timed)
    assert offsets == sorted(offsets)
    assert aligner.spoken_offset == len(text)
    check_times(timed)


@FAST
@given(sample=spaced_text(speakable_tokens_only=True), data=st.data())
def test_true_tokens_align_one_to_one(sample: tuple[str, list[str]], data: st.DataObject) -> None:
    text, words = sample
    aligner = TranscriptAligner()
    ends_of_words = _token_ends(text)
    sent = 0
    timed: list[TimedWord] = []
    index = 0
    while index < len(words):
        batch = data.draw(st.integers(1, 4))
        upto = min(index + batch, len(words))
        need = ends_of_words[upto - 1]
        if sent < need:  # send at least through the batch's last word, maybe more
            more = data.draw(st.integers(need, len(text)))
            aligner.add_sent_text(text[sent:more])
            sent = more
        starts = [0.1 * i for i in range(index, upto)]
        timed += aligner.align(words[index:upto], starts, [s + 0.1 for s in starts])
        index = upto

    assert [word.text.strip() for word in timed] == words
    for word, token in zip(timed, words, strict=True):
        assert word.text.strip().startswith(token)
    aligner.add_sent_text(text[sent:])
    rest = aligner.finish()
    assert "".join(word.text for word in timed + rest) == text
    assert all(not word.text.strip() for word in rest)
    check_times(timed + rest)


@FAST
@given(sample=spaced_text(speakable_tokens_only=False))
def test_punctuation_only_tokens_ride_along_with_a_neighbour(
    sample: tuple[str, list[str]],
) -> None:
    text, words = sample
    aligner = TranscriptAligner()
    aligner.add_sent_text(text)
    timed = aligner.align(
        words, [float(i) for i in range(len(words))], [i + 0.5 for i in range(len(words))]
    )
    speakable = [word for word in words if word_key(word)]
    assert len(timed) == len(speakable)
    for word, token in zip(timed, speakable, strict=True):
        assert [t for t in word.text.split() if word_key(t)] == [token]
    rest = aligner.finish()
    assert "".join(word.text for word in timed + rest) == text


def _token_ends(text: str) -> list[int]:
    ends, index = [], 0
    for token in text.split():
        index = text.index(token, index) + len(token)
        ends.append(index)
    return ends
