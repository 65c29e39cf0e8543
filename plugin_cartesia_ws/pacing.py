"""Pure: when a turn releases its next text, so that a barge-in pays for little unheard speech.

Cartesia bills every character it is sent, heard or not. The first chunk leaves at once (time
to first audio does not change); after it, text is released only while the audio ahead of
the listener is below ``lead_s``. The listener's position is estimated as LiveKit's own
``SentenceStreamPacer`` does: real time since the first audio frame was pushed. Audio ahead
is the larger of the audio already pushed and the audio the text sent so far will make
(at ``chars_per_s``), minus that elapsed time, so text sent but not yet synthesized counts too.

A chunk leaves once the speech ahead plus its own (estimated) speech fits within the lead, so
what a barge-in leaves unheard but billed is at most the lead; a chunk too long to ever fit
leaves once the speech ahead is down to a floor (a third of the lead). A released batch joins
held chunks while they fit, up to ``max_chars`` (LiveKit's ``max_text_length``), as one
contiguous slice of the reply. Held text often outlives its context at the server
(Cartesia expires one 1 s after its last audio): ``turn.TurnMachine`` then goes on in a new
context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .boundaries import count_words, is_speakable, iter_cuts
from .phrasing import BEFORE_AND_OR, PLAIN, rank

LEARN_AFTER_S = 1.0  # timed speech after which untimed text is estimated at the voice's pace
MIN_CPS, MAX_CPS = 5.0, 40.0  # ... within these bounds (characters per second)
DEFAULT_LEAD_S = 3.0  # chosen in benchmarks/README.md (pacing): no underrun at p99 latency


@dataclass(frozen=True)
class PacingPolicy:
    lead_s: float = DEFAULT_LEAD_S
    max_chars: int = 300
    chars_per_s: float = 20.0  # text not yet synthesized counts as this fast (an upper
    # bound of speech at normal speed: the estimate errs towards releasing early, not late)

    @property
    def floor_s(self) -> float:
        """A chunk too long to fit within the lead leaves once this little speech is ahead
        (time enough for a new context's first audio, with margin)."""
        return self.lead_s / 3


def pacing_policy(text_pacing: object) -> PacingPolicy | None:
    """``text_pacing=`` as the official plugin takes it, on our pacer: True (our defaults),
    False (none), a ``PacingPolicy``, or LiveKit's ``SentenceStreamPacer``, whose
    ``min_remaining_audio`` is our lead and ``max_text_length`` our batch size."""
    if text_pacing is True:
        return PacingPolicy()
    if text_pacing is False or text_pacing is None:
        return None
    if isinstance(text_pacing, PacingPolicy):
        return text_pacing
    options = getattr(text_pacing, "_options", None)  # tts.SentenceStreamPacer
    if options is None or not hasattr(options, "min_remaining_audio"):
        raise TypeError(
            "text_pacing must be True, False, a PacingPolicy or a tts.SentenceStreamPacer, "
            f"not {type(text_pacing).__name__}"
        )
    return PacingPolicy(
        lead_s=float(options.min_remaining_audio), max_chars=int(options.max_text_length)
    )


class Pacer:
    """The chunks a turn holds back, and the clock that releases them."""

    __slots__ = (
        "policy",
        "held",
        "_first_audio_at",
        "_pushed_s",
        "_sent_chars",
        "_timed",
        "_phrase_of",
        "_phrase",
    )

    def __init__(self, policy: PacingPolicy) -> None:
        self.policy = policy
        self.held: list[str] = []
        self._first_audio_at: float | None = None
        self._pushed_s = 0.0
        self._sent_chars = 0
        self._timed: tuple[int, float] | None = None  # (characters, seconds) timed so far
        self._phrase_of: str | None = None  # the held chunk whose first phrase is cached
        self._phrase = 0

    def timed(self, chars: int, seconds: float) -> None:
        """The server's word timings cover this many characters of the text sent, spoken in
        this many seconds: the rest is speech still to come, at the voice's own pace."""
        self._timed = (min(chars, self._sent_chars), seconds)

    def audio(self, seconds: float, now: float) -> None:
        if self._first_audio_at is None:
            self._first_audio_at = now
        self._pushed_s += seconds

    def ahead(self, now: float, *, adding: int = 0) -> float:
        """Seconds of speech the listener has yet to hear, of the text sent so far (and of
        ``adding`` more characters)."""
        started = self._first_audio_at
        return self._made(adding) - (now - started if started is not None else 0.0)

    def take(self, now: float, *, first: bool) -> str | None:
        """The batch to send now, if any (``first``: nothing of the turn was sent yet)."""
        if not self.held:
            return None
        if first:  # the first chunk alone, at once: time to first audio as unpaced
            return self._send(self.held.pop(0))
        due = self.release_at()
        if due is None or now < due - 1e-9:
            return None
        ends = self._phrase_ends()
        batch = ends[0]  # the next phrase: it fits, or the floor is reached
        for end in ends[1:]:
            if not self._fits(end, now):
                break
            batch = end
        if not self._fits(batch, now):  # at the floor, a phrase longer than the room left
            # a phrase that would fit on its own is cut only where a speaker pauses anyway
            alone = self._made(batch) - self._made() <= self.policy.lead_s
            batch = _word_phrase_end(
                self.held[0][:batch],
                lambda end: self._fits(end, now),
                min_rank=BEFORE_AND_OR if alone else PLAIN,
            )
        return self._send(self._pop(batch))

    def _fits(self, end: int, now: float) -> bool:
        return end <= self.policy.max_chars and self.ahead(now, adding=end) <= self.policy.lead_s

    def release_at(self) -> float | None:
        """When held text may leave (None: nothing held, or the clock has not started): once
        the next phrase fits within the lead, or, if it is too long ever to fit, once the
        speech ahead is down to the floor."""
        if not self.held or self._first_audio_at is None:
            return None
        fits = self._made(self._first_phrase()) - self.policy.lead_s
        floor = self._made() - self.policy.floor_s
        return self._first_audio_at + min(fits, floor)

    def _first_phrase(self) -> int:
        chunk = self.held[0]
        if self._phrase_of is not chunk:  # once per held chunk, not per deadline asked
            self._phrase_of, self._phrase = chunk, _phrase_ends(chunk)[0]
        return self._phrase

    def _phrase_ends(self) -> list[int]:
        """Where a batch may end in the held text: phrase and chunk ends, up to max_chars."""
        ends: list[int] = []
        offset = 0
        for chunk in self.held:
            ends += [offset + end for end in _phrase_ends(chunk)]
            offset += len(chunk)
            if offset > self.policy.max_chars:
                break
        return ends

    def _pop(self, length: int) -> str:
        """The first ``length`` characters of the held text, taken out of it."""
        taken = []
        while length > 0:
            chunk = self.held[0]
            if len(chunk) > length:
                self.held[0] = chunk[length:]
                taken.append(chunk[:length])
                break
            taken.append(self.held.pop(0))
            length -= len(chunk)
        return "".join(taken)

    def _send(self, batch: str) -> str:
        self._sent_chars += len(batch)
        return batch

    def _made(self, adding: int = 0) -> float:
        """Seconds of speech in the text sent so far (plus ``adding`` characters): the audio
        pushed, plus the text not yet timed at the voice's pace. Without timings, the audio
        pushed is taken to have spoken the text at ``chars_per_s`` (a slower voice errs
        towards releasing early)."""
        cps, sent = self.policy.chars_per_s, self._sent_chars + adding
        if self._timed is None:
            return max(self._pushed_s, sent / cps)
        chars, seconds = self._timed
        if seconds >= LEARN_AFTER_S:  # the voice's pace, measured on this turn
            cps = min(max(chars / seconds, MIN_CPS), MAX_CPS)
        return self._pushed_s + (sent - chars) / cps


def _phrase_ends(chunk: str) -> list[int]:
    """The ends of a chunk's phrases (clause and sentence boundaries that leave speakable
    text on both sides), and the chunk's own end."""
    ends = [
        cut.end
        for cut in iter_cuts(chunk)
        if cut.kind != "word" and cut.end < len(chunk) and is_speakable(chunk[cut.end :])
    ]
    return [*ends, len(chunk)]


MIN_SPLIT_WORDS = 4  # a long phrase is split only where this many words go first


def _word_phrase_end(phrase: str, fits: Callable[[int], bool], *, min_rank: int) -> int:
    """Where a phrase too long for the room left is cut: the best-ranked word boundary that
    fits (``phrasing.rank``: before a conjunction, relative pronoun, preposition, ...; the
    latest among equals), of at least ``min_rank``, after at least ``MIN_SPLIT_WORDS`` words;
    the whole phrase if none. Each piece is its own intonation unit at the server, so a plain
    boundary ("harbor | as the evening") is taken only for a phrase longer than the lead."""
    cuts = [cut.end for cut in iter_cuts(phrase) if cut.end < len(phrase)]
    best, best_rank = len(phrase), min_rank
    for index, end in enumerate(cuts):
        if not fits(end):
            break
        if count_words(phrase[:end]) < MIN_SPLIT_WORDS:
            continue
        following = phrase[end : cuts[index + 1] if index + 1 < len(cuts) else None].split()
        score = rank(phrase[:end].split()[-1], following[0] if following else None, False)
        if score >= best_rank:
            best, best_rank = end, score
    return best
