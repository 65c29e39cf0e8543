"""Properties of TextChunker for any text split into any tokens, in every mode."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin_cartesia_ws import boundaries
from plugin_cartesia_ws.chunking import (
    CJK_BREAKS,
    CLOSERS,
    MAX_SPELL_CHARS,
    TAG_RE,
    ChunkingPolicy,
    TextChunker,
    count_words,
)

SPELL_RE = re.compile(r"<spell>.*?</spell>", re.DOTALL)

FRAGMENTS = [
    '<break time="1s"/>', '<speed ratio="1.5"/>', '<emotion value="sad"/>', "<spell>",
    "</spell>", "<spell>AB 12</spell>", "<break", "Dr.", "e.g.", "U.S.", "3.14", "1,000",
    "$42.50", "555-1234", "...", "!!!", "…", "\n", "\n1. ", "  ", "\t", "🎉", "你好。", "，",
    "—", ", ", ". ", "? ", "」",
]  # fmt: skip
PLAIN = st.text(alphabet=st.sampled_from(list("abZ09 .,!?;:\n\"')<>/=-é你。、")), max_size=12)
TEXT = st.lists(st.one_of(PLAIN, st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=14).map(
    "".join
)
POLICIES = [
    ChunkingPolicy(mode="clause"),
    ChunkingPolicy(mode="clause", min_first_words=1, max_chunk_chars=12),
    ChunkingPolicy(mode="sentence"),
    ChunkingPolicy(mode="sentence", max_chunk_chars=25),
    ChunkingPolicy(mode="tokens"),
]
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in TAG_RE.sub(" ", text))


def split_at(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted(min(cut, len(text)) for cut in cuts), len(text)]
    return [text[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]


def run(policy: ChunkingPolicy, tokens: list[str], data: st.DataObject) -> list[str]:
    """Push every token at a rising clock, with random timer polls in between."""
    chunker = TextChunker(policy)
    chunks: list[str] = []
    now = 0.0
    for token in tokens:
        now += data.draw(st.sampled_from([0.0, 0.01, 0.1, 0.3, 2.0]))
        if data.draw(st.booleans()):
            chunks += chunker.poll(now + data.draw(st.sampled_from([0.0, 0.2, 0.3, 5.0])))
        chunks += chunker.push(token, now)
        deadline = chunker.next_deadline()
        assert deadline is None or deadline >= now
    chunks += chunker.flush()
    assert chunker.chunks_sent == len(chunks)
    assert chunker.buffered_text == ""
    return chunks


def cut_is_allowed(text: str, position: int) -> bool:
    """A chunk may end at whitespace, or right after CJK punctuation (plus closing marks)."""
    if text[position - 1].isspace() or text[position].isspace():
        return True
    before = text[:position].rstrip(CLOSERS)
    return bool(before) and before[-1] in CJK_BREAKS


def inside_protected(text: str, position: int) -> bool:
    tags = [(m.start(), m.end()) for m in TAG_RE.finditer(text)]
    spells = [(m.start(), m.end()) for m in SPELL_RE.finditer(text)]
    spells = [(start, end) for start, end in spells if end - start <= MAX_SPELL_CHARS]
    return any(start < position < end for start, end in tags + spells)


@FAST
@given(
    text=TEXT, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=30), data=st.data()
)
def test_chunks_follow_the_whitespace_rule_and_never_cut_words(
    text: str, cuts: list[int], data: st.DataObject
) -> None:
    policy = data.draw(st.sampled_from(POLICIES))
    chunks = run(policy, split_at(text, cuts), data)

    expected = text.lstrip()
    joined = "".join(chunks)
    assert expected.startswith(joined)
    assert not speakable(expected[len(joined) :]), "only an unspeakable tail may be dropped"
    for chunk in chunks:
        assert chunk.strip() and speakable(chunk)

    position = 0
    for chunk in chunks:
        position += len(chunk)
        if position < len(expected):
            assert cut_is_allowed(expected, position), (expected, chunks)
            assert not inside_protected(expected, position), (expected, chunks)


@FAST
@given(text=TEXT, data=st.data())
def test_tokens_mode_holds_at_most_the_last_word(text: str, data: st.DataObject) -> None:
    chunker = TextChunker("tokens")
    chunks: list[str] = []
    for token in split_at(text, data.draw(st.lists(st.integers(0, len(text)), max_size=20))):
        chunks += chunker.push(token, 0.0)
    held = chunker.buffered_text
    # nothing speakable before the last whitespace is held back, unless a tag/spell is open
    last_space = max((i for i, ch in enumerate(held) if ch.isspace()), default=-1)
    if "<" not in held:
        assert not speakable(held[: last_space + 1])
    assert "".join(chunks) + held == text.lstrip()


WORDY = st.lists(
    st.sampled_from(
        "the a to and but which from twenty two 42 percent dollars table train city book"
        " quickly , . ! 3.14 Dr. e.g. I you".split()
    ),
    max_size=30,
).map(" ".join)
DEADLINE_POLICIES = [
    ChunkingPolicy(),
    ChunkingPolicy(first_chunk_deadline_s=0.05, first_chunk_stall_s=10.0),
    ChunkingPolicy(first_chunk_deadline_s=0.05, deadline_min_words=2, max_chunk_chars=40),
]
NUMERIC = {"twenty", "two", "42", "3.14"}


@FAST
@given(text=WORDY, data=st.data())
def test_a_deadline_cut_has_enough_words_and_never_splits_a_number(
    text: str, data: st.DataObject
) -> None:
    policy = data.draw(st.sampled_from(DEADLINE_POLICIES))
    chunker = TextChunker(policy)
    chunks: list[str] = []
    now = 0.0
    for token in split_at(text, data.draw(st.lists(st.integers(0, len(text)), max_size=30))):
        now += data.draw(st.sampled_from([0.0, 0.01, 0.1]))
        chunks += chunker.poll(now)
        chunks += chunker.push(token, now)
    chunks += chunker.flush()
    joined = "".join(chunks)
    assert text.lstrip().startswith(joined)
    assert not speakable(text.lstrip()[len(joined) :])
    reason = chunker.first_chunk_reason or ""
    if reason.startswith("deadline"):
        first, rest = chunks[0].split(), "".join(chunks[1:]).split()
        assert count_words(chunks[0]) >= policy.deadline_min_words
        assert first[-1].lower() not in {"the", "a", "to", "and", "but", "which", "from", "I"}
        if rest and first[-1].strip(",.!") in NUMERIC:
            assert rest[0] not in NUMERIC | {"percent", "dollars"}


class RescanningChunker(TextChunker):
    """The chunker without its settled scan: every push scans the whole buffer."""

    def _next_cut(self) -> tuple[int, str] | None:
        self._settled = (None, None, 0)
        return super()._next_cut()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(TEXT, WORDY),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=40),
    data=st.data(),
)
def test_scanning_only_the_new_boundaries_changes_no_chunk(
    text: str, cuts: list[int], data: st.DataObject
) -> None:
    """Each push scans only the boundaries after the settled ones (issue 19's CPU): the
    chunks, their timing and every deadline are those of a scan of the whole buffer."""
    no_deadline = [  # a deadline masks the stall time (the earlier of the two is asked)
        ChunkingPolicy(first_chunk_deadline_s=None),
        ChunkingPolicy(first_chunk_deadline_s=None, min_first_words=1, max_chunk_chars=30),
    ]
    policy = data.draw(st.sampled_from(POLICIES + DEADLINE_POLICIES + no_deadline))
    fast, full = TextChunker(policy), RescanningChunker(policy)
    now = 0.0
    for token in split_at(text, cuts):
        now += data.draw(st.sampled_from([0.0, 0.01, 0.1, 0.3]))
        if data.draw(st.booleans()):
            later = now + data.draw(st.sampled_from([0.0, 0.06, 0.3]))
            assert fast.poll(later) == full.poll(later)
        assert fast.push(token, now) == full.push(token, now)
        assert fast.next_deadline() == full.next_deadline()
        assert fast.first_chunk_reason == full.first_chunk_reason
    assert fast.flush() == full.flush()


@pytest.mark.parametrize(
    "tokens",
    [
        ["one two,", " three", " four", " five", " six", " seven", " eight", " nine."],
        ["Sure", ",", " I", " can", " bo", "ok", " that", " ta", "ble", " for", " you", "."],
        ["Well", ",", " if", " you", "  ", "\n", "leave", " now", ",", " fine", "!", " Ok"],
        ["你好", "。", "我们", "，", " 走", "吧", "。", " Then", " more", " words", " here"],
    ],
)
def test_settled_scans_match_full_scans_on_scripted_replies(tokens: list[str]) -> None:
    policies = [*POLICIES, *DEADLINE_POLICIES, ChunkingPolicy(first_chunk_deadline_s=None)]
    for policy in policies:
        fast, full = TextChunker(policy), RescanningChunker(policy)
        for step, token in enumerate(tokens):
            now = step * 0.02
            assert fast.push(token, now) == full.push(token, now), policy
            assert fast.next_deadline() == full.next_deadline(), policy
        assert fast.flush() == full.flush(), policy


@FAST
@given(text=st.one_of(TEXT, WORDY, PLAIN))
def test_a_tagless_buffer_is_cut_as_the_tag_aware_scan_cuts_it(text: str) -> None:
    """iter_cuts skips the tag and spell bookkeeping when there is no "<" (issue 19's CPU)."""
    buf = text.replace("<", "")
    careful = boundaries._iter_cuts(
        buf, 0, boundaries._protected_spans(buf), boundaries._speakable_from(buf)
    )
    assert list(boundaries.iter_cuts(buf)) == list(careful)
