"""Decide when streamed LLM text is sent to Cartesia, and in which pieces.

Cartesia joins the transcripts of one context verbatim, and with ``max_buffer_delay_ms: 0``
it speaks every input as soon as it arrives, so the client owns the phrasing. Three modes:

* ``clause`` (default, fast path): the first chunk leaves as soon as it can stand alone (a
  sentence end after one word, a clause end after ``min_first_words`` words, or the last
  complete word after an LLM stall of ``first_chunk_stall_s``); after that, whole sentences.
* ``sentence``: whole sentences of at least 20 characters, like the official plugin.
* ``tokens``: everything up to the last word boundary at once; Cartesia's managed buffering
  does the phrasing.

Cuts happen only at whitespace that has already arrived (``"3."`` then ``"14"`` is never cut)
or right after CJK punctuation (``。！？、，；：``, which is not followed by spaces), never inside
an SSML-like tag (``<break time="1s"/>``) or a ``<spell>...</spell>`` element, never after a
known abbreviation (``Dr.``, ``e.g.``) or a list number (``1.``). Newlines end sentences.
Unspeakable text (no letter or digit outside tags) is never sent alone: it is merged into the
next chunk. The official blingfire tokenizer is not reused because it rewrites whitespace.

Whitespace rule: the concatenation of every chunk returned by ``push``, ``poll`` and ``flush``
equals the input with the leading whitespace of the whole input removed, minus the text still
buffered at a ``flush`` when that text is unspeakable (e.g. a lone ``"!"`` or ``"..."`` after the
previous chunk left, or only whitespace): that remainder is dropped. Nothing else is added,
removed or moved; chunks normally end with the whitespace that followed them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

ChunkingMode = Literal["clause", "sentence", "tokens"]
CHUNKING_MODES: tuple[str, ...] = get_args(ChunkingMode)

# clause/sentence send finished text, so any server-side wait only adds latency (Cartesia's
# buffering guide, LiveKit PR #5032). tokens relies on the server to phrase, but 1 s instead of
# the 3 s server default caps the silence when the LLM stalls mid-sentence (pain point 4).
DEFAULT_BUFFER_DELAY_MS: dict[str, int] = {"clause": 0, "sentence": 0, "tokens": 1000}
MAX_BUFFER_DELAY_MS = 5000
SENTENCE_MODE_MIN_CHARS = 20  # the official plugin's blingfire min_sentence_len

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


def count_words(text: str) -> int:
    """Whitespace words holding a letter or digit; each CJK character counts as a word."""
    count = 0
    for token in TAG_RE.sub(" ", text).split():
        cjk = sum(1 for ch in token if is_cjk(ch))
        count += cjk + any(ch.isalnum() and not is_cjk(ch) for ch in token)
    return count


@dataclass(frozen=True)
class ChunkingPolicy:
    """How eagerly text is cut, and the ``max_buffer_delay_ms`` that matches it."""

    mode: ChunkingMode = "clause"
    min_first_words: int = 3
    first_chunk_stall_s: float = 0.25
    max_chunk_chars: int = 300
    max_buffer_delay_ms: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in CHUNKING_MODES:
            raise ValueError(_unknown_mode_message(self.mode))
        if self.min_first_words < 1:
            raise ValueError("min_first_words must be >= 1")
        if not self.first_chunk_stall_s > 0:
            raise ValueError("first_chunk_stall_s must be > 0")
        if self.max_chunk_chars < 1:
            raise ValueError("max_chunk_chars must be >= 1")
        delay = self.max_buffer_delay_ms
        if delay is not None and not 0 <= delay <= MAX_BUFFER_DELAY_MS:
            raise ValueError(f"max_buffer_delay_ms must be within 0..{MAX_BUFFER_DELAY_MS}")

    def buffer_delay_ms(self) -> int:
        """The value to send to Cartesia: the explicit one, else the mode's default."""
        if self.max_buffer_delay_ms is not None:
            return self.max_buffer_delay_ms
        return DEFAULT_BUFFER_DELAY_MS[self.mode]


def _unknown_mode_message(mode: object) -> str:
    return f"unknown chunking mode {mode!r}; expected one of: {', '.join(CHUNKING_MODES)}"


def policy_for(mode_or_policy: str | ChunkingPolicy) -> ChunkingPolicy:
    """Accept a policy or a mode name ("clause", "sentence", "tokens")."""
    if isinstance(mode_or_policy, ChunkingPolicy):
        return mode_or_policy
    name = mode_or_policy.strip().lower() if isinstance(mode_or_policy, str) else mode_or_policy
    if name not in CHUNKING_MODES:
        raise ValueError(_unknown_mode_message(mode_or_policy))
    return ChunkingPolicy(mode=name)  # type: ignore[arg-type]


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


