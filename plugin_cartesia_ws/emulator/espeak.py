"""``EspeakVoice``: real (robotic) speech from libespeak-ng via ctypes, ~1000x real time.

libespeak is process-wide state behind one lock, and keeps hidden wave-generator state, so
repeated renders differ slightly. Word times come from its WORD events mapped onto the
text's tokens; phonemes from its PHONEME events.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import logging
import os
import re
import threading
from ctypes import POINTER, c_char, c_char_p, c_int, c_short, c_size_t, c_uint, c_void_p
from dataclasses import dataclass
from typing import Any

import numpy as np

from .extras import install_hint
from .rendering import (
    Rendering,
    TimedToken,
    Token,
    VoiceUnavailable,
    check_rate,
    clamp_speed,
    silence,
    tokenize,
)
from .resample import resample_s16

logger = logging.getLogger(__name__)

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000  # report errors instead of calling exit()
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_EVENT_LIST_END, _EVENT_WORD, _EVENT_PHONEME = 0, 1, 7

_INSTALL_HINT = f"{install_hint('espeak')}, or apt-get install espeak-ng"
_ESPEAK_VOICES = {
    "en": "en-us",
    "en-gb": "en",
    "pt-br": "pt-br",
    "zh": "cmn",
    "zh-hk": "yue",
    "no": "nb",
}
_SILENCE_RMS = 32768 * 10 ** (-45 / 20)  # frames quieter than -45 dBFS end a word
_PAUSE_PUNCTUATION = frozenset(".,;:!?…—–。，、；：！？")


class _EventId(ctypes.Union):
    _fields_ = [("number", c_int), ("name", c_char_p), ("string", c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", c_int),
        ("unique_identifier", c_uint),
        ("text_position", c_int),  # 1-based, in characters
        ("length", c_int),
        ("audio_position", c_int),  # ms from the start of the message
        ("sample", c_int),
        ("user_data", c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(c_int, POINTER(c_short), c_int, POINTER(_Event))
_SIGNATURES = {
    "espeak_Initialize": [c_int, c_int, c_char_p, c_int],
    "espeak_SetSynthCallback": [_SynthCallback],
    "espeak_SetVoiceByName": [c_char_p],
    "espeak_SetParameter": [c_int, c_int, c_int],
    "espeak_Synth": [c_void_p, c_size_t, c_uint, c_int, c_uint, c_uint, c_void_p, c_void_p],
}


@dataclass
class _Capture:
    """What one espeak_Synth call produced: native-rate audio and (type, char pos, ms, name)."""

    chunks: list[np.ndarray]
    events: list[tuple[int, int, int, str]]


class _Espeak:
    """The process-wide libespeak-ng handle. libespeak is global state: one lock for all."""

    lock = threading.Lock()
    _instance: _Espeak | None = None
    _capture: _Capture | None = None

    def __init__(self, library: str, data: str | None) -> None:
        lib = ctypes.CDLL(library)
        for function, argtypes in _SIGNATURES.items():
            getattr(lib, function).argtypes = argtypes
        options = _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 60, data.encode() if data else None, options
        )
        if rate <= 0:
            raise OSError(f"espeak_Initialize failed ({rate}) with data directory {data!r}")
        self._callback = _SynthCallback(self._on_audio)  # keep a reference: C holds it
        lib.espeak_SetSynthCallback(self._callback)
        self.lib, self.native_rate, self.library = lib, rate, library

    @classmethod
    def get(cls) -> _Espeak:
        with cls.lock:
            if cls._instance is None:
                errors = []
                for library, data in _library_candidates():
                    try:
                        cls._instance = cls(library, data)
                        logger.debug("loaded libespeak-ng from %s", library)
                        break
                    except OSError as exc:
                        errors.append(f"{library}: {exc}")
                else:
                    raise VoiceUnavailable(
                        f"libespeak-ng could not be loaded ({'; '.join(errors) or 'not found'});"
                        f" install it with {_INSTALL_HINT}"
                    )
            return cls._instance

    @staticmethod
    def _on_audio(wav: Any, n_samples: int, events: Any) -> int:
        capture = _Espeak._capture
        if capture is None:
            return 0
        if wav and n_samples > 0:
            capture.chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_END:
            event = events[i]
            name = ""
            if event.type == _EVENT_PHONEME:
                name = event.id.string.decode("utf-8", "replace")
            capture.events.append((event.type, event.text_position, event.audio_position, name))
            i += 1
        return 0

    def synthesize(self, text: str, voice: str, words_per_minute: int) -> _Capture:
        encoded = text.encode("utf-8", "replace")
        buffer = ctypes.create_string_buffer(encoded)
        capture = _Capture([], [])
        with self.lock:
            for name in (voice, voice.split("+")[0], "en-us"):  # unknown voice: fall back
                if self.lib.espeak_SetVoiceByName(name.encode()) == 0:
                    break
            self.lib.espeak_SetParameter(_PARAM_RATE, words_per_minute, 0)
            _Espeak._capture = capture
            try:
                status = self.lib.espeak_Synth(
                    buffer, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
                self.lib.espeak_Synchronize()
            finally:
                _Espeak._capture = None
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        return capture


def _library_candidates() -> list[tuple[str, str | None]]:
    """(library, data dir) pairs to try: env override, espeakng-loader wheel, system lib."""
    data = os.environ.get("ESPEAK_NG_DATA") or None
    if os.environ.get("ESPEAK_NG_LIBRARY"):
        return [(os.environ["ESPEAK_NG_LIBRARY"], data)]
    candidates = []
    try:
        import espeakng_loader

        candidates.append(
            (espeakng_loader.get_library_path(), data or espeakng_loader.get_data_path())
        )
    except Exception:  # not installed, or a broken wheel: fall through to the system lib
        pass
    candidates.append(("libespeak-ng.so.1", data))
    system = ctypes.util.find_library("espeak-ng")
    if system:
        candidates.append((system, data))
    return candidates


def _espeak_voice_for(language: str | None) -> str:
    """Cartesia language code ("en", "pt-BR", "zh") -> espeak voice name; unknown -> en-us."""
    tag = (language or "en").strip().lower().replace("_", "-")
    primary = tag.split("-")[0]
    if not re.fullmatch(r"[a-z]{2,3}", primary):
        return "en-us"
    return _ESPEAK_VOICES.get(tag) or _ESPEAK_VOICES.get(primary, primary)


def _speakable(text: str, tokens: list[Token]) -> str:
    """The text espeak should read, with every character kept at its offset.

    Non-word tokens are blanked except pause punctuation: espeak would otherwise read emoji
    names aloud or, after a lone "-", report the next word at the dash's position.
    Unprintable characters (NUL ends a C string) become spaces too.
    """
    chars = [char if char.isprintable() or char.isspace() else " " for char in text]
    for token in tokens:
        if not token.is_word:
            for i in range(token.start, token.end):
                if chars[i] not in _PAUSE_PUNCTUATION:
                    chars[i] = " "
    return "".join(chars)


def _speech_end(audio: np.ndarray, start: int, limit: int, rate: int) -> int:
    """End of the last non-silent 10 ms frame in audio[start:limit] (start if all silent)."""
    frame = max(1, rate // 100)
    segment = audio[start:limit].astype(np.float64)
    n_frames = -(-len(segment) // frame)
    frames = np.pad(segment, (0, n_frames * frame - len(segment))).reshape(n_frames, frame)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud = np.flatnonzero(rms > _SILENCE_RMS)
    return start if len(loud) == 0 else min(limit, start + (int(loud[-1]) + 1) * frame)


def _align_words(
    tokens: list[Token], events: list[tuple[int, int, int, str]], audio: np.ndarray, rate: int
) -> list[TimedToken]:
    """Word timings from espeak WORD events, one entry per word token of the text.

    espeak emits several WORD events for tokens like "$42.50" and sometimes none (CJK runs
    share one event): events are mapped to tokens by character position, and tokens without
    an event share the span of the preceding one evenly. Word start = first event of its
    token; word end = last sound before the next token starts (pauses are not words).
    """
    words = [token for token in tokens if token.is_word]
    if not words:
        return []
    starts = [token.start for token in words]
    first_ms: dict[int, int] = {}
    current = 0
    for kind, position, ms, _ in events:
        if kind != _EVENT_WORD:
            continue
        index = bisect.bisect_right(starts, position - 1) - 1
        if index < 0 or position - 1 >= words[index].end:
            index += 1  # between tokens: the event belongs to the next one
        current = max(current, index)  # never go back: out-of-order positions continue a token
        if current < len(words):
            first_ms.setdefault(current, ms)

    anchors = sorted(first_ms) or [0]
    group_starts = [min(len(audio), round(first_ms.get(a, 0) * rate / 1000)) for a in anchors]
    timed = []
    for n, (anchor, start) in enumerate(zip(anchors, group_starts, strict=True)):
        first = 0 if n == 0 else anchor
        last = anchors[n + 1] if n + 1 < len(anchors) else len(words)
        limit = group_starts[n + 1] if n + 1 < len(anchors) else len(audio)
        step = (_speech_end(audio, start, limit, rate) - start) / max(1, last - first)
        for k in range(first, last):
            offset = start + (k - first) * step
            timed.append(TimedToken(words[k].text, offset / rate, (offset + step) / rate))
    return timed


def _align_phonemes(
    events: list[tuple[int, int, int, str]], words: list[TimedToken], total: float
) -> list[TimedToken]:
    """espeak PHONEME events (pauses dropped), each clipped to the word it starts in."""
    marks = [(ms / 1000, name) for kind, _, ms, name in events if kind == _EVENT_PHONEME]
    word_starts = [word.start for word in words]
    phonemes = []
    for i, (start, name) in enumerate(marks):
        index = bisect.bisect_right(word_starts, start) - 1
        if not name or name.startswith("_") or index < 0 or start >= words[index].end:
            continue
        end = marks[i + 1][0] if i + 1 < len(marks) else total
        phonemes.append(TimedToken(name, start, min(end, words[index].end)))
    return phonemes


class EspeakVoice:
    """Real speech from libespeak-ng (GPL-3, optional extra); raises VoiceUnavailable if absent.

    ``variant`` picks an espeak voice variant such as "f3" or "klatt4".
    """

    name = "espeak"

    def __init__(self, variant: str | None = None) -> None:
        self._engine = _Espeak.get()
        self._variant = variant
        self.library = self._engine.library

    def render(
        self, text: str, *, sample_rate: int, speed: float = 1.0, language: str | None = None
    ) -> Rendering:
        rate = check_rate(sample_rate)
        tokens = tokenize(text)
        if not tokens:
            return silence(rate)
        voice = _espeak_voice_for(language) + (f"+{self._variant}" if self._variant else "")
        words_per_minute = min(450, max(80, round(175 * clamp_speed(speed))))
        capture = self._engine.synthesize(_speakable(text, tokens), voice, words_per_minute)
        native = np.concatenate(capture.chunks) if capture.chunks else np.zeros(0, np.int16)
        native_rate = self._engine.native_rate
        words = _align_words(tokens, capture.events, native, native_rate)
        phonemes = _align_phonemes(capture.events, words, len(native) / native_rate)
        samples = resample_s16(native, native_rate, rate)
        duration = len(samples) / rate

        def clip(items: list[TimedToken]) -> list[TimedToken]:
            return [TimedToken(t.text, min(t.start, duration), min(t.end, duration)) for t in items]

        return Rendering(samples, rate, clip(words), clip(phonemes))
