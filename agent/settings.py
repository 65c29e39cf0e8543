"""Worker configuration: environment variables, optionally backed by a `.env` file.

Every setting is one environment variable (the field name in upper case). Real environment
variables win over the `.env` file, and an empty value means "use the default", so a copy
of `.env.example` with blanks left in works as is. Secrets never appear in `repr()`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from plugin_cartesia_ws.audio import SAMPLE_RATES
from plugin_cartesia_ws.models import DEFAULT_BASE_URL, TTSDefaultVoiceId

# The plugin's defaults, which are the official LiveKit Cartesia plugin's.
DEFAULT_CARTESIA_VOICE = TTSDefaultVoiceId

DEFAULT_INSTRUCTIONS = (
    "You are a friendly voice assistant. Your replies are spoken aloud, so keep them short "
    "and conversational: plain sentences, no markdown, no lists, no emojis."
)

TTSChunking = Literal["clause", "sentence", "tokens"]
TTSPlugin = Literal["cartesia_ws", "livekit"]
InterruptionMode = Literal["vad", "adaptive"]
TurnDetection = Literal["vad", "model"]
OnOff = Literal["on", "off"]
ON_OFF: tuple[str, ...] = get_args(OnOff)
JobExecutor = Literal["process", "thread"]
TTS_CHUNKING_MODES: tuple[str, ...] = get_args(TTSChunking)
TTS_PLUGINS: tuple[str, ...] = get_args(TTSPlugin)
INTERRUPTION_MODES: tuple[str, ...] = get_args(InterruptionMode)
TURN_DETECTION_MODES: tuple[str, ...] = get_args(TurnDetection)
JOB_EXECUTORS: tuple[str, ...] = get_args(JobExecutor)
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "CRITICAL")

_HOW_TO_SET = "export it or put it in .env (see .env.example)"


class SettingsError(Exception):
    """A setting is missing or has an invalid value. `str(e)` is one line, made for users."""


class MissingSetting(SettingsError):
    """One or more required settings are not set."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        if len(self.names) == 1:
            msg = f"{self.names[0]} is not set: {_HOW_TO_SET}"
        else:
            msg = f"{', '.join(self.names)} are not set: export them or put them in .env (see .env.example)"
        super().__init__(msg)


class InvalidSetting(SettingsError):
    """A setting has a value the worker cannot use."""


def _setting(
    default: Any,
    *,
    secret: bool = False,
    choices: tuple[str, ...] = (),
    schemes: tuple[str, ...] = (),
    values: tuple[int, ...] = (),
) -> Any:
    """`choices`: the words allowed; `schemes`: a URL with one of these schemes and a host;
    `values`: the whole numbers allowed."""
    meta = {"secret": secret, "choices": choices, "schemes": schemes, "values": values}
    return field(default=default, metadata=meta)


_WEB_SCHEMES = ("http", "https", "ws", "wss")


