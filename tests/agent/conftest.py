"""Shared fixtures for the worker tests: a clean settings environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.settings import ENV_NAMES


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No setting in the environment and no .env in the working directory, so a test
    sees only what it sets itself (monkeypatch restores everything afterwards)."""
    for name in (*ENV_NAMES, "LIVEKIT_AGENT_NAME", "LIVEKIT_AGENT_NAME_OVERRIDE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch
