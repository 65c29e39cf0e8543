"""Which STT, LLM and TTS play each role: the configured service, else an offline stand-in."""

from __future__ import annotations

from dataclasses import dataclass, field

from livekit.agents import llm as lk_llm
from livekit.agents import stt as lk_stt

from plugin_cartesia_ws.models import DEFAULT_BASE_URL

from ..settings import Settings
from .speech import SimulationError


@dataclass
class Components:
    """What plays each role, and the human-readable line for each."""

    stt: lk_stt.STT | None = None  # None: the worker's (OpenAI) STT
    llm: lk_llm.LLM | None = None  # None: the worker's (OpenAI-compatible) LLM
    use_emulator: bool = False
    labels: dict[str, str] = field(default_factory=dict)


def _openai_where(url: str | None) -> str:
    return url or "api.openai.com"


def choose_components(settings: Settings, *, stt: str, llm: str, tts: str) -> Components:
    """Pick each component from the settings ("auto") or as forced by the options."""
    c = Components()
    c.labels["VAD"] = "Silero (livekit-plugins-silero, default options)"
    stt_configured = bool(settings.openai_api_key or settings.openai_stt_base_url)
    llm_configured = bool(settings.openai_api_key or settings.openai_base_url)
    # A component forced on the command line is checked first: its error is the one to see.
    if stt == "openai" and not stt_configured and not settings.openai_base_url:
        raise SimulationError("--stt openai needs OPENAI_API_KEY (or OPENAI_STT_BASE_URL)")
    if llm == "openai" and not llm_configured:
        raise SimulationError("--llm openai needs OPENAI_API_KEY (or OPENAI_BASE_URL)")
    if tts == "cartesia" and not settings.cartesia_api_key:
        raise SimulationError("--tts cartesia needs CARTESIA_API_KEY")

    if stt == "openai" or (stt == "auto" and stt_configured):
        c.labels["STT"] = (
            f"OpenAI {settings.openai_stt_model} at {_openai_where(settings.stt_base_url)}"
        )
    else:
        from ..dev.local_stt import INSTALL_HINT, LocalSTTUnavailable, WhisperSTT

        try:
            c.stt = WhisperSTT(language=settings.cartesia_language)
        except LocalSTTUnavailable as e:
            if stt == "whisper":
                raise SimulationError(str(e)) from None
            raise SimulationError(
                "no speech-to-text: set OPENAI_API_KEY (or OPENAI_STT_BASE_URL), or install "
                f"the local Whisper: {INSTALL_HINT}"
            ) from None
        c.labels["STT"] = "local Whisper tiny.en (faster-whisper, CPU int8, offline)"

    if llm == "openai" or (llm == "auto" and llm_configured):
        c.labels["LLM"] = (
            f"{settings.openai_llm_model} at {_openai_where(settings.openai_base_url)}"
        )
    else:
        from ..dev.offline_llm import EchoLLM

        echo = c.llm = EchoLLM()
        why = "" if llm == "echo" else " (no OPENAI_API_KEY or OPENAI_BASE_URL)"
        c.labels["LLM"] = (
            f"OFFLINE ECHO, not a language model: repeats what it heard{why}; its first "
            f"token comes after a simulated {echo.ttft * 1000:.0f} ms"
        )

    if tts == "cartesia" or (tts == "auto" and settings.cartesia_api_key):
        base = settings.cartesia_base_url.rstrip("/")
        where = "Cartesia" if base == DEFAULT_BASE_URL else f"Cartesia-compatible server at {base}"
        c.labels["TTS"] = f"plugin_cartesia_ws -> {where}, model {settings.cartesia_model}"
    else:
        c.use_emulator = True
        why = "" if tts == "emulator" else " (no CARTESIA_API_KEY)"
        c.labels["TTS"] = f"plugin_cartesia_ws -> Cartesia emulator in this process{why}"
    return c
