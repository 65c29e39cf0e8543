"""The plugin's one logger (LiveKit plugin convention: livekit.plugins.<name>)."""

import logging

logger = logging.getLogger("livekit.plugins.cartesia_ws")
