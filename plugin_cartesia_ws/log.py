"""The plugin's one logger (LiveKit plugin convention: livekit.plugins.<name>)."""

from __future__ import annotations

import logging

logger = logging.getLogger("livekit.plugins.cartesia_ws")


class WarnOnce:
    """A problem that repeats every frame is worth one log line, not thousands."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, key: str, message: str, detail: str = "") -> None:
        if key not in self._seen:
            self._seen.add(key)
            logger.warning(message, extra={"detail": detail} if detail else None)
