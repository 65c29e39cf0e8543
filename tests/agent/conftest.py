"""Shared fixtures for the worker tests: a clean settings environment, and the worker's
session with headless outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from livekit.agents import AgentSession

from agent import worker
from agent.dev.audio_io import TranscriptCollector, VirtualSpeaker
from agent.settings import ENV_NAMES, Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No setting in the environment and no .env in the working directory, so a test
    sees only what it sets itself (monkeypatch restores everything afterwards)."""
    for name in (*ENV_NAMES, "LIVEKIT_AGENT_NAME", "LIVEKIT_AGENT_NAME_OVERRIDE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.fixture
def headless_session(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """`worker.build_session` as the worker calls it, with the room's audio track and text
    stream replaced by a VirtualSpeaker (instant) and a TranscriptCollector (the fake job's
    room is never connected). What was built lands in the dict: session, settings,
    speaker, text."""
    made: dict[str, object] = {}
    real_build_session = worker.build_session

    def build_session(settings: Settings, **kwargs: object) -> AgentSession:
        session = real_build_session(settings, **kwargs)  # type: ignore[arg-type]
        session.output.audio = made.setdefault("speaker", VirtualSpeaker(instant=True))  # type: ignore[assignment]
        session.output.transcription = made.setdefault("text", TranscriptCollector())  # type: ignore[assignment]
        made.update(session=session, settings=settings)
        return session

    monkeypatch.setattr(worker, "build_session", build_session)
    return made
