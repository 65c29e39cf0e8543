"""``synthesize()``: the whole text as one turn on the warm socket.

LiveKit's generic ``_synthesize_with_stream`` wraps a full SynthesizeStream, so one
request reports twice: a metrics event from the inner stream and one from the outer, and
an error event from each on every failed attempt. Here the inner stream is a silent
engine (``_SilentStream``) and this ChunkedStream, whose retry loop is the request's, is
the one that reports: one request, one metrics event (none when it fails), one error
event per attempt.
"""

from __future__ import annotations

from collections.abc import AsyncIterable

from livekit.agents import APIConnectOptions, tts, utils
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT

from .breaker import Ticket
from .options import TurnHost
from .stream import SynthesizeStream


class _SilentStream(SynthesizeStream):
    """The engine of a ``synthesize()`` request: LiveKit's SynthesizeStream reports through
    these two, and the ChunkedStream around it reports the request instead."""

    def _emit_error(self, api_error: Exception, recoverable: bool) -> None:
        self._current_attempt_has_error = True

    async def _metrics_monitor_task(self, event_aiter: AsyncIterable[tts.SynthesizedAudio]) -> None:
        async for _ev in event_aiter:  # the tee still needs this side read
            pass


class ChunkedStream(tts.ChunkedStream):
    """One ``synthesize()`` request: one Cartesia context per attempt, on the shared socket."""

    def __init__(
        self, *, tts: tts.TTS, host: TurnHost, input_text: str, conn_options: APIConnectOptions
    ) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._host = host
        self._ticket = Ticket()  # all attempts are one request to the breaker

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=self._host.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            stream=False,
        )
        # One attempt of ours = one attempt of the engine: LiveKit's loop above retries.
        engine = _SilentStream(
            tts=self._tts,
            host=self._host,
            conn_options=APIConnectOptions(max_retry=0, timeout=self._conn_options.timeout),
            ticket=self._ticket,
            paced=False,
        )
        try:
            engine.push_text(self._input_text)
            engine.end_input()
            async for ev in engine:
                output_emitter.push(ev.frame.data.tobytes())
                if words := ev.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT):
                    output_emitter.push_timed_transcript(words)
        finally:
            await engine.aclose()
            self._acquire_time = engine._acquire_time
            self._connection_reused = engine._connection_reused
        output_emitter.flush()
