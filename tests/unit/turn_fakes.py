"""A pure fake Cartesia for ``TurnMachine`` tests: it answers the frames the machine sends
with events in a chosen order, and its "audio" is the spoken text itself (UTF-16LE, one
16-bit sample per character), so what the listener heard can be read back as text."""

from __future__ import annotations

import base64
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from plugin_cartesia_ws import protocol
from plugin_cartesia_ws.chunking import TextChunker
from plugin_cartesia_ws.turn import TurnConfig, TurnMachine
from plugin_cartesia_ws.turn_outputs import (
    Audio,
    Cancel,
    Failed,
    Finished,
    Linger,
    Output,
    Reconnect,
    Release,
    Send,
    Words,
)

SAMPLE_RATE = 100  # one sample per character: a word lasts tens of milliseconds
OPTIONS = protocol.ContextOptions(
    model="sonic-3",
    voice="v",
    encoding="pcm_s16le",
    sample_rate=SAMPLE_RATE,
    language="en",
    max_buffer_delay_ms=0,
)
TimingOrder = Literal["with_audio", "before_audio", "per_generation", "none"]
Receipts = Literal["ours", "auto", "never"]


def machine(*, receipts: bool = True, timeout: float = 1.0, chunker=None) -> TurnMachine:  # type: ignore[no-untyped-def]
    return TurnMachine(
        TurnConfig(OPTIONS, timeout=timeout, receipts=receipts),
        chunker or TextChunker("sentence"),
        "ctx",
        now=0.0,
    )


def chunk(context_id: str, text: str, flush_id: int | None = 1) -> protocol.Chunk:
    data = base64.b64encode(text.encode("utf-16-le")).decode()
    return protocol.Chunk(
        context_id=context_id,
        data=data,
        done=False,
        status_code=206,
        step_time=1.0,
        type="chunk",
        flush_id=flush_id,
    )


def timestamps(context_id: str, words: list[str], starts: list[float], ends: list[float]):  # type: ignore[no-untyped-def]
    return protocol.Timestamps.model_validate(
        {
            "type": "timestamps",
            "context_id": context_id,
            "done": False,
            "status_code": 206,
            "word_timestamps": {"words": words, "start": starts, "end": ends},
        }
    )


def flush_done(context_id: str, flush_id: int) -> protocol.FlushDone:
    return protocol.FlushDone(
        context_id=context_id,
        flush_done=True,
        flush_id=flush_id,
        done=False,
        status_code=206,
        type="flush_done",
    )


def done(context_id: str) -> protocol.Done:
    return protocol.Done(context_id=context_id, done=True, status_code=200, type="done")


def heard_text(pcm: bytes) -> str:
    return pcm.decode("utf-16-le")


@dataclass
class FakeContext:
    """``receipts``: "ours" answers our flushes; "auto" also flushes (and numbers a
    flush_done) at every input, as the real service does; "never" sends no flush_done."""

    id: str
    timings: TimingOrder
    send_done: bool = True
    receipts: Receipts = "ours"
    events: deque[object] = field(default_factory=deque)
    flushes: int = 0  # the server's flush counter: audio carries flushes + 1
    seconds: float = 0.0  # this context's audio timeline
    ended: bool = False
    texts: list[str] = field(default_factory=list)

    def receive(self, frame: dict) -> None:
        text = frame.get("transcript") or ""
        if text:
            self.texts.append(text)
        generation: list[object] = []
        timing: tuple[list[str], list[float], list[float]] = ([], [], [])
        for word in text.split(" "):
            if not word:
                continue
            spoken = word + " "
            start = self.seconds
            self.seconds += len(spoken) / SAMPLE_RATE
            generation.append(chunk(self.id, spoken, self.flushes + 1))
            timing[0].append(word)
            timing[1].append(start)
            timing[2].append(self.seconds)
            if self.timings == "with_audio":
                generation.append(timestamps(self.id, [word], [start], [self.seconds]))
        if timing[0] and self.timings == "before_audio":
            generation.insert(0, timestamps(self.id, *timing))
        if timing[0] and self.timings == "per_generation":
            generation.append(timestamps(self.id, *timing))
        self.events.extend(generation)
        if text and self.receipts == "auto":
            self.flushes += 1
            self.events.append(flush_done(self.id, self.flushes))
        if frame.get("flush"):
            self.flushes += 1
            if self.receipts != "never":
                self.events.append(flush_done(self.id, self.flushes))
        if frame.get("continue") is False and not self.ended:
            self.ended = True
            if self.send_done:
                self.events.append(done(self.id))


class FakeServer:
    """Every context the machine opened, and what is still to be sent for each."""

    def __init__(
        self,
        timings: TimingOrder = "with_audio",
        send_done: bool = True,
        receipts: Receipts = "ours",
    ) -> None:
        self.timings = timings
        self.send_done = send_done
        self.receipts = receipts
        self.contexts: dict[str, FakeContext] = {}
        self.cancelled: set[str] = set()

    def receive(self, raw: str) -> None:
        frame = json.loads(raw)
        cid = frame["context_id"]
        if frame.get("cancel"):
            self.cancelled.add(cid)
            return
        ctx = self.contexts.setdefault(
            cid, FakeContext(cid, self.timings, self.send_done, self.receipts)
        )
        ctx.receive(frame)

    def next_event(self, context_id: str) -> object | None:
        ctx = self.contexts.get(context_id)
        if ctx is None or context_id in self.cancelled or not ctx.events:
            return None
        return ctx.events.popleft()


class Harness:
    """Applies a machine's outputs to a FakeServer and records what the listener got."""

    def __init__(self, turn: TurnMachine, server: FakeServer) -> None:
        self.turn = turn
        self.server = server
        self.audio = bytearray()
        self.words: list[str] = []
        self.opened: set[str] = set()
        self.closed: set[str] = set()
        self.reconnects: list[bool] = []  # replace_socket of each Reconnect
        self.connect_pending = False
        self.finished: Finished | None = None
        self.failed: Failed | None = None
        self.audio_after_end = False

    def apply(self, outputs: list[Output]) -> list[Output]:
        for out in outputs:
            if self.finished or self.failed:
                self.audio_after_end |= isinstance(out, Audio)
            if isinstance(out, Send):
                self.server.receive(out.frame)
                self.opened.add(json.loads(out.frame)["context_id"])
            elif isinstance(out, Audio):
                self.audio += out.pcm
            elif isinstance(out, Words):
                self.words += [w.text for w in out.words]
            elif isinstance(out, Release | Cancel | Linger):
                self.closed.add(out.context_id)
                if isinstance(out, Cancel):
                    self.server.receive(json.dumps({"context_id": out.context_id, "cancel": True}))
            elif isinstance(out, Reconnect):
                self.reconnects.append(out.replace_socket)
                self.connect_pending = True
            elif isinstance(out, Finished):
                self.finished = out
            elif isinstance(out, Failed):
                self.failed = out
        return outputs

    @property
    def heard(self) -> str:
        return heard_text(bytes(self.audio))

    def step(self, now: float) -> bool:
        """Deliver the current context's next event; False when there is none."""
        if self.turn.finished:
            return False  # a lingering context's done is the socket's, not the turn's
        if self.connect_pending:
            self.connect_pending = False
            self.apply(self.turn.connected(now))
            return True
        event = self.server.next_event(self.turn.context_id)
        if event is None:
            return False
        self.apply(self.turn.server(event, now))
        return True
