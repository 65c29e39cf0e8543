"""Pure: when a turn releases its next text, so that a barge-in pays for little unheard speech.

Cartesia bills every character it is sent, heard or not. The first chunk leaves at once (time
to first audio does not change); after it, text is released only while the audio ahead of
the listener is below ``lead_s``. The listener's position is estimated as LiveKit's own
``SentenceStreamPacer`` does: real time since the first audio frame was pushed. Audio ahead
is the larger of the audio already pushed and the audio the text sent so far will make
(at ``chars_per_s``), minus that elapsed time, so text sent but not yet synthesized counts too.

A released batch joins held chunks up to ``max_chars`` (LiveKit's ``max_text_length``), as
one contiguous slice of the reply. Held text often outlives its context at the server
(Cartesia expires one 1 s after its last audio): ``turn.TurnMachine`` then goes on in a new
context.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LEAD_S = 3.0  # chosen in benchmarks/README.md (pacing): no underrun at p99 latency


@dataclass(frozen=True)
class PacingPolicy:
    lead_s: float = DEFAULT_LEAD_S
    max_chars: int = 300
    chars_per_s: float = 20.0  # text not yet synthesized counts as this fast (an upper
    # bound of speech at normal speed: the estimate errs towards releasing early, not late)


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

    __slots__ = ("policy", "held", "_first_audio_at", "_pushed_s", "_sent_chars")

    def __init__(self, policy: PacingPolicy) -> None:
        self.policy = policy
        self.held: list[str] = []
        self._first_audio_at: float | None = None
        self._pushed_s = 0.0
        self._sent_chars = 0

    def audio(self, seconds: float, now: float) -> None:
        if self._first_audio_at is None:
            self._first_audio_at = now
        self._pushed_s += seconds

    def ahead(self, now: float) -> float:
        """Seconds of speech the listener has yet to hear, of the text sent so far."""
        started = self._first_audio_at
        return self._made() - (now - started if started is not None else 0.0)

    def take(self, now: float, *, first: bool) -> str | None:
        """The batch to send now, if any (``first``: nothing of the turn was sent yet)."""
        if not self.held or (not first and self.ahead(now) > self.policy.lead_s + 1e-9):
            return None  # (at release_at() itself it leaves: a tick then always makes way)
        batch = self.held.pop(0)
        while self.held and len(batch) + len(self.held[0]) <= self.policy.max_chars:
            if first:
                break  # the first chunk alone: time to first audio as unpaced
            batch += self.held.pop(0)
        self._sent_chars += len(batch)
        return batch

    def release_at(self) -> float | None:
        """When held text may leave (None: nothing held, or the clock has not started)."""
        if not self.held or self._first_audio_at is None:
            return None
        return self._first_audio_at + self._made() - self.policy.lead_s

    def _made(self) -> float:
        """Seconds of speech in the text sent so far: pushed, or estimated if more."""
        return max(self._pushed_s, self._sent_chars / self.policy.chars_per_s)
