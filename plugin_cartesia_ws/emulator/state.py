"""What one emulator instance knows across its sockets: config, keys, voice, faults, records.

Records are what tests and benchmarks assert on: every frame a context received, when its
cancel arrived, how many audio bytes it sent (with a SHA-256 of them, so a client can prove
it got exactly that audio without the emulator keeping megabytes around), and what it was
billed. ``Spend`` adds the bill up per socket and in total, as Cartesia bills: about one
credit per character of transcript the service took, whether its audio was heard or the
context was cancelled.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..pulse import Pulse
from .contexts import ConcurrencyGate, ContextRules
from .faults import FaultBook
from .messages import DEFAULT_VERSION, Catalogue
from .pacing import LatencyModel
from .voices import Rendering, Voice, make_voice

DEV_API_KEY = "sk_car_emulator_dev_key"
# Above this many characters a rendering runs in a thread, so one long reply does not hold
# up the other contexts' chunk timing.
_THREAD_RENDER_CHARS = 400


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    profile: str = "plain"  # the profile its defaults came from (profiles.py)
    voice: str | Voice = "tone"  # "tone" (deterministic) | "espeak" | "auto" | a Voice
    api_keys: tuple[str, ...] = (DEV_API_KEY,)
    accept_any_key: bool = False
    latency: LatencyModel = field(default_factory=LatencyModel)
    rules: ContextRules = field(default_factory=ContextRules)
    catalogue: Catalogue = field(default_factory=Catalogue)
    default_version: str = DEFAULT_VERSION
    idle_timeout_s: float = 300.0
    max_sockets_per_key: int | None = None
    max_contexts_per_key: int | None = None
    record_audio: bool = False
    max_records: int = 10_000  # oldest context records are forgotten past this (long runs)
    # TLS (https/wss): a certificate made on the fly (kept in tls_dir if given, else in a
    # temporary directory), or the given tls_cert/tls_key files.
    tls: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_dir: str | None = None


@dataclass
class TurnAudio:
    """Every byte of audio sent for one turn's contexts, in order (for integrity checks)."""

    bytes: int = 0
    sha: Any = field(default_factory=hashlib.sha256)


@dataclass
class ContextRecord:
    context_id: str
    key: str
    socket_id: int
    received: list[dict[str, Any]] = field(default_factory=list)
    event_types: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    cancel_received_at: float | None = None  # time.monotonic()
    first_chunk_at: float | None = None
    chunks_sent: int = 0
    chunks_after_cancel: int = 0
    audio_bytes: int = 0
    audio: bytearray | None = None
    billed_chars: int = 0  # characters of transcript the service took for this context
    phase: str = "open"  # its lifecycle phase: open, ending, done, cancelled, expired
    done_delay_s: float | None = None  # how late its done was held back (late_done, profiles)
    _sha: Any = field(default_factory=hashlib.sha256, repr=False)
    # the audio of the whole turn this context belongs to: a client that goes on in a new
    # context (named ``<first>-r<n>``, as plugin_cartesia_ws does) continues the first's
    turn: TurnAudio | None = field(default=None, repr=False)

    def add_audio(self, audio: bytes, keep: bool) -> None:
        if self.first_chunk_at is None:
            self.first_chunk_at = time.monotonic()
        self.chunks_sent += 1
        if self.cancel_received_at is not None:
            self.chunks_after_cancel += 1
        self.audio_bytes += len(audio)
        self._sha.update(audio)
        if self.turn is not None:
            self.turn.bytes += len(audio)
            self.turn.sha.update(audio)
        if keep:
            if self.audio is None:
                self.audio = bytearray()
            self.audio += audio

    @property
    def audio_sha256(self) -> str:
        return str(self._sha.hexdigest())

    @property
    def turn_audio_sha256(self) -> str:
        """The audio of this context's turn over all its contexts (a paced or resumed turn
        goes on in ``<id>-r<n>``): what the listener of a completed turn got."""
        return self.turn.sha.hexdigest() if self.turn else self.audio_sha256

    @property
    def done_sent(self) -> bool:
        return "done" in self.event_types

    @property
    def transcript(self) -> str:
        return "".join(str(m.get("transcript", "")) for m in self.received if "transcript" in m)

    @property
    def cancelled(self) -> bool:
        return self.cancel_received_at is not None

    def summary(self) -> dict[str, Any]:
        return {
            "context_id": self.context_id,
            "socket_id": self.socket_id,
            "received": self.received,
            "event_types": self.event_types,
            "errors": self.errors,
            "cancel_received_at": self.cancel_received_at,
            "first_chunk_at": self.first_chunk_at,
            "chunks_sent": self.chunks_sent,
            "chunks_after_cancel": self.chunks_after_cancel,
            "audio_bytes": self.audio_bytes,
            "audio_sha256": self.audio_sha256,
            "turn_audio_bytes": self.turn.bytes if self.turn else self.audio_bytes,
            "turn_audio_sha256": self.turn_audio_sha256,
            "done_sent": self.done_sent,
            "transcript": self.transcript,
            "billed_chars": self.billed_chars,
            "phase": self.phase,
            "done_delay_s": self.done_delay_s,
        }


