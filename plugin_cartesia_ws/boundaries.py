"""Where streamed text may be cut: boundaries outside tags, spell elements, abbreviations,
list numbers and numbers still arriving, and what counts as speakable and as a word. Pure
string logic, shared by the chunking policies (``chunking``) and the aligner (``alignment``)."""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterator
from typing import NamedTuple

# A tag or spell element longer than this is treated as plain text, so a malformed "<spell>"
# cannot hold back the whole reply.
MAX_TAG_CHARS = 100
MAX_SPELL_CHARS = 200
TAG_NAMES = ("break", "speed", "volume", "emotion", "spell")
_NAME = "(?:" + "|".join(TAG_NAMES) + r")(?![\w-])"
TAG_RE = re.compile(rf"</?{_NAME}[^<>]{{0,{MAX_TAG_CHARS - 10}}}>")
_OPEN_TAG_RE = re.compile(rf"</?{_NAME}[^<>]{{0,{MAX_TAG_CHARS - 10}}}\Z")
SPELL_OPEN, SPELL_CLOSE = "<spell>", "</spell>"

LATIN_SENTENCE_ENDS = frozenset(".!?…")
CJK_SENTENCE_ENDS = frozenset("。！？")
CJK_CLAUSE_ENDS = frozenset("、，；：")
CJK_BREAKS = CJK_SENTENCE_ENDS | CJK_CLAUSE_ENDS  # cut right after these, no space needed
CLAUSE_ENDS = frozenset(",;:—–") | CJK_CLAUSE_ENDS
CLOSERS = "\"')]}»”’」』）】"
_OPENERS = "\"'([{«“‘¿¡「『（【"
ABBREVIATIONS = frozenset(
    "dr mr mrs ms mx prof sr jr st mt vs approx dept fig gen lt col sgt capt rev".split()
)
_INITIALS_RE = re.compile(r"(?:[^\W\d_]\.)+")
_LIST_MARKER_RE = re.compile(r"\d{1,3}[.)]")
_ALNUM_RE = re.compile(r"[^\W_]")
_BOUNDARY_RE = re.compile(r"\s+|[" + "".join(sorted(CJK_BREAKS)) + "][" + re.escape(CLOSERS) + "]*")


def is_speakable(text: str) -> bool:
    """True if ``text`` has a letter or digit outside SSML-like tags (Cartesia can say it)."""
    return any(ch.isalnum() for ch in TAG_RE.sub(" ", text))


def is_cjk(ch: str) -> bool:
    """Han and kana: scripts written without spaces, one character is roughly one word."""
    code = ord(ch)
    return (
        0x3040 <= code <= 0x30FF
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x2FFFF
    )


_ASCII_WORD_RE = re.compile(r"\S*[A-Za-z0-9]\S*")


def count_words(text: str) -> int:
    """Whitespace words holding a letter or digit; each CJK character counts as a word."""
    if "<" in text:
        text = TAG_RE.sub(" ", text)
    if text.isascii():  # the common case, without a Python loop over characters
        return len(_ASCII_WORD_RE.findall(text))
    count = 0
    for token in text.split():
        cjk = sum(1 for ch in token if is_cjk(ch))
        count += cjk + any(ch.isalnum() and not is_cjk(ch) for ch in token)
    return count


class Cut(NamedTuple):
    """A place where a chunk may end: ``buffer[:end]``; kind is sentence, clause or word."""

    end: int
    kind: str


def _protected_spans(buf: str) -> list[tuple[int, float]]:
    """Spans (start, end) no cut may fall strictly inside: tags and spell elements."""
    spans: list[tuple[int, float]] = [(m.start(), m.end()) for m in TAG_RE.finditer(buf)]
    if open_tag := _OPEN_TAG_RE.search(buf):
        spans.append((open_tag.start(), math.inf))
    start = buf.find(SPELL_OPEN)
    while start != -1:
        close = buf.find(SPELL_CLOSE, start + len(SPELL_OPEN))
        end = close + len(SPELL_CLOSE) if close != -1 else len(buf)
        if end - start <= MAX_SPELL_CHARS:
            spans.append((start, end if close != -1 else math.inf))
        start = buf.find(SPELL_OPEN, start + 1)
    return spans


