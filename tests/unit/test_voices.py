"""plugin_cartesia_ws.emulator.voices: the emulator's synthesizers."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading

import numpy as np
import pytest

from plugin_cartesia_ws.audio import SAMPLE_RATES
from plugin_cartesia_ws.emulator import voices
from plugin_cartesia_ws.emulator.espeak import _Espeak
from plugin_cartesia_ws.emulator.voices import (
    EspeakVoice,
    Rendering,
    TimedToken,
    ToneVoice,
    VoiceUnavailable,
    make_voice,
)

SENTENCE = "Please book me a table for two at seven tonight."  # 10 words
TRICKY = "It costs $42.50, Dr. Smith's café is naïve? Yes! - ... 🙂 ok 555-1234 (maybe)"
TRICKY_WORDS = [
    "It",
    "costs",
    "$42.50,",
    "Dr.",
    "Smith's",
    "café",
    "is",
    "naïve?",
    "Yes!",
    "ok",
    "555-1234",
    "(maybe)",
]
WEIRD_TEXTS = [
    "🙂",
    "😀" * 40,
    "Hi 👨‍👩‍👧 there",
    "a\x00b c\x07 d\x1b[31m",
    "\x00\x01\x02",
    "\u200b\u200d",
    "e\u0301clair\u00ad",
    "<speak>[[h@'loU]]</speak>",
    "١٢٣ مرحبا بالعالم",
    "ｆｕｌｌ　ｗｉｄｔｈ",
    "한국어 텍스트입니다",
    "「你好」。世界!",
    "a - b -- c — d",
    "Line\u2028break\u2029para",
    "\U0001f600x\U000e0001",
    "x" * 6000,
    ("word, " * 1000)[:6000],
]


def _espeak() -> EspeakVoice:
    try:
        return EspeakVoice()
    except VoiceUnavailable as exc:
        pytest.skip(f"libespeak-ng not available: {exc}")


@pytest.fixture(params=["tone", "espeak"])
def voice(request: pytest.FixtureRequest) -> voices.Voice:
    return ToneVoice() if request.param == "tone" else _espeak()


@pytest.fixture
def espeak() -> EspeakVoice:
    return _espeak()


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def _assert_consistent(rendering: Rendering) -> None:
    """Times are ordered, inside the audio, and phonemes sit inside a word."""
    assert rendering.samples.dtype == np.int16 and rendering.samples.ndim == 1
    duration = rendering.duration
    previous_start = previous_end = 0.0
    for word in rendering.words:
        assert 0.0 <= word.start <= word.end <= duration + 1e-9, word
        assert word.start >= previous_start and word.end >= previous_end, word
        previous_start, previous_end = word.start, word.end
    for phoneme in rendering.phonemes:
        assert any(
            w.start - 1e-9 <= phoneme.start <= phoneme.end <= w.end + 1e-9 for w in rendering.words
        ), phoneme


def _word_tokens(text: str) -> list[str]:
    return [token for token in text.split() if any(char.isalnum() for char in token)]


# ---------------------------------------------------------------------------- both voices
def test_words_are_the_text_tokens_with_punctuation(voice: voices.Voice) -> None:
    rendering = voice.render(TRICKY, sample_rate=24000)
    assert [w.text for w in rendering.words] == TRICKY_WORDS == _word_tokens(TRICKY)
    _assert_consistent(rendering)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_every_sample_rate(voice: voices.Voice, sample_rate: int) -> None:
    rendering = voice.render(SENTENCE, sample_rate=sample_rate)
    assert rendering.sample_rate == sample_rate
    assert 1.0 < rendering.duration < 5.0
    assert [w.text for w in rendering.words] == SENTENCE.split()
    _assert_consistent(rendering)


@pytest.mark.parametrize("text", ["", " ", "\n\t  \r\n"])
def test_empty_text_is_silence_of_length_zero(voice: voices.Voice, text: str) -> None:
    rendering = voice.render(text, sample_rate=16000)
    assert len(rendering.samples) == 0 and rendering.duration == 0.0
    assert rendering.words == [] and rendering.phonemes == []


@pytest.mark.parametrize("text", WEIRD_TEXTS, ids=range(len(WEIRD_TEXTS)))
def test_weird_unicode_never_raises(voice: voices.Voice, text: str) -> None:
    rendering = voice.render(text, sample_rate=16000)
    assert [w.text for w in rendering.words] == _word_tokens(text) or _has_cjk(text)
    for word in rendering.words:
        assert word.text in text
    _assert_consistent(rendering)


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= char <= "\u9fff" for char in text)


def test_duration_grows_with_text(voice: voices.Voice) -> None:
    durations = [
        voice.render(text, sample_rate=16000).duration
        for text in ("Hi.", "Hello there.", "Hello there, how are you today?", SENTENCE * 3)
    ]
    assert durations == sorted(durations) and len(set(durations)) == 4


def test_speed_scales_duration(voice: voices.Voice) -> None:
    normal = voice.render(SENTENCE, sample_rate=16000).duration
    fast = voice.render(SENTENCE, sample_rate=16000, speed=2.0).duration
    slow = voice.render(SENTENCE, sample_rate=16000, speed=0.6).duration
    assert 0.4 * normal < fast < 0.65 * normal
    assert 1.4 * normal < slow < 1.9 * normal


def test_absurd_speeds_are_clamped(voice: voices.Voice) -> None:
    for speed in (0.0, -3.0, 1e9, float("nan")):
        rendering = voice.render("Short test.", sample_rate=8000, speed=speed)
        assert 0.05 < rendering.duration < 10.0
        _assert_consistent(rendering)


def test_rejects_nonpositive_sample_rate(voice: voices.Voice) -> None:
    with pytest.raises(ValueError):
        voice.render("Hello.", sample_rate=0)


# ---------------------------------------------------------------------------- tone voice
def test_tone_is_byte_exact_deterministic() -> None:
    first = ToneVoice().render(TRICKY, sample_rate=24000, speed=1.1)
    second = ToneVoice().render(TRICKY, sample_rate=24000, speed=1.1)
    assert first.samples.tobytes() == second.samples.tobytes()
    assert first.words == second.words and first.phonemes == second.phonemes


def test_tone_is_deterministic_across_processes() -> None:
    code = (
        "import hashlib; from plugin_cartesia_ws.emulator.voices import ToneVoice; "
        f"print(hashlib.sha256(ToneVoice().render({TRICKY!r}, sample_rate=22050)"
        ".samples.tobytes()).hexdigest())"
    )
    here = hashlib.sha256(ToneVoice().render(TRICKY, sample_rate=22050).samples.tobytes())
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert other.stdout.strip() == here.hexdigest()


def test_tone_timing_follows_the_text() -> None:
    rendering = ToneVoice().render("Hello, world. Bye", sample_rate=16000)
    # Hello, = 5 letters: 0.35 s + gap 0.03 + clause 0.08; world. = 0.35 + 0.03 + 0.15
    assert [(w.text, round(w.start, 4), round(w.end, 4)) for w in rendering.words] == [
        ("Hello,", 0.0, 0.35),
        ("world.", 0.46, 0.81),
        ("Bye", 0.99, 1.22),
    ]
    assert rendering.duration == pytest.approx(1.25)
    assert ToneVoice().render("Hi - there", sample_rate=16000).words[1].start == pytest.approx(
        0.17 + 0.03 + 0.1
    )


def test_tone_content_is_loud_in_words_and_silent_between() -> None:
    rendering = ToneVoice().render(TRICKY, sample_rate=16000)
    samples, rate = rendering.samples, rendering.sample_rate
    voiced = np.zeros(len(samples), dtype=bool)
    for word in rendering.words:
        start, end = round(word.start * rate), round(word.end * rate)
        assert _rms(samples[start:end]) > 32768 * 10 ** (-30 / 20)
        voiced[start:end] = True
    assert not samples[~voiced].any()  # exact digital silence in the gaps


def test_tone_is_rendered_at_the_requested_rate() -> None:
    low = ToneVoice().render(SENTENCE, sample_rate=8000)
    high = ToneVoice().render(SENTENCE, sample_rate=48000)
    assert low.duration == pytest.approx(high.duration, abs=1e-3)
    assert [w.start for w in low.words] == pytest.approx([w.start for w in high.words], abs=1e-3)
    first = high.samples[: round(high.words[0].end * 48000)]
    spectrum = np.abs(np.fft.rfft(first))
    assert 100 <= np.argmax(spectrum) * 48000 / len(first) <= 300  # the word's base tone


def test_tone_phonemes_are_letters_spread_over_words() -> None:
    rendering = ToneVoice().render("Yes! $42", sample_rate=16000)
    assert [p.text for p in rendering.phonemes] == ["Y", "e", "s", "4", "2"]
    yes = rendering.words[0]
    assert rendering.phonemes[0].start == yes.start and rendering.phonemes[2].end == yes.end
    _assert_consistent(rendering)


def test_tone_splits_cjk_into_characters() -> None:
    rendering = ToneVoice().render("你好世界。「今天」很好! Hello世界", sample_rate=16000)
    assert [w.text for w in rendering.words] == [
        "你",
        "好",
        "世",
        "界。",
        "「今",
        "天」",
        "很",
        "好!",
        "Hello",
        "世",
        "界",
    ]
    _assert_consistent(rendering)


def test_long_text(voice: voices.Voice) -> None:
    text = ("Please book a table. " * 300)[:6000]
    rendering = voice.render(text, sample_rate=24000)
    assert [w.text for w in rendering.words] == _word_tokens(text)  # 1144 words
    assert rendering.duration > 200
    _assert_consistent(rendering)


# ---------------------------------------------------------------------------- espeak voice
def test_espeak_is_real_speech(espeak: EspeakVoice) -> None:
    rendering = espeak.render(SENTENCE, sample_rate=16000)
    assert np.abs(rendering.samples).max() > 5000
    assert _rms(rendering.samples) > 32768 * 10 ** (-35 / 20)
    starts = [w.start for w in rendering.words]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    for word in rendering.words:
        start, end = round(word.start * 16000), round(word.end * 16000)
        assert end > start and np.abs(rendering.samples[start:end]).max() > 1000, word


@pytest.mark.parametrize("sample_rate", [16000, 24000])
def test_espeak_ten_word_sentence(espeak: EspeakVoice, sample_rate: int) -> None:
    rendering = espeak.render(SENTENCE, sample_rate=sample_rate)
    assert [w.text for w in rendering.words] == SENTENCE.split()
    assert 1.5 < rendering.duration < 4.0
    assert rendering.words[-1].end > rendering.duration - 0.3
    assert len(rendering.phonemes) > 25
    _assert_consistent(rendering)


def test_espeak_phoneme_names_are_mnemonics(espeak: EspeakVoice) -> None:
    rendering = espeak.render("Hello world", sample_rate=16000)
    names = [p.text for p in rendering.phonemes]
    assert names[:2] == ["h", "@"] and all(names) and not any(n.startswith("_") for n in names)


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("fr", "Bonjour le monde, ça va?"),
        ("de-DE", "Guten Tag, wie geht's?"),
        ("zh", "你好世界。今天天气很好。"),
        ("ja", "こんにちは世界、元気です。"),
        ("xx-unknown", "Hello there."),
        ("../etc", "Hello there."),
        (None, "Hello there."),
    ],
)
def test_espeak_languages(espeak: EspeakVoice, language: str | None, text: str) -> None:
    rendering = espeak.render(text, sample_rate=16000, language=language)
    assert _rms(rendering.samples) > 300
    assert "".join(w.text for w in rendering.words) == "".join(text.split())
    _assert_consistent(rendering)


def test_espeak_is_thread_safe(espeak: EspeakVoice) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                results.append([w.text for w in espeak.render(SENTENCE, sample_rate=8000).words])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and len(results) == 20
    assert all(words == SENTENCE.split() for words in results)


def test_espeak_variant_and_bad_variant(espeak: EspeakVoice) -> None:
    for variant in ("f3", "no-such-variant"):
        rendering = EspeakVoice(variant=variant).render("Hello there.", sample_rate=16000)
        assert [w.text for w in rendering.words] == ["Hello", "there."]


# ---------------------------------------------------------------------------- factory
def test_make_voice_kinds() -> None:
    assert isinstance(make_voice("tone"), ToneVoice)
    assert make_voice("auto").name in ("tone", "espeak")
    with pytest.raises(ValueError, match="unknown voice kind"):
        make_voice("piper")


def test_missing_library_is_reported_and_auto_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Espeak, "_instance", None)
    monkeypatch.setenv("ESPEAK_NG_LIBRARY", "/nonexistent/libespeak-ng.so")
    with pytest.raises(VoiceUnavailable, match=r"pip install \"plugin-cartesia-ws\[espeak\]\""):
        EspeakVoice()
    with pytest.raises(VoiceUnavailable):
        make_voice("espeak")
    assert isinstance(make_voice("auto"), ToneVoice)


def test_timed_token_and_rendering_shapes() -> None:
    token = TimedToken("Hi", 0.0, 0.1)
    with pytest.raises(AttributeError):
        token.text = "Ho"  # type: ignore[misc]
    rendering = Rendering(np.zeros(800, dtype=np.int16), 8000, [token], [])
    assert rendering.duration == pytest.approx(0.1)