@dataclass(frozen=True)
class Spend:
    """Characters billed (Cartesia: ~1 credit each): in total, per WebSocket (by socket id),
    per context (those still in the records) and over the HTTP endpoints."""

    total: int
    by_socket: dict[int, int]
    by_context: dict[str, int]
    http: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_socket": {str(k): v for k, v in self.by_socket.items()},
            "by_context": self.by_context,
            "http": self.http,
        }


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.voice: Voice = (
            make_voice(config.voice) if isinstance(config.voice, str) else config.voice
        )
        self.faults = FaultBook()
        self.records: dict[str, ContextRecord] = {}
        self.tokens: dict[str, float] = {}
        self.stats: Counter[str] = Counter()
        self.socket_versions: dict[int, str] = {}  # socket id -> its Cartesia-Version
        self.open_sockets_by_key: Counter[str] = Counter()
        self.billed_by_socket: Counter[int] = Counter()
        self._gates: dict[str, ConcurrencyGate] = {}
        self._socket_ids = 0
        self.changes = Pulse()  # fired on every server-side change (records, sockets)

    # ------------------------------------------------------------ auth and limits
    def is_authorized(self, key: str | None) -> bool:
        if not key:
            return False
        if self.config.accept_any_key or key in self.config.api_keys:
            return True
        expiry = self.tokens.get(key)
        return expiry is not None and expiry > time.time()

    def gate_for(self, key: str) -> ConcurrencyGate:
        if key not in self._gates:
            self._gates[key] = ConcurrencyGate(self.config.max_contexts_per_key)
        return self._gates[key]

    def next_socket_id(self) -> int:
        self._socket_ids += 1
        return self._socket_ids

    def socket_opened(self, key: str) -> None:
        self.stats["sockets_opened"] += 1
        self.open_sockets_by_key[key] += 1
        self.changed()

    def socket_closed(self, key: str) -> None:
        self.stats["sockets_closed"] += 1
        self.open_sockets_by_key[key] -= 1
        self.changed()

    @property
    def open_sockets(self) -> int:
        return sum(self.open_sockets_by_key.values())

    # ------------------------------------------------------------ synthesis
    async def render(
        self, text: str, *, sample_rate: int, speed: float, language: str | None
    ) -> Rendering:
        if len(text) > _THREAD_RENDER_CHARS:
            return await asyncio.to_thread(
                self.voice.render, text, sample_rate=sample_rate, speed=speed, language=language
            )
        return self.voice.render(text, sample_rate=sample_rate, speed=speed, language=language)

    @staticmethod
    def scale_volume(rendering: Rendering, volume: float) -> Rendering:
        scaled = np.clip(rendering.samples.astype(np.float64) * volume, -32768, 32767)
        return Rendering(
            samples=scaled.astype(np.int16),
            sample_rate=rendering.sample_rate,
            words=rendering.words,
            phonemes=rendering.phonemes,
        )

    # ------------------------------------------------------------ records
    def record_for(self, context_id: str, key: str, socket_id: int) -> ContextRecord:
        record = self.records.get(context_id)
        if record is None:
            record = self.records[context_id] = ContextRecord(context_id, key, socket_id)
            first = self.records.get(re.sub(r"-r\d+$", "", context_id))
            record.turn = first.turn if first is not None and first.turn else TurnAudio()
            if len(self.records) > self.config.max_records:
                del self.records[next(iter(self.records))]  # dicts keep insertion order
        return record

    def record_event(self, context_id: str, event: dict[str, Any]) -> None:
        record = self.records.get(context_id)
        if record is None:
            return
        kind = str(event.get("type"))
        if kind != "chunk":  # chunks are counted in add_audio; keep the list short
            record.event_types.append(kind)
        if kind == "error":
            record.errors.append(event)
        self.changed()

    def reset_records(self) -> None:
        self.records.clear()
        self.stats.clear()
        self.billed_by_socket.clear()

    # ------------------------------------------------------------ spend
    def bill(self, record: ContextRecord | None, characters: int) -> None:
        """Characters the service took: on a socket's context, or (None) over HTTP."""
        if characters <= 0:
            return
        self.stats["billed_chars"] += characters
        if record is None:
            self.stats["billed_chars_http"] += characters
        else:
            record.billed_chars += characters
            self.billed_by_socket[record.socket_id] += characters
        self.changed()

    def spend(self) -> Spend:
        return Spend(
            total=self.stats["billed_chars"],
            by_socket=dict(self.billed_by_socket),
            by_context={k: r.billed_chars for k, r in self.records.items() if r.billed_chars},
            http=self.stats["billed_chars_http"],
        )

    def changed(self) -> None:
        """Wake everyone waiting in ``wait_for`` to re-check their condition."""
        self.changes.fire()

    def snapshot(self) -> dict[str, Any]:
        return {
            "sockets_opened": self.stats["sockets_opened"],
            "sockets_closed": self.stats["sockets_closed"],
            "open_sockets": self.open_sockets,
            "handshakes": self.stats["handshakes"],
            "handshakes_refused": self.stats["handshakes_refused"],
            "idle_closes": self.stats["idle_closes"],
            "billed_chars": self.stats["billed_chars"],
            "contexts": len(self.records),
            "active_contexts": {k: g.active for k, g in self._gates.items()},
            "faults": [f.to_dict() for f in self.faults.all()],
        }
