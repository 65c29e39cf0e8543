"""Map Cartesia's word timestamps onto the exact text that was sent.

Cartesia returns ``{"words", "start", "end"}`` per timestamps message. Words usually echo the
sent text (punctuation kept), CJK often comes one character per entry, numbers may be spelled
out (``use_normalized_timestamps``) and tags may be dropped or kept. The official plugin does
``sent.find(word)`` and, on the first miss, gives up for the rest of the turn (pain point 5).

Here both sides are compared on a *key*: letters and digits only, case-folded, accents and
SSML-like tags removed. A word matches the next key characters of the text, else a match
starting at a word boundary within a small look-ahead window (so alignment recovers at the next
recognisable word). Words that match nothing (``"forty-two"`` for ``"$42.50"``) wait: when a
later word matches, the text skipped meanwhile becomes one ``TimedWord`` spanning their times;
at ``finish()`` the uncovered remainder does. Punctuation-only and tag-fragment words carry no
text and are ignored. Each ``TimedWord.text`` is a slice of the sent text: the word plus what
follows it up to the last whitespace before the next word (so ``"costs "`` then ``"$42.50."``,
and tags between words stay with the word before them). Concatenating every ``TimedWord.text``
from ``align()`` and ``finish()`` gives the sent text exactly. Times are clamped so that
``0 <= start <= end <= next start``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from plugin_cartesia_ws.boundaries import TAG_RE, is_cjk

LOOKAHEAD_CHARS = 48  # key characters a word may skip ahead to find its match
LOOKAHEAD_PER_PENDING = 12  # more room while unmatched words (a spelled-out number) wait
MAX_LOOKAHEAD_CHARS = 400
_SPELL_RE = re.compile(r"<spell>.*?</spell>", re.DOTALL)


@dataclass(frozen=True)
class TimedWord:
    """A slice of the sent text and when it is spoken (seconds from the context's start)."""

    text: str
    start: float
    end: float


@lru_cache(maxsize=8192)
def _fold(ch: str) -> str:
    """One comparable character for ``ch``: base letter without accents, case-folded."""
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if c.isalnum()).casefold()
    if len(base) == 1:
        return base
    folded = ch.casefold()
    return folded if len(folded) == 1 else ch


_ASCII_NOT_ALNUM = {code: None for code in range(128) if not chr(code).isalnum()}


def word_key(word: str) -> str:
    """Letters and digits of a Cartesia word, folded; "" for punctuation or tag fragments."""
    if word.isascii() and "<" not in word and ">" not in word:  # (folding ASCII: lowercase)
        return word.translate(_ASCII_NOT_ALNUM).lower()
    untagged = TAG_RE.sub("", word)
    if "<" in untagged or ">" in untagged:
        return ""
    return "".join(_fold(ch) for ch in untagged if ch.isalnum())


def _seconds(value: object) -> float | None:
    """A usable time in seconds, or None for NaN, infinity and non-numbers."""
    if type(value) is float and 0.0 < value < math.inf:  # the usual case (NaN fails it)
        return value
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(seconds, 0.0)


def _as_list(values: object) -> list[object]:
    if values is None or isinstance(values, str | bytes):
        return []
    try:
        return list(values)  # type: ignore[call-overload]
    except TypeError:
        return []


