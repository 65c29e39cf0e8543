"""`python -m agent simulate`: full voice turns with no LiveKit server, no sound card and
no cloud account. What `make demo` runs.

User speech (a WAV file, or text spoken by eSpeak) goes through a paced virtual microphone
into the AgentSession that `agent.worker` builds for a room: real Silero VAD, STT, LLM
and `plugin_cartesia_ws.TTS`. The agent's audio plays on a virtual real-time speaker, so
barge-in behaves as it would in a room. Out come the reply as a WAV, a timeline plot, the
conversation as JSON, and a per-turn latency table on the console.

Each component is the real one when configured, else an offline stand-in:

    STT  OpenAI (OPENAI_API_KEY or OPENAI_STT_BASE_URL)  else local Whisper tiny.en
    LLM  OpenAI-compatible (OPENAI_API_KEY or OPENAI_BASE_URL)  else an echo responder
    TTS  Cartesia (CARTESIA_API_KEY, CARTESIA_BASE_URL)  else the emulator, in process

One module per job: `speech` (the user's utterances), `components` (who plays each role),
`session` (the harness around the AgentSession), `report` (console and files), `cli`.
"""

from .cli import DEFAULT_BARGE_IN, DEFAULT_QUESTION, PROG, Result, main
from .components import Components, choose_components
from .report import conversation_audio, heard_audio
from .session import TTS_STREAM_TAG, Simulation, UserSpeech
from .speech import USER_RATE, SimulationError, Utterance, espeak_utterance, wav_utterance

__all__ = [
    "DEFAULT_BARGE_IN",
    "DEFAULT_QUESTION",
    "PROG",
    "TTS_STREAM_TAG",
    "USER_RATE",
    "Components",
    "Result",
    "Simulation",
    "SimulationError",
    "UserSpeech",
    "Utterance",
    "choose_components",
    "conversation_audio",
    "espeak_utterance",
    "heard_audio",
    "main",
    "wav_utterance",
]
