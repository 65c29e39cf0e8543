"""One Cartesia context of a turn: the frames sent on it, and how much of it was heard.

A turn spans several contexts when it resumes, or goes on after a ``done`` or a possible
expiry. Each keeps its own receipts, word alignment and PCM joint, and places its audio
and word timings on the turn's timeline by ``time_offset``. ``turn.TurnMachine`` decides
when a context is opened, sent on and closed; this module only keeps its record.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from . import protocol
from . import turn_outputs as ops
from .alignment import HeardWords, TimedWord
from .audio import PcmJoiner
from .receipts import ReceiptLedger


@dataclass(eq=False)
class TurnContext:
    id: str
    time_offset: float  # audio of the turn before this context, in seconds
    options: protocol.ContextOptions
    ledger: ReceiptLedger
    pcm: PcmJoiner
    last_event_at: float  # the context's last server event (at first: when it was opened)
    words: HeardWords = field(default_factory=HeardWords)
    opened: bool = False  # a frame went out: the server knows it
    pushed_s: float = 0.0  # audio pushed to the listener
    last_send_at: float = -1.0  # text or end frame (a flush alone owes no audio)

    @property
    def sent(self) -> str:
        return self.words.sent

    @property
    def quiet_since(self) -> float:
        return max(self.last_event_at, self.last_send_at)

    def heard(self) -> int:
        """Characters of ``sent`` proven heard, by word timings or believed receipts."""
        return max(self.words.heard, self.ledger.proven)

    @functools.cached_property
    def _frames(self) -> protocol.ContextFrames:  # (a context that never sends builds none)
        return protocol.ContextFrames(self.options.base(self.id))

    def audio(self, chunk: protocol.Chunk) -> bytes:
        """The chunk's PCM, joined at whole samples (raises ``binascii.Error``)."""
        if chunk.flush_id != self.ledger.audio_id:  # (most chunks repeat the one before)
            self.ledger.audio(chunk.flush_id)
        if not chunk.data:
            return b""
        return self.pcm.join(protocol.decode_audio(chunk.data))  # lenient, then strict

    def send_text(self, chunk: str, now: float) -> list[ops.Output]:
        """A generation frame, and the receipt's flush when the turn asks for receipts."""
        self.words.aligner.add_sent_text(chunk)
        self.opened, self.last_send_at = True, now
        sent: list[ops.Output] = [ops.Send(self._frames.generation(chunk), self.id)]
        return sent + self.flush_frame() if self.ledger.asking else sent

    def flush_frame(self) -> list[ops.Output]:
        if not self.opened or not self.ledger.flushed(len(self.sent)):
            return []  # nothing sent, or that text is flushed already
        return [ops.Send(self._frames.flush, self.id)]

    def end_frames(self, now: float) -> list[ops.Output]:
        self.last_send_at = now
        flush = self.flush_frame() if self.ledger.asking else []
        return [*flush, ops.Send(self._frames.end, self.id)]

    def close(self) -> ops.Output:
        return ops.Cancel(self.id) if self.opened else ops.Release(self.id)

    def release_words(self, until: float | None) -> list[ops.Output]:
        """Words whose audio has been pushed (all of them when ``until`` is None)."""
        words, shift = self.words.release(until), self.time_offset
        if not words:
            return []
        if not shift:  # the turn's first context: its times are the turn's
            return [ops.Words(tuple(words))]
        return [ops.Words(tuple(TimedWord(w.text, w.start + shift, w.end + shift) for w in words))]

    def phonemes(self, event: protocol.PhonemeTimestamps) -> list[ops.Output]:
        pt, shift = event.phoneme_timestamps, self.time_offset
        if pt is None:
            return []
        items = zip(pt.phonemes, pt.start, pt.end, strict=False)
        return [ops.Phonemes(tuple((p, s + shift, e + shift) for p, s, e in items))]