@dataclass(frozen=True, repr=False)
class Settings:
    """All worker settings. Build it with `Settings.from_env()`."""

    # LiveKit server or Cloud project the worker registers with.
    livekit_url: str | None = _setting(None, schemes=_WEB_SCHEMES)
    livekit_api_key: str | None = _setting(None, secret=True)
    livekit_api_secret: str | None = _setting(None, secret=True)

    # Cartesia (or the local emulator: CARTESIA_BASE_URL=http://127.0.0.1:<port>).
    cartesia_api_key: str | None = _setting(None, secret=True)
    cartesia_base_url: str = _setting(DEFAULT_BASE_URL, schemes=_WEB_SCHEMES)
    cartesia_model: str = _setting("sonic-3")
    cartesia_voice: str = _setting(DEFAULT_CARTESIA_VOICE)
    cartesia_language: str = _setting("en")
    cartesia_sample_rate: int = _setting(24000, values=SAMPLE_RATES)
    tts_chunking: TTSChunking = _setting("clause", choices=TTS_CHUNKING_MODES)
    # Which Cartesia plugin speaks: ours, or LiveKit's official one (for comparisons).
    tts_plugin: TTSPlugin = _setting("cartesia_ws", choices=TTS_PLUGINS)
    # At start-up, ask Cartesia whether it accepts the key and knows the voice ("off":
    # start without asking, e.g. offline).
    cartesia_check: OnOff = _setting("on", choices=ON_OFF)
    # Speculative speech: while the user's turn is not yet confirmed, LiveKit's preemptive
    # generation runs the LLM; "on" also starts the TTS (with our plugin only: paced and
    # cancelled on a warm socket, a discarded guess costs at most one pacing lead of text).
    preemptive_tts: OnOff = _setting("on", choices=ON_OFF)

    # OpenAI or any OpenAI-compatible server (Ollama, vLLM, ...).
    openai_api_key: str | None = _setting(None, secret=True)
    openai_base_url: str | None = _setting(None, schemes=("http", "https"))
    openai_llm_model: str = _setting("gpt-4o-mini")
    openai_stt_model: str = _setting("gpt-4o-mini-transcribe")
    # STT elsewhere than the LLM (Ollama has no transcription endpoint); default: the same
    openai_stt_base_url: str | None = _setting(None, schemes=("http", "https"))

    # The agent itself.
    agent_name: str = _setting("")
    agent_instructions: str = _setting(DEFAULT_INSTRUCTIONS)
    agent_greeting: str = _setting("")
    turn_detection: TurnDetection = _setting("vad", choices=TURN_DETECTION_MODES)
    # Seconds of silence before Silero VAD ends a stretch of speech (LiveKit's default). With
    # an STT that transcribes whole utterances (OpenAI's HTTP endpoint), the transcript, and
    # so LiveKit's preemptive generation, only starts after it.
    vad_min_silence: float = _setting(0.55)
    # Seconds after the last speech before the user's turn is committed (LiveKit's endpointing
    # min_delay). Longer: fewer cut-off users, and a head start for speculative speech.
    endpointing_min_delay: float = _setting(0.5)
    interruption_mode: InterruptionMode = _setting("vad", choices=INTERRUPTION_MODES)

    # Worker process.
    worker_port: int = _setting(8081)
    # Address of the health-check server: empty for every interface (a container's probes
    # come from outside it); 127.0.0.1 where nothing else may reach it.
    worker_host: str = _setting("")
    worker_load_threshold: float = _setting(0.9)
    # Sessions per worker process; 0: LiveKit's CPU-based load decides when it is full.
    worker_max_jobs: int = _setting(0)
    # Each session in its own process (LiveKit's default) or in a thread of one process.
    worker_job_executor: JobExecutor = _setting("process", choices=JOB_EXECUTORS)
    # On SIGTERM: take no new rooms, let running sessions finish for at most this many
    # seconds, then exit (LiveKit's default is an hour; a pod's grace period must cover it).
    worker_drain_timeout: int = _setting(600)
    log_level: str | None = _setting(None, choices=LOG_LEVELS)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        dotenv_path: str | os.PathLike[str] | None = ".env",
    ) -> Settings:
        """Read the settings from `env` (default: `os.environ`), falling back to the
        `.env` file at `dotenv_path` (skipped when None or when the file does not exist).
        Raises `InvalidSetting` for a value that cannot be used (bad number or choice)."""
        env = os.environ if env is None else env
        values: dict[str, str] = {}
        if dotenv_path is not None and Path(dotenv_path).is_file():
            values.update(parse_dotenv(Path(dotenv_path).read_text(encoding="utf-8")))
        # a non-empty environment variable beats the file; an empty one does not
        values.update({k: v for k, v in env.items() if k in _ENV_NAMES and v.strip()})

        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = values.get(f.name.upper(), "").strip()
            if raw:
                kwargs[f.name] = _convert(f, raw)
        return cls(**kwargs)

    # ------------------------------------------------------------------ checks
    def require(self, *names: str) -> Settings:
        """Raise `MissingSetting` naming every one of `names` (env names, e.g.
        "LIVEKIT_URL") that is not set. Returns self, for chaining."""
        missing = []
        for name in names:
            attr = name.lower()
            if attr not in _FIELDS:
                raise KeyError(f"unknown setting {name!r}")
            if getattr(self, attr) in (None, ""):
                missing.append(name.upper())
        if missing:
            raise MissingSetting(missing)
        return self

    def require_livekit(self) -> Settings:
        return self.require("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")

    @property
    def stt_base_url(self) -> str | None:
        """Where transcription goes: OPENAI_STT_BASE_URL, else OPENAI_BASE_URL, else OpenAI."""
        return self.openai_stt_base_url or self.openai_base_url

    def require_models(self) -> Settings:
        """What a voice session needs: a Cartesia key, and an OpenAI key unless both the
        LLM and the STT go to other OpenAI-compatible servers (which may not need one)."""
        names = ["CARTESIA_API_KEY"]
        if not (self.openai_base_url and self.stt_base_url):
            names.append("OPENAI_API_KEY")
        return self.require(*names)

    def components(self) -> dict[str, str]:
        """What a session's LLM, STT and TTS are and where they go, for the logs (a local
        stand-in shows as its own model name and its local URL)."""
        return {
            "llm": f"{self.openai_llm_model} at {self.openai_base_url or 'OpenAI'}",
            "stt": f"{self.openai_stt_model} at {self.stt_base_url or 'OpenAI'}",
            "tts": f"{self.cartesia_model} by {self.tts_plugin} at {self.cartesia_base_url}",
        }

    @property
    def openai_api_key_or_placeholder(self) -> str:
        """Local OpenAI-compatible servers (Ollama, vLLM) ignore the key, but the OpenAI
        client refuses to start without one."""
        return self.openai_api_key or "unused"

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                parts.append(f"{f.name}='***'")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    __str__ = __repr__


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_ENV_NAMES = frozenset(name.upper() for name in _FIELDS)
ENV_NAMES: tuple[str, ...] = tuple(name.upper() for name in _FIELDS)
"""Every environment variable the worker reads, in declaration order."""


