"""Streaming Cartesia WebSocket TTS for LiveKit Agents.

A drop-in for ``livekit.plugins.cartesia.TTS``: one warm socket per TTS, one Cartesia
context per agent turn, text sent as the LLM streams it, and a real ``cancel`` on
barge-in. ``plugin_cartesia_ws.emulator`` runs Cartesia's protocol locally.
"""

from __future__ import annotations

import threading

from livekit.agents import Plugin

from .breaker import ReconnectPolicy
from .chunked import ChunkedStream
from .chunking import ChunkingPolicy
from .log import logger
from .models import TTSDefaultVoiceId
from .stream import SynthesizeStream
from .tts import TTS
from .turn_stats import TurnStats
from .version import __version__

__all__ = [
    "TTS",
    "SynthesizeStream",
    "ChunkedStream",
    "TurnStats",
    "ChunkingPolicy",
    "ReconnectPolicy",
    "TTSDefaultVoiceId",
    "__version__",
]


class CartesiaWSPlugin(Plugin):
    def __init__(self) -> None:
        super().__init__(__name__, __version__, __package__, logger)


# LiveKit requires plugins to register on the main thread (agents/plugin.py).
if threading.current_thread() is threading.main_thread():
    Plugin.register_plugin(CartesiaWSPlugin())
