"""Pure: how far a context's ``flush_done`` receipts may be believed.

After each chunk the turn sends a flush; Cartesia answers ``flush_done`` with an id, and its
audio chunks carry the id of the flush they belong to (spec 2.6). If the server counted
only our flushes, receipt k would prove that every sample of the text before our flush k
has arrived. The real service also flushes on its own at input boundaries and numbers
those too (livekit/agents#5321), so an id can name a flush we never sent. A receipt is
therefore evidence, not proof: it is believed only while the ids stay in lockstep with
ours, and the first id out of step ends belief in this context's receipts for good.

In step means: receipt ids arrive as 1, 2, 3, ... and never beyond the flushes we sent;
receipt k comes after audio that carried flush id k (a speakable chunk always has audio);
and audio carries the id of the one flush window still open: k + 1 after receipt k (an id
at or below k reopens a closed window; one above k + 1 skipped a receipt).

| state | event | next |
|---|---|---|
| OFF | anything | OFF (no flushes asked: a buffering policy, or an API version without them) |
| UNPROVEN | receipt in step | TRUSTED |
| UNPROVEN, TRUSTED | receipt or audio id out of step | DISTRUSTED |
| TRUSTED | receipt in step | TRUSTED |
| DISTRUSTED | anything | DISTRUSTED |

A server that never sends ``flush_done`` shows it by audio of window 2 before receipt 1 (or
by audio with no id), and its receipts are distrusted from then on: nothing is awaited from
it, so a pause of the LLM is not mistaken for a stall. API versions without ``flush_done``
get no flushes at all (``options.FIRST_RECEIPTS_VERSION``).
"""

from __future__ import annotations

from enum import Enum


class Trust(Enum):
    OFF = "off"
    UNPROVEN = "unproven"
    TRUSTED = "trusted"
    DISTRUSTED = "distrusted"


class ReceiptLedger:
    """Our flushes of one context and the receipts that answered them."""

    __slots__ = ("trust", "marks", "answered", "audio_id")

    def __init__(self, asked: bool) -> None:
        self.trust = Trust.UNPROVEN if asked else Trust.OFF
        self.marks: list[int] = []  # our flush k -> length of the context's text at flush k
        self.answered = 0  # receipts in step so far
        self.audio_id = 0  # the flush id of the latest audio (a caller may skip audio() for it)

    @property
    def asking(self) -> bool:
        return self.trust is not Trust.OFF

    def flushed(self, text_length: int) -> bool:
        """Record a flush after ``text_length`` characters; False when that text is flushed."""
        if self.marks and self.marks[-1] == text_length:
            return False
        self.marks.append(text_length)
        return True

    def audio(self, flush_id: int | None) -> None:
        """Audio of flush window ``flush_id`` arrived (None: the server did not say)."""
        if flush_id == self.audio_id or self.trust is Trust.OFF:
            return  # the hot path: most chunks repeat the id before them
        self.audio_id = flush_id or 0
        if flush_id != self.answered + 1:
            self._distrust()

    def receipt(self, flush_id: int | None) -> None:
        if self.trust not in (Trust.UNPROVEN, Trust.TRUSTED):
            return
        expected = self.answered + 1
        if flush_id != expected or expected > len(self.marks) or self.audio_id != expected:
            self._distrust()
            return
        self.answered = expected
        self.trust = Trust.TRUSTED

    def _distrust(self) -> None:
        if self.trust is not Trust.OFF:
            self.trust = Trust.DISTRUSTED

    @property
    def proven(self) -> int:
        """Characters of the context's text whose audio has all arrived, by receipt."""
        if self.trust is not Trust.TRUSTED or not self.answered:
            return 0
        return self.marks[self.answered - 1]

    @property
    def awaited(self) -> bool:
        """A receipt is owed (and, until shown otherwise, the server sends them)."""
        return self.trust in (Trust.UNPROVEN, Trust.TRUSTED) and self.answered < len(self.marks)

    def all_in(self, text_length: int) -> bool:
        return self.trust is Trust.TRUSTED and self.proven == text_length
