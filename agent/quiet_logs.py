"""One line per failed reply: LiveKit's tracebacks for a TTS failure, folded away.

When a TTS gives up on a reply, LiveKit logs the same exception 4-8 times as ERROR with a
traceback ("Error in _tts_inference_task", "Error in _tts_task", from the tasks that carry
the audio), although the failure is already one line from the plugin
(`livekit.plugins.cartesia_ws`) and one from the worker ("session error from TTS: ...").
This filter drops exactly those records: an `APIError` (the TTS's reported failure) in
one of LiveKit's TTS tasks. Any other exception keeps its traceback.
"""

from __future__ import annotations

import logging

from livekit.agents import APIError

LIVEKIT_LOGGER = "livekit.agents"
TTS_TASKS = ("Error in _tts_inference_task", "Error in _tts_task")


class FoldTtsTracebacks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(TTS_TASKS) or not record.exc_info:
            return True
        error = record.exc_info[1]
        return not isinstance(error, APIError)


def fold_tts_tracebacks() -> None:
    """Install the filter on LiveKit's logger (once per process)."""
    logger = logging.getLogger(LIVEKIT_LOGGER)
    if not any(isinstance(f, FoldTtsTracebacks) for f in logger.filters):
        logger.addFilter(FoldTtsTracebacks())
