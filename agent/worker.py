"""The LiveKit worker: prewarm, the job entrypoint, and the AgentSession it runs.

One session per room: Silero VAD (loaded once per process in `prewarm`), OpenAI STT and
LLM (any OpenAI-compatible server), and the `plugin_cartesia_ws` streaming TTS. Latency
and usage go to the `agent` logger; transcripts only at DEBUG.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
from typing import Any

from livekit.agents import (
    Agent,
    AgentSession,
    APIStatusError,
    JobContext,
    JobExecutorType,
    JobProcess,
    WorkerOptions,
    llm,
    stt,
    tts,
    vad,
)
from livekit.agents.voice.events import CloseEvent
from livekit.agents.voice.turn import InterruptionOptions, TurnHandlingOptions
from livekit.agents.worker import ServerEnvOption
from livekit.plugins import openai, silero

from .job_slots import JobSlots
from .redispatch import Redispatcher
from .session_logs import attach_logging, describe_error
from .settings import Settings

with contextlib.suppress(ImportError):
    # Import on the main thread: LiveKit plugins register themselves at import time and
    # Plugin.register_plugin refuses other threads (console mode runs jobs in a thread).
    # `build_tts` imports it again, so a missing plugin only fails when a session needs it.
    import plugin_cartesia_ws  # noqa: F401

log = logging.getLogger("agent")

VAD_USERDATA_KEY = "vad"
MODELS_USERDATA_KEY = "stt_llm"
RECONNECT_FOREVER = 2**31  # attempts: at LiveKit's 10 s apart, 680 years


# ---------------------------------------------------------------------- components
def load_vad(settings: Settings | None = None) -> vad.VAD:
    """Silero VAD (the model ships inside its wheel), with LiveKit's default options but
    the end-of-speech silence of `VAD_MIN_SILENCE`."""
    settings = settings if settings is not None else Settings.from_env()
    return silero.VAD.load(min_silence_duration=settings.vad_min_silence)


# Modules the first turn would otherwise import on the job's event loop (LiveKit warns:
# "event loop blocked for ~200 ms importing ..."): the OpenAI client's lazily loaded parts
# and numpy's FFT, used by the audio resampler.
_WARM_IMPORTS = (
    "openai.pagination",
    "openai.resources.models",
    "openai.lib.streaming.chat",
    "numpy.fft",
)


def prewarm(proc: JobProcess) -> None:
    """Runs once per worker process, before it takes a job: load the VAD model and the
    lazily imported modules there, so a job's first turn does not wait for them."""
    for name in _WARM_IMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    settings = Settings.from_env()
    proc.userdata[VAD_USERDATA_KEY] = load_vad(settings)
    # The OpenAI clients load the CA bundle into an SSL context when they are made (LiveKit
    # warned "event loop blocked" for 0.2-0.5 s at session start): make them here too.
    proc.userdata[MODELS_USERDATA_KEY] = (build_stt(settings), build_llm(settings))


def build_tts(settings: Settings) -> tts.TTS:
    """The Cartesia WebSocket TTS (the emulator works as CARTESIA_BASE_URL); with
    TTS_PLUGIN=livekit, LiveKit's official Cartesia plugin instead (same settings)."""
    common: dict[str, Any] = {
        "api_key": settings.cartesia_api_key,
        "base_url": settings.cartesia_base_url,
        "model": settings.cartesia_model,
        "voice": settings.cartesia_voice,
        "language": settings.cartesia_language,
        "sample_rate": settings.cartesia_sample_rate,
    }
    if settings.tts_plugin == "livekit":
        from livekit.plugins import cartesia

        return cartesia.TTS(**common)
    from plugin_cartesia_ws import TTS

    return TTS(**common, chunking=settings.tts_chunking)


def build_stt(settings: Settings) -> stt.STT:
    """OpenAI transcription over HTTP (non-streaming: the session segments speech with
    the VAD and sends one WAV per utterance)."""
    kwargs: dict[str, Any] = {}
    if settings.stt_base_url:
        kwargs["base_url"] = settings.stt_base_url
    return openai.STT(
        model=settings.openai_stt_model,
        language=settings.cartesia_language,
        api_key=settings.openai_api_key_or_placeholder,
        use_realtime=False,
        **kwargs,
    )