def _convert(f: dataclasses.Field[Any], raw: str) -> Any:
    name = f.name.upper()
    choices: tuple[str, ...] = f.metadata.get("choices", ())
    if choices:
        value = raw.upper() if f.name == "log_level" else raw.lower()
        if value not in choices:
            raise InvalidSetting(f"{name}={raw!r} is not valid: use one of {', '.join(choices)}")
        return value
    schemes: tuple[str, ...] = f.metadata.get("schemes", ())
    if schemes:
        return check_url(name, raw, schemes)
    default_type = type(f.default)
    if default_type is int:
        try:
            number = int(raw)
        except ValueError:
            raise InvalidSetting(f"{name}={raw!r} is not valid: expected a whole number") from None
        allowed: tuple[int, ...] = f.metadata.get("values", ())
        if allowed and number not in allowed:
            listed = ", ".join(map(str, allowed))
            raise InvalidSetting(f"{name}={raw!r} is not valid: use one of {listed}")
        return number
    if default_type is float:
        try:
            return float(raw)
        except ValueError:
            raise InvalidSetting(f"{name}={raw!r} is not valid: expected a number") from None
    return raw


_URL_EXAMPLES = {"LIVEKIT_URL": "ws://127.0.0.1:7880", "CARTESIA_BASE_URL": DEFAULT_BASE_URL}


def check_url(name: str, raw: str, schemes: tuple[str, ...] = _WEB_SCHEMES) -> str:
    """A URL the clients can dial: one of `schemes` and a host (`localhost:7880` has
    neither: urlsplit reads "localhost" as its scheme)."""
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in schemes or not parts.hostname:
        example = _URL_EXAMPLES.get(name, "http://127.0.0.1:8080/v1")
        raise InvalidSetting(
            f"{name}={raw!r} is not valid: expected a URL starting with "
            f"{' or '.join(s + '://' for s in schemes)} and a host, e.g. {example}"
        )
    return raw


# ---------------------------------------------------------------------- .env files
_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def parse_dotenv(text: str) -> dict[str, str]:
    """Parse the common `.env` dialect: `KEY=value`, optional `export `, `#` comments
    (whole-line, or after whitespace in an unquoted value), single quotes (literal) and
    double quotes (with \\n, \\t, \\", \\\\ escapes). No variable expansion, no multi-line
    values. A malformed line raises `InvalidSetting` naming the line number."""
    result: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _LINE.match(stripped)
        if m is None:
            raise InvalidSetting(f".env line {lineno} is not KEY=VALUE: {stripped[:40]!r}")
        key, rest = m.group(1), m.group(2)
        result[key] = _dotenv_value(rest, lineno)
    return result


def _dotenv_value(rest: str, lineno: int) -> str:
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        out: list[str] = []
        i = 1
        while i < len(rest):
            ch = rest[i]
            if quote == '"' and ch == "\\" and i + 1 < len(rest):
                out.append(_ESCAPES.get(rest[i + 1], "\\" + rest[i + 1]))
                i += 2
                continue
            if ch == quote:
                tail = rest[i + 1 :].strip()
                if tail and not tail.startswith("#"):
                    raise InvalidSetting(f".env line {lineno} has text after the closing quote")
                return "".join(out)
            out.append(ch)
            i += 1
        raise InvalidSetting(f".env line {lineno} has an unterminated {quote} quote")
    # unquoted: a comment starts at a '#' preceded by whitespace
    m = re.search(r"\s#", rest)
    if m is not None:
        rest = rest[: m.start()]
    return rest.strip()


def load_dotenv_into(
    environ: MutableMapping[str, str], dotenv_path: str | os.PathLike[str] = ".env"
) -> list[str]:
    """Copy the `.env` values into `environ` where the variable is not set already (so
    LiveKit's own CLI and the job processes see them too). Returns the names copied."""
    path = Path(dotenv_path)
    if not path.is_file():
        return []
    copied = []
    for key, value in parse_dotenv(path.read_text(encoding="utf-8")).items():
        if key not in environ:
            environ[key] = value
            copied.append(key)
    return copied