def _is_abbreviation(word: str) -> bool:
    core = word.lstrip(_OPENERS).lower()
    if not core.endswith("."):
        return False
    return core[:-1] in ABBREVIATIONS or _INITIALS_RE.fullmatch(core) is not None


def _is_list_marker(buf: str, word_start: int, word: str) -> bool:
    """ "1." at a line start (or the buffer start) numbers a list item; it ends nothing."""
    if not _LIST_MARKER_RE.fullmatch(word):
        return False
    before = buf[:word_start]
    return not before.strip() or "\n" in before[len(before.rstrip()) :]


def _kind_before_space(buf: str, space_start: int, space_end: int) -> str:
    """Classify the boundary formed by the whitespace run buf[space_start:space_end]."""
    if "\n" in buf[space_start:space_end]:
        return "sentence"
    word_start = space_start
    while word_start > 0 and not buf[word_start - 1].isspace():
        word_start -= 1
    word = buf[word_start:space_start]
    core = word.rstrip(CLOSERS)
    if not core:
        return "word"
    last = core[-1]
    if last in LATIN_SENTENCE_ENDS or last in CJK_SENTENCE_ENDS:
        if _is_abbreviation(core) or _is_list_marker(buf, word_start, core):
            return "word"
        return "sentence"
    return "clause" if last in CLAUSE_ENDS else "word"


def _speakable_from(buf: str) -> int:
    """Length of the shortest speakable prefix of buf (``len(buf) + 1`` if there is none)."""
    position = 0
    while match := _ALNUM_RE.search(buf, position):
        tag_start = buf.rfind("<", 0, match.start())
        tag = TAG_RE.match(buf, tag_start) if tag_start != -1 else None
        if tag is None or tag.end() <= match.start():
            return match.start() + 1
        position = tag.end()
    return len(buf) + 1


def _cut_at(buf: str, boundary: re.Match[str]) -> Cut | None:
    """The cut a boundary match makes: after a whitespace run or after CJK punctuation."""
    start, end = boundary.span()
    if buf[start].isspace():
        return Cut(end, _kind_before_space(buf, start, end))
    if end < len(buf) and buf[end].isspace():
        return None  # the whitespace run that follows makes the cut
    return Cut(end, "sentence" if buf[start] in CJK_SENTENCE_ENDS else "clause")


def iter_cuts(buf: str, scan_from: int = 0) -> Iterator[Cut]:
    """Boundaries where buf may be cut, in order: outside tags and spell elements, and
    leaving a speakable prefix. Lazy, so callers stop scanning at the first cut they take.
    ``scan_from``: buf[:scan_from] is known to hold no whitespace or CJK punctuation."""
    if "<" in buf:
        return _iter_cuts(buf, scan_from, _protected_spans(buf), _speakable_from(buf))
    first = _ALNUM_RE.search(buf)  # no tag or spell element: nothing is protected
    return _iter_cuts(buf, scan_from, [], first.start() + 1 if first else len(buf) + 1)


def _iter_cuts(
    buf: str, scan_from: int, spans: list[tuple[int, float]], speakable_from: int
) -> Iterator[Cut]:
    for boundary in _BOUNDARY_RE.finditer(buf, scan_from):
        cut = _cut_at(buf, boundary)
        if cut is None or cut.end < speakable_from:
            continue
        if not spans or not any(start < cut.end < end for start, end in spans):
            yield cut


def find_cuts(buf: str) -> list[Cut]:
    """All the cuts of ``iter_cuts``."""
    return list(iter_cuts(buf))


def _last_cut(cuts: Iterator[Cut]) -> Cut | None:
    last = deque(cuts, maxlen=1)
    return last[0] if last else None