def build_llm(settings: Settings) -> llm.LLM:
    kwargs: dict[str, Any] = {}
    if settings.openai_base_url:
        kwargs["base_url"] = settings.openai_base_url
    return openai.LLM(
        model=settings.openai_llm_model,
        api_key=settings.openai_api_key_or_placeholder,
        **kwargs,
    )


def _turn_detection(settings: Settings) -> Any:
    if settings.turn_detection == "model":
        # LiveKit's end-of-turn model: Cloud inference when LiveKit Cloud credentials are
        # there, else the local turn-detector-v1-mini inside livekit-local-inference.
        from livekit.agents import inference

        return inference.TurnDetector()
    return "vad"


def build_agent(settings: Settings) -> Agent:
    return Agent(instructions=settings.agent_instructions)


def build_session(
    settings: Settings,
    *,
    vad: vad.VAD,
    stt: stt.STT | None = None,
    llm: llm.LLM | None = None,
    tts: tts.TTS | None = None,
    **session_options: Any,
) -> AgentSession:
    """The voice pipeline for one room. Barge-in is on; "vad" interruption by default
    because "adaptive" needs LiveKit Cloud inference.

    `stt`, `llm` and `tts` replace the components the settings describe (the offline
    simulation passes a local Whisper and an echo LLM); `session_options` go to
    AgentSession as extra keyword arguments (e.g. `aec_warmup_duration=None` where the
    agent's audio cannot echo back)."""
    interruption = InterruptionOptions(enabled=True, mode=settings.interruption_mode)
    session: AgentSession = AgentSession(
        vad=vad,
        stt=stt if stt is not None else build_stt(settings),
        llm=llm if llm is not None else build_llm(settings),
        tts=tts if tts is not None else build_tts(settings),
        turn_handling=TurnHandlingOptions(
            turn_detection=_turn_detection(settings),
            endpointing={"min_delay": settings.endpointing_min_delay},
            interruption=interruption,
            preemptive_generation={"enabled": True, "preemptive_tts": _speculative(settings)},
        ),
        # transcripts paced by the TTS's word timestamps: an interrupted reply is cut
        # where the listener stopped hearing it
        use_tts_aligned_transcript=True,
        **session_options,
    )
    attach_logging(session)
    return session


def _speculative(settings: Settings) -> bool:
    """Start the TTS on LiveKit's preemptive guess: with our plugin (paced, cancelled on a
    warm socket) a wrong guess costs at most one lead of text; the official plugin would
    synthesize the whole guessed reply, so it keeps LiveKit's default (off)."""
    return settings.preemptive_tts == "on" and settings.tts_plugin == "cartesia_ws"


async def tts_problem(engine: tts.TTS | None, timeout: float = 10.0) -> str | None:
    """Why `engine` cannot speak at all, known as soon as its socket opens: a bad key, no
    TTS access, a wrong URL (the plugin logs it too). None when it connected, when only
    retrying may help, or for a TTS without `check_connection` (TTS_PLUGIN=livekit)."""
    check = getattr(engine, "check_connection", None)
    if check is None:
        return None
    error = await check(timeout)
    if isinstance(error, APIStatusError) and not error.retryable:
        return describe_error(error)
    return None


# ---------------------------------------------------------------------- entrypoint
def _vad_for(ctx: JobContext, settings: Settings) -> vad.VAD:
    loaded = ctx.proc.userdata.get(VAD_USERDATA_KEY)
    if loaded is None:  # prewarm did not run (e.g. a custom server setup)
        log.warning("VAD was not prewarmed; loading it on the job's critical path")
        loaded = ctx.proc.userdata[VAD_USERDATA_KEY] = load_vad(settings)
    return loaded


