"""The LiveKit TTS: options, the warm socket pool, and the streams it hands out.

A drop-in for ``livekit.plugins.cartesia.TTS``: same keyword arguments, same meaning, plus
``chunking``. Each ``stream()`` is one agent turn (``stream.SynthesizeStream``).
"""

from __future__ import annotations

import asyncio
import os
import weakref
from dataclasses import replace
from typing import cast
from urllib.parse import urlsplit

import aiohttp
from livekit.agents import (
    APIConnectionError,
    APIConnectOptions,
    APIError,
    APITimeoutError,
    tokenize,
    tts,
    utils,
)
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import is_given

from . import protocol
from .audio import ENCODINGS, SAMPLE_RATES
from .breaker import ReconnectPolicy
from .chunked import ChunkedStream
from .chunking import ChunkingPolicy, policy_for
from .connection import CartesiaSocket
from .log import WarnOnce, logger
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
from .options import TTSOptions
from .pacing import PacingPolicy, pacing_policy
from .pool import SocketPool
from .stream import SynthesizeStream
from .version import __version__

USER_AGENT = f"plugin-cartesia-ws/{__version__}"


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
        text_pacing: tts.SentenceStreamPacer | PacingPolicy | bool = True,
        base_url: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        chunking: ChunkingMode | ChunkingPolicy = "clause",
        max_buffer_delay_ms: int | None = None,
        idle_refresh_s: float = IDLE_REFRESH_S,
        reconnect_policy: ReconnectPolicy | None = None,
    ) -> None:
        """Keyword arguments as in livekit-plugins-cartesia, plus:

        chunking: "clause" (default: first clause as early as it can stand alone, then
            whole sentences), "sentence" (what the official plugin does) or "tokens"
            (every LLM token at once, Cartesia buffers), or a ChunkingPolicy.
        max_buffer_delay_ms: override what we tell Cartesia (default: the policy's).
        idle_refresh_s: reopen a socket idle this long before Cartesia's 5-minute close.
        reconnect_policy: backoff, jitter and the quick-failure breaker (pool.ReconnectPolicy).
        tokenizer: as in the official plugin, a SentenceTokenizer whose sentences are sent
            (overrides chunking).
        text_pacing: on by default (``pacing.PacingPolicy()``): after the first chunk, text
            leaves only while less than ``lead_s`` of speech is ahead of the listener, so a
            barge-in pays for little unheard speech. False sends every chunk at once; a
            ``tts.SentenceStreamPacer`` maps onto ours (min_remaining_audio -> lead_s,
            max_text_length -> max_chars), as does a ``PacingPolicy``.
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
        self._max_buffer_delay_ms = max_buffer_delay_ms  # kept across update_options(chunking=)
        policy = self._policy("sentence" if is_given(tokenizer) else chunking)
        if isinstance(emotion, str):
            emotion = [emotion]
        self._opts = TTSOptions(
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
            pacing=pacing_policy(text_pacing),
            api_key=key,
            base_url=_usable_base_url(
                base_url or os.environ.get("CARTESIA_BASE_URL") or DEFAULT_BASE_URL
            ),
            api_version=api_version,
        )
        self._session = http_session
        self._own_session: aiohttp.ClientSession | None = None
        self._job_session: aiohttp.ClientSession | None = None  # LiveKit's, for this job
        self._tokenizer = tokenizer  # given: it decides the sentences, as in the official plugin
        self._pool = SocketPool(
            self._connect,
            idle_refresh_s=idle_refresh_s,
            policy=reconnect_policy,
            may_reconnect=self._session_open,
        )
        self._streams: weakref.WeakSet[SynthesizeStream | ChunkedStream] = weakref.WeakSet()
        self._warn_once = WarnOnce()

    def __repr__(self) -> str:
        return (
            f"plugin_cartesia_ws.TTS(model={self._opts.model!r}, base_url={self._opts.base_url!r})"
        )

    @property
    def model(self) -> str:
        return self._opts.model

    @property
    def provider(self) -> str:
        return "Cartesia"

    @property
    def pool(self) -> SocketPool:
        return self._pool

    def _policy(self, chunking: str | ChunkingPolicy) -> ChunkingPolicy:
        """The policy, with the constructor's ``max_buffer_delay_ms`` unless it sets its own."""
        policy = policy_for(chunking)
        if self._max_buffer_delay_ms is not None and policy.max_buffer_delay_ms is None:
            policy = replace(policy, max_buffer_delay_ms=self._max_buffer_delay_ms)
        return policy

    def _options_snapshot(self) -> TTSOptions:
        """A stream's own copy: update_options() never changes a running turn."""
        return replace(self._opts)

    # ------------------------------------------------------------ connection
    def _http_session(self) -> aiohttp.ClientSession:
        if self._session is not None:
            return self._session
        try:
            self._job_session = utils.http_context.http_session()
            return self._job_session
        except RuntimeError:  # outside a job (tests, scripts): our own session
            if self._own_session is None or self._own_session.closed:
                self._own_session = aiohttp.ClientSession()
            return self._own_session

    def _session_open(self) -> bool:
        """False once the session our sockets used is closed: LiveKit closes a job's when
        the job ends, and a background reconnect would open a socket nobody closes."""
        used = self._session or self._job_session or self._own_session
        return used is None or not used.closed

    async def _connect(self, timeout: float) -> CartesiaSocket:
        headers = {
            "X-API-Key": self._opts.api_key,
            "Cartesia-Version": self._opts.api_version,
            "User-Agent": USER_AGENT,
        }
        try:
            ws = await asyncio.wait_for(
                self._http_session().ws_connect(
                    self._opts.ws_url(), headers=headers, heartbeat=None
                ),
                timeout,
            )
        except TimeoutError:
            raise APITimeoutError(
                f"connecting to Cartesia timed out after {timeout:.1f}s"
            ) from None
        except aiohttp.WSServerHandshakeError as exc:
            raise protocol.handshake_error(exc.status) from None
        except aiohttp.ClientResponseError as exc:
            raise protocol.handshake_error(exc.status) from None
        except Exception as exc:  # transport errors may carry URLs and headers: keep only the type
            where = self._opts.base_url  # no credentials in it: the key travels in a header
            raise APIConnectionError(
                f"cannot reach Cartesia at {where} ({type(exc).__name__})"
            ) from None
        request_id = ws._response.headers.get("X-Request-Id") if ws._response else None
        logger.debug("Cartesia WebSocket connected", extra={"cartesia_request_id": request_id})
        return CartesiaSocket(ws, request_id)

    def prewarm(self) -> None:
        """Open the socket now (AgentSession calls this when the agent starts). A refusal
        that no retry can fix (bad key, no TTS access, wrong URL) is logged at once as one
        ERROR line naming the cause, so it is known before the first reply."""
        self._pool.prewarm()

    async def check_connection(self, timeout: float = 10.0) -> APIError | None:
        """Open the socket now (or join ``prewarm()``'s connect) and wait for it: None when
        it is open, else the error that stopped it, e.g. ``APIStatusError(401)`` for a bad
        key (``protocol.is_fatal`` tells whether retrying can help). Raises nothing."""
        return await self._pool.check(timeout)

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
            opts.chunking = self._policy(cast(str | ChunkingPolicy, chunking))
        if is_given(api_version) and api_version != opts.api_version:
            opts.api_version = api_version
            self._pool.invalidate()  # the version is fixed per socket

    # ------------------------------------------------------------ streams
    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> SynthesizeStream:
        stream = SynthesizeStream(tts=self, host=self, conn_options=conn_options)
        self._streams.add(stream)
        return stream

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        """Whole text at once, over the same warm socket (one context)."""
        stream = ChunkedStream(tts=self, host=self, input_text=text, conn_options=conn_options)
        self._streams.add(stream)
        return stream

    async def aclose(self) -> None:
        for stream in list(self._streams):
            await stream.aclose()
        self._streams.clear()
        await self._pool.aclose()
        if self._own_session is not None:
            await self._own_session.close()


def _usable_base_url(url: str) -> str:
    """A base URL without a web scheme and a host would be retried as an outage, with
    backoff, until the turn gives up: refuse it at construction instead."""
    try:
        parts = urlsplit(url)
        usable = parts.scheme.lower() in ("http", "https", "ws", "wss") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        usable = False
    if not usable:
        raise ValueError(
            f"base_url {url!r} is not usable: it must start with https:// (or http://, wss://, "
            "ws://) and name a host, e.g. https://api.cartesia.ai (base_url= or CARTESIA_BASE_URL)"
        )
    return url
