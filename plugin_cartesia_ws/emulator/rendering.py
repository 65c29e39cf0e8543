"""What every emulator voice shares: the ``Rendering`` it returns, and the text split into
words the way Cartesia reports them.

Words are the whitespace tokens of the text exactly as written (punctuation kept), because
the LiveKit plugin re-finds every returned word in the text it sent. Tokens without a letter
or digit are pauses, not words. CJK ideographs and kana are one word each, as Cartesia
splits them.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol

import numpy as np

MIN_SPEED, MAX_SPEED = 0.25, 4.0

_CLAUSE_MARKS = frozenset(",;:、，；：")
_SENTENCE_MARKS = frozenset(".!?…。！？")
_CLOSERS = "\"')]}»”’」』）"
# Hiragana, katakana, CJK ideographs (+ extensions, compatibility), half-width katakana
_CJK_CHARS = (
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_CJK = re.compile(f"[{_CJK_CHARS}]")
_CJK_PIECE = re.compile(f"[{_CJK_CHARS}]|[^{_CJK_CHARS}]+")


@dataclass(frozen=True)
class TimedToken:
    """A word or phoneme; times in seconds from the start of its rendering."""

    text: str
    start: float
    end: float


@dataclass(frozen=True, eq=False)  # eq would compare numpy arrays ambiguously
class Rendering:
    """One synthesized utterance: audio plus word and phoneme timings."""

    samples: np.ndarray  # int16 mono
    sample_rate: int
    words: list[TimedToken]
    phonemes: list[TimedToken]

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


class Voice(Protocol):
    name: str

    def render(
        self, text: str, *, sample_rate: int, speed: float = 1.0, language: str | None = None
    ) -> Rendering: ...


class VoiceUnavailable(RuntimeError):
    """The requested synthesizer cannot run on this machine."""


@dataclass(frozen=True)
class Token:
    start: int  # character offsets into the text
    end: int
    text: str
    is_word: bool  # contains a letter or digit

    @property
    def pause_after(self) -> float:
        """Extra silence the token's trailing punctuation asks for (seconds at speed 1)."""
        tail = self.text.rstrip(_CLOSERS)[-1:]
        if tail in _SENTENCE_MARKS:
            return 0.15
        return 0.08 if tail in _CLAUSE_MARKS else 0.0


def _has_alnum(text: str) -> bool:
    return any(char.isalnum() for char in text)


def _split_cjk(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of text[start:end] with each CJK character on its own.

    Punctuation sticks to a neighbour the way it does for space-separated words: closing
    marks ("。", "」") to the character before, opening ones ("「", "(") to the one after.
    """
    spans: list[tuple[int, int]] = []
    carry: int | None = None  # start of opening punctuation waiting for its character
    for piece in _CJK_PIECE.finditer(text, start, end):
        a, b = piece.span()
        if _has_alnum(piece.group()):
            spans.append((a if carry is None else carry, b))
            carry = None
        elif carry is None and not spans:
            carry = a
        elif carry is None:
            opener = next(
                (i for i in range(a, b) if unicodedata.category(text[i]) in ("Ps", "Pi")), b
            )
            spans[-1] = (spans[-1][0], opener)
            carry = opener if opener < b else None
    if carry is not None:
        spans = [*spans[:-1], (spans[-1][0], end)] if spans else [(carry, end)]
    return spans


def tokenize(text: str) -> list[Token]:
    """Whitespace tokens; inside them each CJK character is a token of its own."""
    tokens: list[Token] = []
    for match in re.finditer(r"\S+", text):
        spans = _split_cjk(text, *match.span()) if _CJK.search(match.group()) else [match.span()]
        tokens.extend(Token(a, b, text[a:b], _has_alnum(text[a:b])) for a, b in spans)
    return tokens


def clamp_speed(speed: float) -> float:
    return 1.0 if math.isnan(speed) else min(MAX_SPEED, max(MIN_SPEED, float(speed)))


def check_rate(sample_rate: int) -> int:
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return int(sample_rate)


def silence(sample_rate: int) -> Rendering:
    """The rendering of a text with nothing to say."""
    return Rendering(np.zeros(0, dtype=np.int16), sample_rate, [], [])
