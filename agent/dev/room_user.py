"""A person in a LiveKit room, played by a program: the other side of the worker.

`RoomUser` joins with a token (the real `livekit` rtc SDK, WebRTC through the server),
publishes a microphone that carries silence until it is told to say something (an open
mic, in real time, 10 ms frames), records the agent's audio track as it arrives, and
collects what LiveKit sends on the `lk.transcription` text stream and the agent's state.
The room tests, `python -m agent simulate --room` and the room benchmarks use it.

Times are `time.perf_counter()` in this process: "the user stopped speaking" is when the
last voiced frame went to WebRTC, "the agent spoke" is when its first voiced frame came out
of WebRTC's receive path here, as a listener would hear it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import numpy as np
from livekit import rtc

from plugin_cartesia_ws.pulse import Pulse

MIC_RATE = 16000
HEARD_RATE = 24000  # the agent's TTS rate; the receiver resamples Opus' 48 kHz to this
FRAME_MS = 10
VOICED_RMS = 120.0  # int16 RMS of a 10 ms frame above which it counts as speech
TRANSCRIPTION_TOPIC = "lk.transcription"
AGENT_STATE_ATTRIBUTE = "lk.agent.state"


def frame_rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


def voiced_span(pcm: np.ndarray, rate: int) -> tuple[float, float] | None:
    """Seconds from the start of `pcm` to the start of its first and the end of its last
    voiced 10 ms frame; None for silence."""
    hop = rate * FRAME_MS // 1000
    n = len(pcm) // hop
    if n == 0:
        return None
    frames = pcm[: n * hop].astype(np.float64).reshape(n, hop)
    voiced = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > VOICED_RMS)
    if not len(voiced):
        return None
    return voiced[0] * hop / rate, (voiced[-1] + 1) * hop / rate


@dataclass
class Said:
    """One utterance as the microphone sent it."""

    started_at: float  # first frame of it handed to WebRTC
    voice_start: float  # first voiced frame
    voice_end: float  # last voiced frame: "the user stopped speaking"
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Transcript:
    """One transcription segment as the room delivered it (the latest text wins)."""

    identity: str
    segment_id: str
    text: str
    final: bool
    received_at: float


@dataclass
class HeardAudio:
    """The agent's track as received: 10 ms frames and when each arrived."""

    frames: list[np.ndarray] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    voiced: list[bool] = field(default_factory=list)

    def first_voiced_after(self, t: float) -> float | None:
        for at, v in zip(self.times, self.voiced, strict=False):
            if v and at > t:
                return at
        return None

    def last_voiced(self) -> float | None:
        for at, v in zip(reversed(self.times), reversed(self.voiced), strict=False):
            if v:
                return at
        return None

    def pcm_between(self, start: float, end: float) -> np.ndarray:
        picked = [f for f, at in zip(self.frames, self.times, strict=False) if start <= at <= end]
        return np.concatenate(picked) if picked else np.zeros(0, np.int16)


