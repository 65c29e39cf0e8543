"""Named emulator profiles: ``plain`` (the default: prompt, documented behaviour only) and
``cartesia`` (the orders and timing Cartesia's service shows; docs/emulator.md, "Profiles").

A profile is a set of ``EmulatorConfig`` defaults; options given explicitly win over it.
``CartesiaEmulator(profile=...)`` and ``--profile`` choose one; without either, the
environment variable ``CARTESIA_EMULATOR_PROFILE`` does (so a whole test run can switch).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from .lifecycle import ContextRules
from .pacing import LatencyModel
from .state import EmulatorConfig

PROFILE_ENV = "CARTESIA_EMULATOR_PROFILE"
PROFILES = ("plain", "cartesia")

# Where the numbers come from (docs/cartesia-protocol.md, sections 2.6, 2.7 and 7):
# - ttfa 190 ms: Cartesia's launch figure for sonic-3, 90 ms model latency and 190 ms end
#   to end; the emulator sits on loopback, so the end-to-end figure is what a client sees.
#   Jitter +-40 ms is ours (no published figure): network and load.
# - 1.5x real time: the only generation speed Cartesia published (Sonic: 1 s of audio in
#   ~650 ms); nothing newer is published, and a slower server is the safer test of a pacer.
# - 80 ms chunks: chunk sizes are undocumented; the plain profile's.
CARTESIA_LATENCY = LatencyModel(ttfa_ms=190.0, realtime_factor=1.5, chunk_ms=80.0, jitter_ms=40.0)
# - flush_done at every input boundary: seen with max_buffer_delay_ms 0 (livekit/agents#5321).
# - done up to 1 s after the last audio: issue 19 (a done 300 ms late is ordinary jitter).
# - expiry 1 s after the last audio (documented); later input ignored, not refused: no
#   error code for it is documented anywhere (every other refusal has one), and the one
#   report of an unsupported state (agents-js#681) shows a server going silent.
CARTESIA_RULES = ContextRules(
    auto_flush_done=True, done_delay_s=(0.0, 1.0), expiry="ignore", expiry_s=1.0
)


def profile_defaults(profile: str) -> dict[str, Any]:
    """The ``EmulatorConfig`` fields a profile sets."""
    if profile == "plain":
        return {}
    if profile == "cartesia":
        return {"latency": CARTESIA_LATENCY, "rules": CARTESIA_RULES}
    raise ValueError(f"unknown emulator profile {profile!r}; one of {', '.join(PROFILES)}")


def default_profile() -> str:
    return os.environ.get(PROFILE_ENV) or "plain"


def make_config(
    config: EmulatorConfig | None = None, profile: str | None = None, **options: Any
) -> EmulatorConfig:
    """A whole ``config`` is taken as given (plus ``options``); otherwise the profile's
    defaults (``profile``, else the environment's, else plain) under ``options``."""
    if config is not None:
        if profile is not None:
            options = {**profile_defaults(profile), "profile": profile, **options}
        return dataclasses.replace(config, **options) if options else config
    chosen = profile or default_profile()
    return EmulatorConfig(**{**profile_defaults(chosen), "profile": chosen, **options})