async def entrypoint(ctx: JobContext) -> None:
    """One job = one room: start the session on it and return; the job lives on until
    the room closes or the participant leaves."""
    settings = Settings.from_env().require_models()
    try:
        await ctx.connect()
    except Exception as e:  # the rtc SDK raises its own ConnectError, or a timeout
        # one line instead of LiveKit's traceback; the job ends, the worker takes the next
        log.error(
            "cannot join room %s: %s (the room may be gone; else check that this machine "
            "reaches the server's rtc.node_ip and rtc ports)",
            ctx.room.name,
            str(e) or type(e).__name__,
        )
        ctx.shutdown(reason="cannot join the room")
        return
    stt, llm = ctx.proc.userdata.pop(MODELS_USERDATA_KEY, (None, None))  # from prewarm
    session = build_session(settings, vad=_vad_for(ctx, settings), stt=stt, llm=llm)
    log.info(
        "starting session",
        extra={"room": ctx.room.name, **settings.components()},
    )

    async def _close_tts() -> None:
        # AgentSession never closes its TTS: without this, its warm socket outlives the job
        if session.tts is not None:
            await session.tts.aclose()

    ctx.add_shutdown_callback(_close_tts)

    @session.on("close")
    def _end_job(ev: CloseEvent) -> None:
        # the user left (or the session failed): leave the room now and free this job's
        # slot, instead of idling in it until the server closes the room (20 s and more)
        ctx.shutdown(reason=f"session closed: {ev.reason}")

    await session.start(agent=build_agent(settings), room=ctx.room)
    if settings.agent_greeting:
        session.say(settings.agent_greeting)


# ---------------------------------------------------------------------- worker
def server_options(settings: Settings) -> WorkerOptions:
    """Worker options for `cli.run_app`.

    load_threshold: LiveKit's default load is a CPU moving average and its production
    threshold is 0.7. On a 2-core machine the worker alone measures ~0.8 while its idle
    processes start, so it would report itself full before taking a job; 0.9 (setting
    WORKER_LOAD_THRESHOLD) still sheds load before the audio path starves. `dev` keeps
    LiveKit's "never full" and a random health port so several dev workers can coexist;
    WORKER_MAX_JOBS, when set, caps the rooms in both modes (a room beyond it is declined
    and offered to another worker, if there is one).
    """
    log_level = settings.log_level
    if log_level == "WARNING":
        log_level = "WARN"
    extra: dict[str, Any] = {}
    if log_level:
        extra["log_level"] = log_level
    threshold = settings.worker_load_threshold
    if settings.tts_plugin == "livekit":
        # LiveKit plugins register on import and only on the main thread: with
        # WORKER_JOB_EXECUTOR=thread, build_tts runs in a job's thread and could not import it
        importlib.import_module("livekit.plugins.cartesia")
    if settings.worker_max_jobs > 0:
        # load = share of the job slots in use, reported to the server, which sends new
        # rooms to the workers with the most free slots. The slots are counted by
        # `request_fnc` alone: with a finite threshold LiveKit would refuse a full worker's
        # offers itself, unseen, and on a cluster (where the node a room goes to tries only
        # its own workers) such a room waits for good. Every decline goes through JobSlots,
        # which hands the room to the Redispatcher (agent/redispatch.py).
        redispatch = Redispatcher(
            str(settings.livekit_url),
            str(settings.livekit_api_key),
            str(settings.livekit_api_secret),
        )
        slots = JobSlots(settings.worker_max_jobs, on_decline=redispatch.declined)
        extra["load_fnc"] = slots.load
        extra["request_fnc"] = slots.request
        extra["num_idle_processes"] = ServerEnvOption(
            dev_default=0, prod_default=settings.worker_max_jobs
        )
        threshold = math.inf
    return WorkerOptions(
        entrypoint_fnc=entrypoint,
        prewarm_fnc=prewarm,
        agent_name=settings.agent_name,
        load_threshold=ServerEnvOption(dev_default=math.inf, prod_default=threshold),
        port=ServerEnvOption(dev_default=0, prod_default=settings.worker_port),
        host=settings.worker_host,
        ws_url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret,
        # LiveKit gives up after 16 tries (~2 min) and exits 0, so a supervisor that restarts
        # on failure never brings it back: keep trying, every 10 s, until the server is back
        max_retry=RECONNECT_FOREVER,
        job_executor_type=JobExecutorType(settings.worker_job_executor),
        drain_timeout=settings.worker_drain_timeout,
        **extra,
    )