class RoomUser:
    """Use as `async with RoomUser(url, token) as user:`; see the module docstring."""

    def __init__(self, url: str, token: str, *, identity_hint: str = "") -> None:
        self.url = url
        self.token = token
        self.room = rtc.Room()
        self.heard = HeardAudio()
        self.transcripts: dict[tuple[str, str], Transcript] = {}
        self.agent_states: list[tuple[float, str]] = []
        self.agent_identity: str | None = None
        self.changed = Pulse()  # fired on every frame, transcript and state change
        self._source = rtc.AudioSource(MIC_RATE, 1, queue_size_ms=100)
        self._pending: list[tuple[np.ndarray, Said]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._mic_task: asyncio.Task[None] | None = None
        self._closed = False
        self.room.on("track_subscribed", self._on_track_subscribed)
        self.room.on("participant_attributes_changed", self._on_attributes)
        self.room.on("participant_connected", self._on_participant)
        self.room.register_text_stream_handler(TRANSCRIPTION_TOPIC, self._on_text_stream)

    # ------------------------------------------------------------------ lifecycle
    async def connect(self, timeout: float = 20.0) -> RoomUser:
        await asyncio.wait_for(self.room.connect(self.url, self.token), timeout)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        self._mic_task = asyncio.create_task(self._run_mic(), name="room-user-mic")
        for participant in self.room.remote_participants.values():
            self._on_participant(participant)
        return self

    async def aclose(self) -> None:
        self._closed = True
        tasks = [t for t in (self._mic_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.room.disconnect()
        with contextlib.suppress(Exception):
            await self._source.aclose()

    async def __aenter__(self) -> RoomUser:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ speaking
    def say(self, pcm: np.ndarray) -> Said:
        """Queue int16 mono speech at MIC_RATE after what is queued already. The returned
        `Said` is filled in as it plays; `await said.done.wait()` waits for its end."""
        span = voiced_span(pcm, MIC_RATE) or (0.0, len(pcm) / MIC_RATE)
        said = Said(started_at=0.0, voice_start=span[0], voice_end=span[1])
        self._pending.append((pcm.astype(np.int16), said))
        return said

    async def _run_mic(self) -> None:
        """Real-time pacing against the clock (not against capture_frame's back-pressure,
        which lets a whole queue through at once)."""
        per_frame = MIC_RATE * FRAME_MS // 1000
        silence = np.zeros(per_frame, np.int16)
        next_at = time.perf_counter()
        offset = 0
        while not self._closed:
            chunk = silence
            if self._pending:
                pcm, said = self._pending[0]
                if offset == 0:
                    said.started_at = next_at
                    said.voice_start += next_at
                    said.voice_end += next_at
                chunk = pcm[offset : offset + per_frame]
                offset += per_frame
                if offset >= len(pcm):
                    self._pending.pop(0)
                    offset = 0
                    said.done.set()
                if len(chunk) < per_frame:
                    chunk = np.concatenate([chunk, silence[: per_frame - len(chunk)]])
            await self._source.capture_frame(
                rtc.AudioFrame(chunk.tobytes(), MIC_RATE, 1, per_frame)
            )
            next_at += FRAME_MS / 1000
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the microphone's own clock
            elif delay < -0.2:  # the loop stalled: do not burst to catch up
                next_at = time.perf_counter()

    # ------------------------------------------------------------------ listening
    def _on_participant(self, participant: rtc.RemoteParticipant) -> None:
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            self.agent_identity = participant.identity
            self._on_attributes({}, participant)

    def _on_attributes(self, changed: dict[str, str], participant: rtc.Participant) -> None:
        state = participant.attributes.get(AGENT_STATE_ATTRIBUTE)
        if state and (not self.agent_states or self.agent_states[-1][1] != state):
            self.agent_states.append((time.perf_counter(), state))
            self.changed.fire()

    def _on_track_subscribed(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO:
            return
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            self.agent_identity = participant.identity
        self._spawn(self._record(track))

    async def _record(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream.from_track(track=track, sample_rate=HEARD_RATE, num_channels=1)
        try:
            async for event in stream:
                pcm = np.frombuffer(event.frame.data, dtype=np.int16).copy()
                self.heard.frames.append(pcm)
                self.heard.times.append(time.perf_counter())
                self.heard.voiced.append(frame_rms(pcm) > VOICED_RMS)
                self.changed.fire()
        finally:
            await stream.aclose()

    def _on_text_stream(self, reader: rtc.TextStreamReader, identity: str) -> None:
        self._spawn(self._read_transcript(reader, identity))

    async def _read_transcript(self, reader: rtc.TextStreamReader, identity: str) -> None:
        attributes = reader.info.attributes or {}
        segment = attributes.get("lk.segment_id", reader.info.stream_id)
        text = ""
        try:
            async for chunk in reader:
                text += chunk
                self._put_transcript(identity, segment, text, final=False)
        except rtc.StreamError:  # the sender left mid-stream: keep what came, not final
            return
        final = (reader.info.attributes or attributes).get("lk.transcription_final") == "true"
        self._put_transcript(identity, segment, text, final=final)

    def _put_transcript(self, identity: str, segment: str, text: str, *, final: bool) -> None:
        self.transcripts[(identity, segment)] = Transcript(
            identity, segment, text, final, time.perf_counter()
        )
        self.changed.fire()

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ waiting
    async def wait_until(self, condition: object, timeout: float) -> None:
        """Wait until `condition()` holds, re-checked on every frame/transcript/state."""
        await self.changed.wait_until(condition, timeout)  # type: ignore[arg-type]

    async def wait_for_agent(self, timeout: float = 30.0) -> str:
        await self.wait_until(lambda: self.agent_identity is not None, timeout)
        assert self.agent_identity is not None
        return self.agent_identity

    async def wait_for_agent_state(self, state: str, *, after: float, timeout: float) -> float:
        """The time the agent entered `state` at or after `after`."""

        def entered() -> float | None:
            for at, s in self.agent_states:
                if s == state and at >= after:
                    return at
            return None

        await self.wait_until(lambda: entered() is not None, timeout)
        found = entered()
        assert found is not None
        return found

    async def wait_for_agent_audio(self, *, after: float, timeout: float) -> float:
        """The arrival time of the first voiced agent frame after `after`."""
        await self.wait_until(lambda: self.heard.first_voiced_after(after) is not None, timeout)
        found = self.heard.first_voiced_after(after)
        assert found is not None
        return found

    async def wait_for_reply_end(self, *, after: float, timeout: float) -> float:
        """Wait for the agent to go back to listening after `after`; the arrival time of
        the last voiced frame before that (the end of the reply as heard)."""
        await self.wait_for_agent_state("listening", after=after, timeout=timeout)
        await self.wait_for_quiet(timeout=timeout)
        last = self.heard.last_voiced()
        assert last is not None
        return last

    async def wait_for_quiet(self, *, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until the agent's track has carried no voiced frame for `quiet` seconds of
        received audio (counted in frames, so a stalled receiver does not pass for quiet)."""
        needed = int(quiet * 1000 / FRAME_MS)

        def quiet_now() -> bool:
            tail = self.heard.voiced[-needed:]
            return len(tail) == needed and not any(tail)

        await self.wait_until(quiet_now, timeout)

    def transcript_of(self, identity: str) -> list[Transcript]:
        """`identity`'s transcription segments in the order they started arriving."""
        return [t for (who, _), t in self.transcripts.items() if who == identity]


# ---------------------------------------------------------------------- matching audio
def envelope(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Log energy per 10 ms frame: what survives a lossy codec (Opus keeps the loudness
    contour of speech, not its exact waveform)."""
    hop = rate * FRAME_MS // 1000
    n = len(pcm) // hop
    frames = pcm[: n * hop].astype(np.float64).reshape(n, hop)
    return np.log10(1.0 + np.sqrt((frames**2).mean(axis=1)))


def envelope_similarity(
    heard: np.ndarray, sent: np.ndarray, rate: int, max_lag_s: float = 0.5
) -> float:
    """Best normalized correlation (Pearson) of the two envelopes over lags up to
    `max_lag_s`, on their overlap: ~1 for the same speech, far lower for other speech."""
    a, b = envelope(heard, rate), envelope(sent, rate)
    best = -1.0
    max_lag = int(max_lag_s * 1000 / FRAME_MS)
    for lag in range(-max_lag, max_lag + 1):
        x = a[lag:] if lag >= 0 else a
        y = b if lag >= 0 else b[-lag:]
        n = min(len(x), len(y))
        if n < 20:
            continue
        x, y = x[:n], y[:n]
        if x.std() == 0 or y.std() == 0:
            continue
        best = max(best, float(np.corrcoef(x, y)[0, 1]))
    return best
