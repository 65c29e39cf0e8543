"""The LiveKit adapter: ``TTS`` (options, warm socket), ``SynthesizeStream`` (one agent turn =
one Cartesia context) and ``synthesize()``.

A turn's text goes out as soon as the chunking policy allows; its audio comes back on the
shared socket and is pushed to LiveKit as 16-bit PCM. Closing a stream before ``done``
(barge-in) cancels the context on the server and drops its late frames; the socket stays
for the next turn.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import weakref
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
from livekit.agents import (
    APIConnectionError,
    APIError,
    APIConnectOptions,
    APIStatusError,
    APITimeoutError,
    tokenize,
    tts,
    utils,
)
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import aio, is_given
from livekit.agents.voice.io import TimedString

from . import protocol
from .alignment import TranscriptAligner
from .audio import ENCODINGS, SAMPLE_RATES, PcmDecoder
from .chunking import ChunkingPolicy, TextChunker, policy_for
from .connection import CartesiaSocket, ContextEvents, SocketPool
from .log import logger
from .models import (
    DEFAULT_API_VERSION,
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    IDLE_REFRESH_S,
    ChunkingMode,
    TTSDefaultVoiceId,
    TTSEncoding,
    TTSModels,
    TTSVoiceEmotion,
    TTSVoiceSpeed,
)
from .version import __version__

USER_AGENT = f"plugin-cartesia-ws/{__version__}"
# Marker put in a context's queue when the sender has something to say about the turn.
_NUDGE = object()  # "I just sent text: re-arm the watchdog"
_NOTHING_TO_SAY = object()  # the turn's text had nothing speakable; no context was opened


@dataclass
class _TTSOptions:
    model: str
    voice: str
    language: str | None
    encoding: str
    sample_rate: int
    speed: float | str | None
    emotion: tuple[str, ...]
    volume: float | None
    word_timestamps: bool
    add_phoneme_timestamps: bool
    use_normalized_timestamps: bool
    pronunciation_dict_id: str | None
    chunking: ChunkingPolicy
    api_key: str = field(repr=False)
    base_url: str
    api_version: str

    def context_options(self) -> protocol.ContextOptions:
        return protocol.ContextOptions(
            model=self.model,
            voice=self.voice,
            encoding=self.encoding,
            sample_rate=self.sample_rate,
            language=self.language,
            max_buffer_delay_ms=self.chunking.buffer_delay_ms(),
            speed=self.speed,
            emotion=self.emotion,
            volume=self.volume,
            word_timestamps=self.word_timestamps,
            add_phoneme_timestamps=self.add_phoneme_timestamps,
            use_normalized_timestamps=self.use_normalized_timestamps,
            pronunciation_dict_id=self.pronunciation_dict_id,
        )

    def ws_url(self) -> str:
        base = self.base_url.rstrip("/").replace("http", "ws", 1)
        return f"{base}/tts/websocket?cartesia_version={self.api_version}"


@dataclass
class TurnStats:
    """What one turn did, for logs, tests and benchmarks."""

    context_id: str
    socket_reused: bool = False
    chunks_sent: int = 0
    first_text_sent_at: float | None = None  # time.perf_counter()
    first_audio_at: float | None = None
    first_step_time_ms: float | None = None
    audio_bytes: int = 0
    cancelled: bool = False
    done: bool = False

    @property
    def time_to_first_audio(self) -> float | None:
        if self.first_text_sent_at is None or self.first_audio_at is None:
            return None
        return self.first_audio_at - self.first_text_sent_at


class TTS(tts.TTS):
    """Cartesia streaming TTS over one warm WebSocket; a drop-in for
    ``livekit.plugins.cartesia.TTS`` (same keyword arguments) plus ``chunking``."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: TTSModels | str = DEFAULT_MODEL,
        language: str | None = "en",
        encoding: TTSEncoding | str = "pcm_s16le",
        voice: str = TTSDefaultVoiceId,
        speed: TTSVoiceSpeed | float | None = None,
        emotion: TTSVoiceEmotion | str | list[TTSVoiceEmotion | str] | None = None,
        volume: float | None = None,
        sample_rate: int = 24000,
        word_timestamps: bool = True,
        add_phoneme_timestamps: bool = False,
        use_normalized_timestamps: bool = False,
        pronunciation_dict_id: str | None = None,
        http_session: aiohttp.ClientSession | None = None,
        tokenizer: NotGivenOr[tokenize.SentenceTokenizer] = NOT_GIVEN,
        text_pacing: tts.SentenceStreamPacer | bool = False,
        base_url: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        chunking: ChunkingMode | ChunkingPolicy = "clause",
        max_buffer_delay_ms: int | None = None,
        idle_refresh_s: float = IDLE_REFRESH_S,
    ) -> None:
        """Keyword arguments as in livekit-plugins-cartesia, plus:

        chunking: "clause" (default: first clause as early as it can stand alone, then
            whole sentences), "sentence" (what the official plugin does) or "tokens"
            (every LLM token at once, Cartesia buffers), or a ChunkingPolicy.
        max_buffer_delay_ms: override what we tell Cartesia (default: the policy's).
        idle_refresh_s: reopen a socket idle this long before Cartesia's 5-minute close.
        ``tokenizer`` and ``text_pacing`` are accepted for compatibility; chunking
        decides what is sent when.
        """
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, not {encoding!r}")
        if sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample_rate must be one of {SAMPLE_RATES}, not {sample_rate!r}")
        key = api_key or os.environ.get("CARTESIA_API_KEY")
        if not key:
            raise ValueError(
                "Cartesia API key is required: pass api_key= or set CARTESIA_API_KEY "
                "(for the local emulator use its key, see README)"
            )
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True, aligned_transcript=word_timestamps),
            sample_rate=sample_rate,
            num_channels=1,
        )
        policy = policy_for(chunking)
        if max_buffer_delay_ms is not None:
            policy = replace(policy, max_buffer_delay_ms=max_buffer_delay_ms)
        if isinstance(emotion, str):
            emotion = [emotion]
        self._opts = _TTSOptions(
            model=model,
            voice=voice,
            language=language or None,
            encoding=encoding,
            sample_rate=sample_rate,
            speed=speed,
            emotion=tuple(emotion or ()),
            volume=volume,
            word_timestamps=word_timestamps,
            add_phoneme_timestamps=add_phoneme_timestamps,
            use_normalized_timestamps=use_normalized_timestamps,
            pronunciation_dict_id=pronunciation_dict_id,
            chunking=policy,
            api_key=key,
            base_url=base_url or os.environ.get("CARTESIA_BASE_URL") or DEFAULT_BASE_URL,
            api_version=api_version,
        )
        self._session = http_session
        self._own_session: aiohttp.ClientSession | None = None
        self._tokenizer = tokenizer
        self._text_pacing = text_pacing
        self._pool = SocketPool(self._connect, idle_refresh_s=idle_refresh_s)
        self._streams: weakref.WeakSet[SynthesizeStream] = weakref.WeakSet()
        self._warned_no_timestamps = False

    def __repr__(self) -> str:
        return f"plugin_cartesia_ws.TTS(model={self._opts.model!r}, base_url={self._opts.base_url!r})"

    @property
    def model(self) -> str:
        return self._opts.model

    @property
    def provider(self) -> str:
        return "Cartesia"

    @property
    def pool(self) -> SocketPool:
        return self._pool

    # ------------------------------------------------------------ connection
    def _http_session(self) -> aiohttp.ClientSession:
        if self._session is not None:
            return self._session
        try:
            return utils.http_context.http_session()
        except RuntimeError:  # outside a job (tests, scripts): our own session
            if self._own_session is None or self._own_session.closed:
                self._own_session = aiohttp.ClientSession()
            return self._own_session

    async def _connect(self, timeout: float) -> CartesiaSocket:
        headers = {
            "X-API-Key": self._opts.api_key,
            "Cartesia-Version": self._opts.api_version,
            "User-Agent": USER_AGENT,
        }
        try:
            ws = await asyncio.wait_for(
                self._http_session().ws_connect(self._opts.ws_url(), headers=headers, heartbeat=None),
                timeout,
            )
        except TimeoutError:
            raise APITimeoutError(f"connecting to Cartesia timed out after {timeout:.1f}s") from None
        except aiohttp.WSServerHandshakeError as exc:
            raise protocol.handshake_error(exc.status) from None
        except aiohttp.ClientResponseError as exc:
            raise protocol.handshake_error(exc.status) from None
        except Exception as exc:  # transport errors may carry URLs and headers: keep only the type
            raise APIConnectionError(f"cannot reach Cartesia ({type(exc).__name__})") from None
        request_id = ws._response.headers.get("X-Request-Id") if ws._response else None
        logger.debug("Cartesia WebSocket connected", extra={"cartesia_request_id": request_id})
        return CartesiaSocket(ws, request_id)

    def prewarm(self) -> None:
        """Open the socket now (AgentSession calls this when the agent starts)."""
        self._pool.prewarm()

    # ------------------------------------------------------------ options
    def update_options(
        self,
        *,
        model: NotGivenOr[TTSModels | str] = NOT_GIVEN,
        language: NotGivenOr[str | None] = NOT_GIVEN,
        voice: NotGivenOr[str] = NOT_GIVEN,
        speed: NotGivenOr[TTSVoiceSpeed | float | None] = NOT_GIVEN,
        emotion: NotGivenOr[TTSVoiceEmotion | str | list[TTSVoiceEmotion | str] | None] = NOT_GIVEN,
        volume: NotGivenOr[float | None] = NOT_GIVEN,
        pronunciation_dict_id: NotGivenOr[str | None] = NOT_GIVEN,
        add_phoneme_timestamps: NotGivenOr[bool] = NOT_GIVEN,
        use_normalized_timestamps: NotGivenOr[bool] = NOT_GIVEN,
        api_version: NotGivenOr[str] = NOT_GIVEN,
        chunking: NotGivenOr[ChunkingMode | ChunkingPolicy] = NOT_GIVEN,
    ) -> None:
        """Takes effect at the next turn (a new context); a running turn keeps its options."""
        opts = self._opts
        if is_given(model):
            opts.model = model
        if is_given(language):
            opts.language = language or None
        if is_given(voice):
            opts.voice = voice
        if is_given(speed):
            opts.speed = speed
        if is_given(emotion):
            opts.emotion = tuple([emotion] if isinstance(emotion, str) else (emotion or ()))
        if is_given(volume):
            opts.volume = volume
        if is_given(pronunciation_dict_id):
            opts.pronunciation_dict_id = pronunciation_dict_id
        if is_given(add_phoneme_timestamps):
            opts.add_phoneme_timestamps = add_phoneme_timestamps
        if is_given(use_normalized_timestamps):
            opts.use_normalized_timestamps = use_normalized_timestamps
        if is_given(chunking):
            opts.chunking = policy_for(chunking)
        if is_given(api_version) and api_version != opts.api_version:
            opts.api_version = api_version
            self._pool.invalidate()  # the version is fixed per socket

    # ------------------------------------------------------------ streams
    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> SynthesizeStream:
        stream = SynthesizeStream(tts=self, conn_options=conn_options)
        self._streams.add(stream)
        return stream

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        """Whole text at once, over the same warm socket (one context)."""
        return self._synthesize_with_stream(text, conn_options=conn_options)

    async def aclose(self) -> None:
        for stream in list(self._streams):
            await stream.aclose()
        self._streams.clear()
        await self._pool.aclose()
        if self._own_session is not None:
            await self._own_session.close()


