"""Decide when streamed LLM text is sent to Cartesia, and in which pieces.

Cartesia joins the transcripts of one context verbatim, and with ``max_buffer_delay_ms: 0``
it speaks every input as soon as it arrives, so the client owns the phrasing. Three modes:

* ``clause`` (default, fast path): the first chunk leaves as soon as it can stand alone (a
  sentence end after one word, a clause end after ``min_first_words`` words, or the last
  complete word after an LLM stall of ``first_chunk_stall_s``), and never later than
  ``first_chunk_deadline_s`` after the first token: then it is cut at the best phrase
  boundary among the words held (``phrasing.rank``: punctuation, then before a conjunction,
  relative pronoun or preposition, never inside a number or after "the"), with at least
  ``deadline_min_words`` words. After that, whole sentences.
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

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

from .boundaries import (
    _BOUNDARY_RE,
    CJK_BREAKS,
    CLOSERS,
    MAX_SPELL_CHARS,
    TAG_RE,
    Cut,
    _last_cut,
    count_words,
    find_cuts,
    is_cjk,
    is_speakable,
    iter_cuts,
)
from .phrasing import PUNCTUATION, RANK_NAMES, rank

__all__ = [  # the boundaries' vocabulary is re-exported: callers need one module
    "CHUNKING_MODES", "CJK_BREAKS", "CLOSERS", "MAX_SPELL_CHARS", "TAG_RE", "ChunkingMode",
    "ChunkingPolicy", "Cut", "TextChunker", "TokenizerChunker", "count_words", "find_cuts",
    "is_cjk", "is_speakable", "iter_cuts", "policy_for",
]  # fmt: skip

ChunkingMode = Literal["clause", "sentence", "tokens"]
CHUNKING_MODES: tuple[str, ...] = get_args(ChunkingMode)

# clause/sentence send finished text, so any server-side wait only adds latency (Cartesia's
# buffering guide, LiveKit PR #5032). tokens relies on the server to phrase, but 1 s instead of
# the 3 s server default caps the silence when the LLM stalls mid-sentence (pain point 4).
DEFAULT_BUFFER_DELAY_MS: dict[str, int] = {"clause": 0, "sentence": 0, "tokens": 1000}
MAX_BUFFER_DELAY_MS = 5000
SENTENCE_MODE_MIN_CHARS = 20  # the official plugin's blingfire min_sentence_len


@dataclass(frozen=True)
class ChunkingPolicy:
    """How eagerly text is cut, and the ``max_buffer_delay_ms`` that matches it."""

    mode: ChunkingMode = "clause"
    min_first_words: int = 3
    first_chunk_stall_s: float = 0.25
    # The first chunk never waits for its clause longer than this after the first token
    # (clause mode; None = wait for the clause): a 25-word first sentence with no comma
    # would otherwise cost ~500 ms of LLM time before any audio.
    first_chunk_deadline_s: float | None = 0.25
    deadline_min_words: int = 4  # a forced cut never leaves a shorter first chunk
    max_chunk_chars: int = 300
    max_buffer_delay_ms: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in CHUNKING_MODES:
            raise ValueError(_unknown_mode_message(self.mode))
        if self.min_first_words < 1:
            raise ValueError("min_first_words must be >= 1")
        if not self.first_chunk_stall_s > 0:
            raise ValueError("first_chunk_stall_s must be > 0")
        deadline = self.first_chunk_deadline_s
        if deadline is not None and not deadline > 0:
            raise ValueError("first_chunk_deadline_s must be > 0 (or None)")
        if self.deadline_min_words < 1:
            raise ValueError("deadline_min_words must be >= 1")
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


class TextChunker:
    """Turns pushed LLM tokens into chunks to send; pure and clock-free (``now`` is passed in)."""

    def __init__(self, policy: ChunkingPolicy | str = "clause") -> None:
        self._policy = policy_for(policy)
        self._buffer = ""
        self._seen_text = False
        self._last_token_at: float | None = None
        self._first_token_at: float | None = None
        self._chunks_sent = 0
        # Why the first chunk left when it did (for benchmarks and logs): "sentence",
        # "clause", "stall", "flush", "max_chars" or "deadline: <phrasing rank>".
        self.first_chunk_reason: str | None = None
        self._boundary_free = 0  # self._buffer[:this] has no whitespace or CJK punctuation
        # A tagless buffer's final cuts (text follows them): its last and last clause cut, and
        # where the boundaries after them start (``_next_cut``).
        self._settled: tuple[Cut | None, Cut | None, int] = (None, None, 0)
        # _deadline_cut and _stall_cut of the current buffer, keyed by (length, chunks sent):
        # the stream asks for next_deadline on every token until the first chunk leaves.
        self._cut_cache: dict[str, tuple[tuple[int, int], Any]] = {}
        self._deadline_tried: tuple[int, int] | None = None

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
        if self._first_token_at is None:
            self._first_token_at = now
        ready += self._drain()
        return ready + self.poll(now) if self._awaiting_first() else ready

    def poll(self, now: float) -> list[str]:
        """Timer callback (and every push): the first chunk, once its deadline or an LLM
        stall has passed and a cut is allowed."""
        if not self._awaiting_first() or self._last_token_at is None:
            return []
        end: int | None = None
        deadline = self._deadline_at()
        cut = None
        if deadline is not None and now >= deadline:
            cut = self._deadline_cut()
            self._deadline_tried = self._state()
        if cut is not None:
            end, self.first_chunk_reason = cut[0], "deadline: " + RANK_NAMES[cut[1]]
        elif now >= self._last_token_at + self._policy.first_chunk_stall_s:
            end, self.first_chunk_reason = self._stall_cut(), "stall"
        if end is None:
            return []
        return [self._emit(end), *self._drain()]

    def next_deadline(self) -> float | None:
        """When ``poll`` may release a chunk (clause mode's first chunk only), else None.
        A deadline already tried on this text is not returned (only a push can change the
        outcome, and every push polls), so a timer never spins; it is not searched for a
        cut here either: the stream asks this on every token."""
        if not self._awaiting_first() or self._last_token_at is None:
            return None
        stall_at = self._last_token_at + self._policy.first_chunk_stall_s
        deadline = self._deadline_at()
        if deadline is None or self._deadline_tried == self._state():
            deadline = None
        elif deadline <= stall_at:
            return deadline  # the earlier, whether or not a stall cut exists (the usual case)
        return stall_at if self._stall_cut() is not None else deadline

    def _state(self) -> tuple[int, int]:
        """Identifies the buffer: it only grows by pushes and shrinks by sent chunks."""
        return (len(self._buffer), self._chunks_sent)

    def _awaiting_first(self) -> bool:
        return self._policy.mode == "clause" and self._chunks_sent == 0

    def _deadline_at(self) -> float | None:
        limit = self._policy.first_chunk_deadline_s
        if limit is None or self._first_token_at is None:
            return None
        return self._first_token_at + limit

    def _cached(self, name: str, compute: Any) -> Any:
        key = self._state()
        hit = self._cut_cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = compute()
        self._cut_cache[name] = (key, value)
        return value

    def _deadline_cut(self) -> tuple[int, int] | None:
        return self._cached("deadline", self._find_deadline_cut)  # type: ignore[no-any-return]

    def _find_deadline_cut(self) -> tuple[int, int] | None:
        """The best-ranked cut leaving at least ``deadline_min_words`` words (the latest
        among equals: more context for the voice, same latency), or None."""
        best: tuple[int, int] | None = None
        cuts = list(self._cuts())
        words, counted = 0, 0
        for index, cut in enumerate(cuts):
            head = self._buffer[: cut.end]
            words += count_words(self._buffer[counted : cut.end])  # cuts never split a word
            counted = cut.end
            if words < self._policy.deadline_min_words:
                continue
            before = head.split()[-1] if head.split() else ""
            after = None
            if index + 1 < len(cuts):  # the next word is complete only if a cut follows it
                following = self._buffer[cut.end : cuts[index + 1].end].split()
                after = following[0] if following else None
            if cut.kind == "sentence":  # not taken by _drain: e.g. a held-back "1." list
                score = PUNCTUATION
            else:
                score = rank(before, after, punctuated=cut.kind == "clause")
            if score and (best is None or score >= best[1]):
                best = (cut.end, score)
        return best

    def flush(self) -> list[str]:
        """End of input (or a LiveKit flush): everything buffered, if it is speakable."""
        ready = self._drain()
        rest, self._buffer = self._buffer, ""
        self._boundary_free, self._settled = 0, (None, None, 0)
        self._cut_cache.clear()
        self._last_token_at = None
        if is_speakable(rest):
            if self._chunks_sent == 0:
                self.first_chunk_reason = "flush"
            self._chunks_sent += 1
            ready.append(rest)
        return ready

    def _emit(self, end: int, reason: str | None = None) -> str:
        if self._chunks_sent == 0 and reason is not None:
            self.first_chunk_reason = reason
        chunk, self._buffer = self._buffer[:end], self._buffer[end:]
        self._boundary_free, self._settled = max(0, self._boundary_free - end), (None, None, 0)
        self._chunks_sent += 1
        return chunk

    def _cuts(self, scan_from: int = 0) -> Iterator[Cut]:
        """iter_cuts of the buffer from ``scan_from``, skipping its known boundary-free start
        (a long word streamed in many tokens is then not rescanned on every push)."""
        if scan_from <= self._boundary_free:
            boundary = _BOUNDARY_RE.search(self._buffer, self._boundary_free)
            scan_from = self._boundary_free = boundary.start() if boundary else len(self._buffer)
        return iter_cuts(self._buffer, scan_from)

    def _drain(self) -> list[str]:
        chunks: list[str] = []
        while (cut := self._next_cut()) is not None:
            chunks.append(self._emit(*cut))
        return chunks

    def _next_cut(self) -> tuple[int, str] | None:
        """Where the next chunk ends, if one is ready, and why. Over max_chunk_chars without
        a ready cut: the last clause (else word) boundary within the limit, else the first
        after it."""
        if self._policy.mode == "tokens":
            last_cut = _last_cut(self._cuts())
            return (last_cut.end, "word") if last_cut else None
        # Without tags a cut followed by text never changes (and was not ready), so a push
        # scans only the boundaries after it; a tag may close later: then the whole buffer.
        limit, buf = self._policy.max_chunk_chars, self._buffer
        tagless = "<" not in buf
        last, last_clause, scan_from = self._settled if tagless else (None, None, 0)
        for cut in self._cuts(scan_from):
            if cut.end > limit:
                return (last_clause or last or cut).end, "max_chars"
            if self._is_ready(cut):
                return cut.end, cut.kind
            last = cut
            last_clause = cut if cut.kind != "word" else last_clause
            if tagless and cut.end < len(buf):
                self._settled = (last, last_clause, cut.end)
        if last is not None and len(self._buffer) > limit:
            return (last_clause or last).end, "max_chars"
        self._cut_cache["last"] = (self._state(), last)  # the stall cut, without a rescan
        return None

    def _is_ready(self, cut: Cut) -> bool:
        if self._policy.mode == "sentence":
            long_enough = len(self._buffer[: cut.end].strip()) >= SENTENCE_MODE_MIN_CHARS
            return cut.kind == "sentence" and long_enough
        if self._chunks_sent > 0:
            return cut.kind == "sentence"
        if cut.kind == "clause":
            return count_words(self._buffer[: cut.end]) >= self._policy.min_first_words
        return cut.kind == "sentence"

    def _stall_cut(self) -> int | None:
        return self._cached("stall", self._find_stall_cut)  # type: ignore[no-any-return]

    def _find_stall_cut(self) -> int | None:
        """Clause mode, first chunk: the last complete word if min_first_words are there."""
        if not self._awaiting_first():
            return None
        last: Cut | None = self._cached("last", lambda: _last_cut(self._cuts()))
        if last is None:
            return None
        end = last.end
        if count_words(self._buffer[:end]) < self._policy.min_first_words:
            return None
        return end


class TokenizerChunker:
    """The official plugin's way, for a user who passes ``tokenizer=``: a LiveKit
    SentenceTokenizer decides the sentences (anything with ``tokenize(text) -> list[str]``).
    Each complete sentence goes out with a trailing space, like livekit-plugins-cartesia;
    unspeakable sentences are held and merged into the next one."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._buffer = ""
        self._chunks_sent = 0

    @property
    def chunks_sent(self) -> int:
        return self._chunks_sent

    def push(self, text: str, now: float) -> list[str]:
        self._buffer += text
        sentences = self._tokenizer.tokenize(self._buffer)
        if len(sentences) < 2:
            return []
        # The last sentence may still grow; keep it (from its start) in the buffer.
        start = self._buffer.rfind(sentences[-1])
        if start <= 0:  # the tokenizer rewrote the text: wait for the flush
            return []
        ready, self._buffer = self._buffer[:start], self._buffer[start:]
        return self._emit(self._tokenizer.tokenize(ready))

    def poll(self, now: float) -> list[str]:
        return []

    def next_deadline(self) -> float | None:
        return None

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        return self._emit(self._tokenizer.tokenize(rest)) if rest.strip() else []

    def _emit(self, sentences: list[str]) -> list[str]:
        chunks: list[str] = []
        held = ""
        for sentence in sentences:
            held += sentence + " "
            if is_speakable(held):
                chunks.append(held)
                held = ""
        if held and chunks:
            chunks[-1] += held
        self._chunks_sent += len(chunks)
        return chunks