def _raw_cuts(buf: str) -> list[Cut]:
    """Every boundary in buf: after a whitespace run, or after CJK punctuation (+ closers)."""
    cuts: list[Cut] = []
    i, n = 0, len(buf)
    while i < n:
        if buf[i].isspace():
            j = i
            while j < n and buf[j].isspace():
                j += 1
            cuts.append(Cut(j, _kind_before_space(buf, i, j)))
            i = j
        elif buf[i] in CJK_BREAKS:
            j = i + 1
            while j < n and buf[j] in CLOSERS:
                j += 1
            if j == n or not buf[j].isspace():  # else the whitespace run makes the cut
                cuts.append(Cut(j, "sentence" if buf[i] in CJK_SENTENCE_ENDS else "clause"))
            i = j
        else:
            i += 1
    return cuts


def find_cuts(buf: str) -> list[Cut]:
    """Boundaries where buf may be cut: outside tags/spell and leaving a speakable prefix."""
    spans = _protected_spans(buf)
    return [
        cut
        for cut in _raw_cuts(buf)
        if not any(start < cut.end < end for start, end in spans) and is_speakable(buf[: cut.end])
    ]


class TextChunker:
    """Turns pushed LLM tokens into chunks to send; pure and clock-free (``now`` is passed in)."""

    def __init__(self, policy: ChunkingPolicy | str = "clause") -> None:
        self._policy = policy_for(policy)
        self._buffer = ""
        self._seen_text = False
        self._last_token_at: float | None = None
        self._chunks_sent = 0

    @property
    def policy(self) -> ChunkingPolicy:
        return self._policy

    @property
    def chunks_sent(self) -> int:
        return self._chunks_sent

    @property
    def buffered_text(self) -> str:
        """Text received but not returned yet (e.g. to know what a cancel throws away)."""
        return self._buffer

    def push(self, text: str, now: float) -> list[str]:
        """Add an LLM token; return the chunks that are ready to send now."""
        ready = self.poll(now)
        if not self._seen_text:
            text = text.lstrip()
            self._seen_text = bool(text)
        if not text:
            return ready
        self._buffer += text
        self._last_token_at = now
        return ready + self._drain()

    def poll(self, now: float) -> list[str]:
        """Timer callback: the stalled first chunk when its deadline has passed."""
        deadline = self.next_deadline()
        if deadline is None or not now >= deadline:
            return []
        end = self._stall_cut()
        if end is None:
            return []
        return [self._emit(end), *self._drain()]

    def next_deadline(self) -> float | None:
        """When ``poll`` may release a chunk (clause mode's first chunk only), else None."""
        if self._last_token_at is None or self._stall_cut() is None:
            return None
        return self._last_token_at + self._policy.first_chunk_stall_s

    def flush(self) -> list[str]:
        """End of input (or a LiveKit flush): everything buffered, if it is speakable."""
        ready = self._drain()
        rest, self._buffer = self._buffer, ""
        self._last_token_at = None
        if is_speakable(rest):
            self._chunks_sent += 1
            ready.append(rest)
        return ready

    def _emit(self, end: int) -> str:
        chunk, self._buffer = self._buffer[:end], self._buffer[end:]
        self._chunks_sent += 1
        return chunk

    def _drain(self) -> list[str]:
        chunks: list[str] = []
        while (end := self._next_cut()) is not None:
            chunks.append(self._emit(end))
        return chunks

    def _next_cut(self) -> int | None:
        cuts = find_cuts(self._buffer)
        if not cuts:
            return None
        mode = self._policy.mode
        if mode == "tokens":
            return cuts[-1].end
        for cut in cuts:
            if self._is_ready(cut):
                return cut.end
        return self._oversize_cut(cuts)

    def _is_ready(self, cut: Cut) -> bool:
        if self._policy.mode == "sentence":
            long_enough = len(self._buffer[: cut.end].strip()) >= SENTENCE_MODE_MIN_CHARS
            return cut.kind == "sentence" and long_enough
        if self._chunks_sent > 0:
            return cut.kind == "sentence"
        if cut.kind == "clause":
            return count_words(self._buffer[: cut.end]) >= self._policy.min_first_words
        return cut.kind == "sentence"

    def _oversize_cut(self, cuts: list[Cut]) -> int | None:
        """Over max_chunk_chars: the last clause (else word) boundary within the limit."""
        limit = self._policy.max_chunk_chars
        if len(self._buffer) <= limit:
            return None
        within = [cut for cut in cuts if cut.end <= limit]
        if not within:
            return cuts[0].end  # one huge word or tag: cut right after it
        clauses = [cut for cut in within if cut.kind != "word"]
        return (clauses or within)[-1].end

    def _stall_cut(self) -> int | None:
        """Clause mode, first chunk: the last complete word if min_first_words are there."""
        if self._policy.mode != "clause" or self._chunks_sent > 0:
            return None
        cuts = find_cuts(self._buffer)
        if not cuts:
            return None
        end = cuts[-1].end
        if count_words(self._buffer[:end]) < self._policy.min_first_words:
            return None
        return end