@dataclass
class _SendState:
    """Shared between a turn's sender and receiver."""

    sent_any: bool = False
    ended: bool = False
    last_send_at: float = 0.0


class SynthesizeStream(tts.SynthesizeStream):
    """One agent turn = one Cartesia context on the shared socket."""

    def __init__(self, *, tts: TTS, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._tts: TTS = tts
        self._opts = replace(tts._opts)
        self.stats: TurnStats | None = None
        self.phoneme_timestamps: list[tuple[str, float, float]] = []

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        context_id = utils.shortuuid("lkctx_")
        stats = self.stats = TurnStats(context_id)
        output_emitter.initialize(
            request_id=context_id,
            sample_rate=self._opts.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            stream=True,
        )
        socket, reused = await self._tts._pool.acquire(self._conn_options.timeout)
        self._acquire_time = self._tts._pool.last_acquire_time
        self._connection_reused = stats.socket_reused = reused
        events = socket.open_context(context_id)
        state = _SendState()
        aligner = TranscriptAligner()
        sender = asyncio.create_task(
            self._send_text(socket, events, state, aligner), name="cartesia-send"
        )
        try:
            await self._receive_audio(events, state, aligner, output_emitter, stats)
        except asyncio.CancelledError:
            stats.cancelled = True
            raise
        finally:
            if stats.done or not state.sent_any:
                socket.release(context_id)
            else:
                socket.cancel(context_id)  # barge-in or failure: stop the server, drop late frames
            await utils.aio.gracefully_cancel(sender)
            self._log_turn(stats)

    # ------------------------------------------------------------ text -> Cartesia
    async def _send_text(
        self,
        socket: CartesiaSocket,
        events: ContextEvents,
        state: _SendState,
        aligner: TranscriptAligner,
    ) -> None:
        try:
            await self._send_text_inner(socket, events, state, aligner)
        except Exception as exc:  # the receiver owns the error
            events.post(exc if isinstance(exc, APIError) else APIConnectionError(type(exc).__name__))

    async def _send_text_inner(
        self,
        socket: CartesiaSocket,
        events: ContextEvents,
        state: _SendState,
        aligner: TranscriptAligner,
    ) -> None:
        base = self._opts.context_options().base(events.context_id)
        chunker = TextChunker(self._opts.chunking)
        input_ch = self._input_ch  # read fresh per attempt: a retry replaces the channel

        async def send(chunks: list[str]) -> None:
            for chunk in chunks:
                if not state.sent_any:
                    self._mark_started()
                    assert self.stats is not None
                    self.stats.first_text_sent_at = time.perf_counter()
                await socket.send(protocol.generation_frame(base, chunk))
                aligner.add_sent_text(chunk)
                state.sent_any = True
                state.last_send_at = time.monotonic()
                assert self.stats is not None
                self.stats.chunks_sent += 1
                events.post(_NUDGE)

        while True:
            deadline = chunker.next_deadline()
            try:
                if deadline is None:
                    item = await input_ch.recv()
                else:
                    item = await asyncio.wait_for(input_ch.recv(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                await send(chunker.poll(time.monotonic()))
                continue
            except aio.ChanClosed:
                break
            if isinstance(item, self._FlushSentinel):
                await send(chunker.flush())
                if state.sent_any and not input_ch.closed:
                    await socket.send(protocol.flush_frame(base))
                continue
            await send(chunker.push(item, time.monotonic()))
        await send(chunker.flush())
        if state.sent_any:
            await socket.send(protocol.end_frame(base))
            state.ended = True
            state.last_send_at = time.monotonic()
            events.post(_NUDGE)
        else:
            events.post(_NOTHING_TO_SAY)

    # ------------------------------------------------------------ Cartesia -> audio
    def _watchdog_timeout(self, events: ContextEvents, state: _SendState) -> float | None:
        """Only while audio is owed: text sent and not yet answered, or the end sent."""
        if not (state.ended or state.last_send_at > events.last_event_at):
            return None
        slack = self._conn_options.timeout + self._opts.chunking.buffer_delay_ms() / 1000.0
        since = max(state.last_send_at, events.last_event_at)
        return max(0.0, since + slack - time.monotonic())

    async def _receive_audio(
        self,
        events: ContextEvents,
        state: _SendState,
        aligner: TranscriptAligner,
        emitter: tts.AudioEmitter,
        stats: TurnStats,
    ) -> None:
        decoder = PcmDecoder(self._opts.encoding)
        started = False
        got_timestamps = False

        def start() -> None:
            nonlocal started
            if not started:
                emitter.start_segment(segment_id=events.context_id)
                started = True

        while True:
            try:
                item = await events.get(self._watchdog_timeout(events, state))
            except TimeoutError:
                raise APITimeoutError(
                    f"Cartesia sent nothing for {self._conn_options.timeout:.1f}s while audio "
                    "was owed"
                ) from None
            if item is _NUDGE:
                continue
            if item is _NOTHING_TO_SAY:
                if self._pushed_text.strip():  # e.g. "..." only: LiveKit wants some audio
                    start()
                    emitter.push(b"\x00\x00" * (self._opts.sample_rate // 100))
                stats.done = True
                return
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, protocol.Chunk):
                pcm = decoder.feed(base64.b64decode(item.data)) if item.data else b""
                if pcm:
                    start()
                    if stats.first_audio_at is None:
                        stats.first_audio_at = time.perf_counter()
                        stats.first_step_time_ms = item.step_time
                    stats.audio_bytes += len(pcm)
                    emitter.push(pcm)
            elif isinstance(item, protocol.Timestamps):
                if item.word_timestamps is not None and started:
                    got_timestamps = True
                    wt = item.word_timestamps
                    for word in aligner.align(list(wt.words), list(wt.start), list(wt.end)):
                        emitter.push_timed_transcript(
                            TimedString(text=word.text, start_time=word.start, end_time=word.end)
                        )
            elif isinstance(item, protocol.PhonemeTimestamps):
                pt = item.phoneme_timestamps
                if pt is not None:
                    self.phoneme_timestamps.extend(zip(pt.phonemes, pt.start, pt.end, strict=False))
            elif isinstance(item, protocol.Error):
                raise protocol.error_from_event(item)
            elif isinstance(item, protocol.Done):
                stats.done = True
                if got_timestamps:
                    for word in aligner.finish():
                        emitter.push_timed_transcript(
                            TimedString(text=word.text, start_time=word.start, end_time=word.end)
                        )
                elif self._opts.word_timestamps and not self._tts._warned_no_timestamps:
                    self._tts._warned_no_timestamps = True
                    logger.warning(
                        "Cartesia sent no word timestamps; the transcript falls back to LLM text"
                    )
                return

    def _log_turn(self, stats: TurnStats) -> None:
        extra: dict[str, Any] = {
            "context_id": stats.context_id,
            "socket_reused": stats.socket_reused,
            "chunks_sent": stats.chunks_sent,
            "cancelled": stats.cancelled,
            "done": stats.done,
        }
        if stats.time_to_first_audio is not None:
            extra["time_to_first_audio_ms"] = round(stats.time_to_first_audio * 1000, 1)
        if stats.first_step_time_ms is not None:
            extra["server_step_time_ms"] = round(stats.first_step_time_ms, 1)
        logger.info("Cartesia turn finished", extra=extra)


__all__ = ["TTS", "SynthesizeStream", "TurnStats", "APIStatusError"]