class TranscriptAligner:
    """Maps Cartesia's word timestamps onto the exact text that was sent."""

    def __init__(self) -> None:
        self._text = ""
        self._cursor = 0  # text[:cursor] has been returned as TimedWords
        self._last_end = 0.0
        self._pending_start: float | None = None
        self._pending_end: float | None = None
        self._pending_count = 0
        self._stream_for = -1  # len(text) the key stream below was built for
        self._keys = ""  # folded letters/digits of the text, outside tags
        self._positions: list[int] = []  # text index of each key character
        self._tagged: list[bool] = []
        self._spelled: list[bool] = []  # inside <spell>: every character is its own word

    @property
    def sent_text(self) -> str:
        return self._text

    @property
    def spoken_offset(self) -> int:
        """Chars of the sent text covered so far; ``sent_text[spoken_offset:]`` is unheard."""
        return self._cursor

    def add_sent_text(self, text: str) -> None:
        """Record a transcript sent on this context (in sending order)."""
        if isinstance(text, str):
            self._text += text

    def align(
        self, words: Iterable[str], starts: Iterable[float], ends: Iterable[float]
    ) -> list[TimedWord]:
        """TimedWords for one timestamps message; never raises, extra array items are ignored."""
        self._refresh_stream()
        aligned: list[TimedWord] = []
        for word, start, end in zip(
            _as_list(words), _as_list(starts), _as_list(ends), strict=False
        ):
            key = word_key(word) if isinstance(word, str) else ""
            if key:
                aligned.extend(self._align_word(key, _seconds(start), _seconds(end)))
        return aligned

    def finish(self, end_time: float | None = None) -> list[TimedWord]:
        """At the context's done: the uncovered remainder (if any) as a last TimedWord."""
        rest = self._text[self._cursor :]
        start, end = self._take_pending()
        self._cursor = len(self._text)
        if not rest:
            return []
        final_end = _seconds(end_time)
        return [self._timed(rest, start, final_end if final_end is not None else end)]

    def _refresh_stream(self) -> None:
        """Rebuild the key stream when text was added (tags may span sent chunks)."""
        if self._stream_for == len(self._text):
            return
        text = self._text
        tagged = [False] * len(text)
        for match in TAG_RE.finditer(text):
            tagged[match.start() : match.end()] = [True] * (match.end() - match.start())
        spelled = [False] * len(text)
        for match in _SPELL_RE.finditer(text):
            spelled[match.start() : match.end()] = [True] * (match.end() - match.start())
        positions = [i for i, ch in enumerate(text) if ch.isalnum() and not tagged[i]]
        self._keys = "".join(_fold(text[i]) for i in positions)
        self._positions = positions
        self._tagged = tagged
        self._spelled = spelled
        self._stream_for = len(text)

    def _align_word(self, key: str, start: float | None, end: float | None) -> list[TimedWord]:
        found = self._find(key)
        if found is None:
            self._add_pending(start, end)
            return []
        first = found
        last = found + len(key) - 1
        positions = self._positions
        word_start = self._split(
            max(self._cursor, positions[first - 1] + 1 if first else 0), positions[first]
        )
        next_key = positions[last + 1] if last + 1 < len(positions) else len(self._text)
        word_end = self._split(positions[last] + 1, next_key)

        timed: list[TimedWord] = []
        skipped = self._text[self._cursor : word_start]
        if self._pending_count and any(ch.isalnum() for ch in skipped):
            pending_start, pending_end = self._take_pending()
            timed.append(self._timed(skipped, pending_start, pending_end))
            self._cursor = word_start
        elif self._pending_count:
            pending_start, _ = self._take_pending()
            start = pending_start if pending_start is not None else start
        timed.append(self._timed(self._text[self._cursor : word_end], start, end))
        self._cursor = word_end
        return timed

    def _find(self, key: str) -> int | None:
        """Key-stream index where ``key`` matches: right at the cursor, else a bit ahead."""
        first = bisect_left(self._positions, self._cursor)
        if self._matches_at(key, first):
            return first
        window = LOOKAHEAD_CHARS + LOOKAHEAD_PER_PENDING * self._pending_count
        stop = first + min(window, MAX_LOOKAHEAD_CHARS) + len(key)
        index = self._keys.find(key, first + 1, stop)
        while index != -1:
            if self._matches_at(key, index):
                return index
            index = self._keys.find(key, index + 1, stop)
        return None

    def _matches_at(self, key: str, index: int) -> bool:
        """``key`` at stream ``index``, starting and ending on word boundaries."""
        if not self._keys.startswith(key, index):
            return False
        return self._is_boundary(index) and self._is_boundary(index + len(key))

    def _is_boundary(self, index: int) -> bool:
        """Stream ``index`` starts a new word: not glued to the previous letter, unless CJK or
        spelled out (Cartesia may return such text one character per word)."""
        if index <= 0 or index >= len(self._positions):
            return True
        before, after = self._positions[index - 1], self._positions[index]
        if after - before > 1 or self._spelled[after]:
            return True
        return is_cjk(self._text[before]) or is_cjk(self._text[after])

    def _split(self, low: int, high: int) -> int:
        """Where text[low:high] (between two words) splits: after its last whitespace."""
        for index in range(high - 1, low - 1, -1):
            if self._text[index].isspace() and not self._tagged[index]:
                return index + 1
        return high

    def _add_pending(self, start: float | None, end: float | None) -> None:
        if self._pending_count == 0:
            self._pending_start = start
        self._pending_end = end if end is not None else self._pending_end
        self._pending_count += 1

    def _take_pending(self) -> tuple[float | None, float | None]:
        times = (self._pending_start, self._pending_end)
        self._pending_start = self._pending_end = None
        self._pending_count = 0
        return times

    def _timed(self, text: str, start: float | None, end: float | None) -> TimedWord:
        """A TimedWord with times clamped to be non-negative and non-decreasing."""
        begin = self._last_end if start is None else max(start, self._last_end)
        finish = begin if end is None else max(end, begin)
        self._last_end = finish
        return TimedWord(text=text, start=begin, end=finish)


class HeardWords:
    """One context's word timings, each held until its audio has been pushed, so the
    transcript never claims a word the listener has not had; ``heard`` is the offset in the
    sent text after the last word let through (where a resume may start)."""

    __slots__ = ("aligner", "held", "_aligned_to", "heard", "any")

    def __init__(self) -> None:
        self.aligner = TranscriptAligner()
        self.held: list[tuple[TimedWord, int]] = []  # (word, text offset after it), unreleased
        self._aligned_to = 0
        self.heard = 0
        self.any = False  # the server sent word timings at all

    @property
    def sent(self) -> str:
        return self.aligner.sent_text

    @property
    def timed_chars(self) -> int:
        """Characters of the sent text the server's word timings have covered so far."""
        return self._aligned_to

    def timed(self, words: list[str], starts: list[float], ends: list[float]) -> None:
        for word in self.aligner.align(words, starts, ends):
            self._aligned_to += len(word.text)
            self.held.append((word, self._aligned_to))
            self.any = True

    def release(self, until: float | None) -> list[TimedWord]:
        """The words whose audio ends by ``until`` seconds (all of them when None)."""
        held, count = self.held, 0
        if until is None:
            count = len(held)
        else:
            while count < len(held) and held[count][0].end <= until:
                count += 1
        ready, self.held = held[:count], held[count:]
        if until is None and self.any:
            ready += [(w, len(self.sent)) for w in self.aligner.finish()]
        if ready:
            self.heard = ready[-1][1]
        return [word for word, _ in ready]

    def covered_until(self, offset: int) -> float | None:
        """The end time of the last held word whose text ends by ``offset``."""
        covered = [word.end for word, end in self.held if end <= offset]
        return covered[-1] if covered else None
