"""Settings: .env parsing, environment precedence, required settings, secret masking."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from agent.settings import (
    DEFAULT_CARTESIA_VOICE,
    ENV_NAMES,
    InvalidSetting,
    MissingSetting,
    Settings,
    load_dotenv_into,
    parse_dotenv,
)

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------- .env dialect
def test_parse_dotenv_dialect() -> None:
    text = "\n".join(
        [
            "# a comment",
            "",
            "PLAIN=value",
            "export EXPORTED=yes",
            "  SPACED  =  padded value  ",
            "INLINE=abc # trailing comment",
            "HASH_IN_WORD=abc#def",
            "SINGLE='lit # not a comment \\n'",
            'DOUBLE="line1\\nline2 \\"quoted\\" # kept"  # comment',
            "EMPTY=",
            'EMPTY_QUOTED=""',
            "URL=http://127.0.0.1:8080/v1?x=1",
        ]
    )
    assert parse_dotenv(text) == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "padded value",
        "INLINE": "abc",
        "HASH_IN_WORD": "abc#def",
        "SINGLE": "lit # not a comment \\n",
        "DOUBLE": 'line1\nline2 "quoted" # kept',
        "EMPTY": "",
        "EMPTY_QUOTED": "",
        "URL": "http://127.0.0.1:8080/v1?x=1",
    }


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("GOOD=1\nnot a setting\n", "line 2 is not KEY=VALUE"),
        ('A="unterminated\n', "line 1 has an unterminated"),
        ("A='x' junk\n", "line 1 has text after the closing quote"),
        ("1BAD=x\n", "line 1 is not KEY=VALUE"),
    ],
)
def test_parse_dotenv_rejects_malformed_lines(text: str, fragment: str) -> None:
    with pytest.raises(InvalidSetting, match=fragment) as e:
        parse_dotenv(text)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------- from_env
def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    s = Settings.from_env(env={}, dotenv_path=tmp_path / "missing.env")
    assert s.cartesia_model == "sonic-3"
    assert s.cartesia_language == "en"
    assert s.cartesia_base_url == "https://api.cartesia.ai"
    assert s.cartesia_sample_rate == 24000
    assert s.tts_chunking == "clause"
    assert s.openai_llm_model == "gpt-4o-mini"
    assert s.openai_stt_model == "gpt-4o-mini-transcribe"
    assert s.openai_base_url is None
    assert s.livekit_url is None and s.cartesia_api_key is None
    assert s.interruption_mode == "vad" and s.turn_detection == "vad"
    assert s.vad_min_silence == 0.55  # LiveKit's silero default
    assert s.agent_name == "" and s.agent_instructions
    assert s.log_level is None


def test_default_voice_is_the_official_plugins_default() -> None:
    from livekit.plugins.cartesia.models import TTSDefaultVoiceId

    assert DEFAULT_CARTESIA_VOICE == TTSDefaultVoiceId
    assert Settings().cartesia_voice == TTSDefaultVoiceId


def test_environment_beats_dotenv_and_blank_means_default(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "LIVEKIT_URL=ws://from-file:7880\n"
        "CARTESIA_MODEL=sonic-2\n"
        "OPENAI_LLM_MODEL=llama3.2\n"
        "CARTESIA_VOICE=\n"
        "CARTESIA_SAMPLE_RATE=16000\n"
        "TTS_CHUNKING=Sentence\n"
        "LOG_LEVEL=debug\n"
        "UNRELATED=ignored\n"
    )
    env = {"LIVEKIT_URL": "wss://from-env", "OPENAI_LLM_MODEL": "  ", "PATH": "/bin"}
    s = Settings.from_env(env=env, dotenv_path=dotenv)
    assert s.livekit_url == "wss://from-env"  # environment wins
    assert s.openai_llm_model == "llama3.2"  # a blank environment value does not
    assert s.cartesia_model == "sonic-2"
    assert s.cartesia_voice == DEFAULT_CARTESIA_VOICE  # blank in the file: default
    assert s.cartesia_sample_rate == 16000
    assert s.tts_chunking == "sentence"
    assert s.log_level == "DEBUG"


def test_dotenv_path_none_skips_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("CARTESIA_MODEL=sonic-2\n")
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env(env={}).cartesia_model == "sonic-2"  # ".env" is the default
    assert Settings.from_env(env={}, dotenv_path=None).cartesia_model == "sonic-3"


def test_from_env_defaults_to_os_environ(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AGENT_NAME", "my-agent")
    assert Settings.from_env().agent_name == "my-agent"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        (
            "TTS_CHUNKING",
            "words",
            "TTS_CHUNKING='words' is not valid: use one of clause, sentence, tokens",
        ),
        ("INTERRUPTION_MODE", "smart", "use one of vad, adaptive"),
        (
            "CARTESIA_SAMPLE_RATE",
            "24k",
            "CARTESIA_SAMPLE_RATE='24k' is not valid: expected a whole number",
        ),
        ("WORKER_LOAD_THRESHOLD", "high", "expected a number"),
        ("VAD_MIN_SILENCE", "short", "VAD_MIN_SILENCE='short' is not valid: expected a number"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL='loud' is not valid"),
    ],
)
def test_invalid_values_name_the_variable(name: str, value: str, fragment: str) -> None:
    with pytest.raises(InvalidSetting) as e:
        Settings.from_env(env={name: value}, dotenv_path=None)
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------- require
def test_missing_setting_message_is_one_clear_line() -> None:
    with pytest.raises(MissingSetting) as e:
        Settings().require("LIVEKIT_URL")
    assert str(e.value) == "LIVEKIT_URL is not set: export it or put it in .env (see .env.example)"
    assert e.value.names == ("LIVEKIT_URL",)


def test_missing_settings_are_all_named_in_one_line() -> None:
    s = Settings(livekit_url="ws://x")
    with pytest.raises(MissingSetting) as e:
        s.require_livekit()
    assert str(e.value) == (
        "LIVEKIT_API_KEY, LIVEKIT_API_SECRET are not set: "
        "export them or put them in .env (see .env.example)"
    )


def test_require_passes_and_chains() -> None:
    s = Settings(livekit_url="ws://x", livekit_api_key="k", livekit_api_secret="s")
    assert s.require_livekit() is s
    assert s.require("livekit_url") is s  # field names work too
    with pytest.raises(KeyError):
        s.require("NOT_A_SETTING")


def test_openai_key_needed_only_without_a_base_url() -> None:
    with pytest.raises(MissingSetting) as e:
        Settings(cartesia_api_key="c").require_models()
    assert e.value.names == ("OPENAI_API_KEY",)
    local = Settings(cartesia_api_key="c", openai_base_url="http://localhost:11434/v1")
    assert local.require_models() is local
    assert local.openai_api_key_or_placeholder == "unused"
    with pytest.raises(MissingSetting) as e:
        Settings(openai_api_key="o").require_models()
    assert e.value.names == ("CARTESIA_API_KEY",)


def test_stt_base_url_falls_back_to_the_llm_server() -> None:
    ollama = "http://localhost:11434/v1"
    assert Settings(openai_base_url=ollama).stt_base_url == ollama
    split = Settings(openai_base_url=ollama, openai_stt_base_url="https://api.openai.com/v1")
    assert split.stt_base_url == "https://api.openai.com/v1"
    assert Settings().stt_base_url is None  # the OpenAI client's default
    # both at OpenAI: the key is needed, even with only one base URL pointing elsewhere
    with pytest.raises(MissingSetting, match="OPENAI_API_KEY"):
        Settings(
            cartesia_api_key="c", openai_stt_base_url="http://whisper:8000/v1"
        ).require_models()


# ---------------------------------------------------------------------- display
def test_secrets_never_appear_in_repr_or_str() -> None:
    secrets = {
        "livekit_api_key": "APIkeyVALUE123",
        "livekit_api_secret": "lk-secret-VALUE-456",
        "cartesia_api_key": "sk_car_VALUE789",
        "openai_api_key": "sk-proj-VALUE000",
    }
    s = Settings(livekit_url="wss://demo.livekit.cloud", agent_name="helper", **secrets)
    for text in (repr(s), str(s), f"{s}", f"{s!r}", repr([s])):
        for value in secrets.values():
            assert value not in text
        for name in secrets:
            assert f"{name}='***'" in text
        assert "livekit_url='wss://demo.livekit.cloud'" in text
        assert "agent_name='helper'" in text
    assert "openai_api_key=None" in repr(Settings())  # unset is shown as unset


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().agent_name = "x"  # type: ignore[misc]


# ---------------------------------------------------------------------- files
def test_env_example_lists_every_setting_and_nothing_else() -> None:
    values = parse_dotenv((REPO / ".env.example").read_text())
    assert set(values) == set(ENV_NAMES)
    # and parses into valid settings as shipped
    Settings.from_env(env={}, dotenv_path=REPO / ".env.example")


def test_load_dotenv_into_keeps_existing_variables(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("A=from-file\nB=from-file\n")
    environ = {"A": "from-env"}
    assert load_dotenv_into(environ, dotenv) == ["B"]
    assert environ == {"A": "from-env", "B": "from-file"}
    assert load_dotenv_into(environ, tmp_path / "none.env") == []
    assert "B" not in os.environ
