"""Runs a test directory against both emulator profiles: ``plain`` and ``cartesia`` (the
orders and timing of Cartesia's service; docs/emulator.md, "Profiles").

A conftest takes ``emulator_profile = profile_fixture()``: an autouse fixture, parametrised
by profile, that sets ``CARTESIA_EMULATOR_PROFILE`` for the test, so every
``CartesiaEmulator`` the test starts (its fixtures' and its own) takes that profile's
defaults. ``EMULATOR_PROFILES=cartesia`` (a comma list) runs only some.

Tests that today's turn engine fails on the cartesia profile are listed with the reason
and marked ``xfail(strict=False)`` in that parametrisation only (``mark_known_failures``):
they stay visible in the report, and a fixed engine shows them as XPASS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from plugin_cartesia_ws.emulator import PROFILE_ENV, PROFILES

SELECT_ENV = "EMULATOR_PROFILES"


def selected_profiles() -> list[str]:
    chosen = [p.strip() for p in os.environ.get(SELECT_ENV, ",".join(PROFILES)).split(",")]
    unknown = sorted(set(chosen) - set(PROFILES) - {""})
    if unknown:
        raise pytest.UsageError(f"{SELECT_ENV}: unknown profiles {unknown}; one of {PROFILES}")
    return [p for p in chosen if p]


def profile_fixture() -> Any:
    @pytest.fixture(params=selected_profiles(), autouse=True)
    def emulator_profile(
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[str]:
        monkeypatch.setenv(PROFILE_ENV, request.param)
        yield request.param

    return emulator_profile


def mark_known_failures(items: list[pytest.Item], known: dict[str, str]) -> None:
    """``known`` maps a test's node id without the profile (``file.py::test[params]``, or
    ``file.py::test`` for every parametrisation) to why it fails on the cartesia profile."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("emulator_profile") != "cartesia":
            continue
        base = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1] + "::" + item.name
        plain_id = (
            base.replace("-cartesia]", "]").replace("[cartesia-", "[").replace("[cartesia]", "")
        )
        for key in (plain_id, plain_id.split("[", 1)[0]):
            if key in known:
                item.add_marker(pytest.mark.xfail(strict=False, reason=known[key]))
                break


def deselect_on_cartesia(
    config: pytest.Config, items: list[pytest.Item], keep: Callable[[pytest.Item], bool]
) -> None:
    """Runs only the cartesia-profile items ``keep`` accepts (to spare CI the rest)."""
    dropped = [
        item
        for item in items
        if getattr(item, "callspec", None) is not None
        and item.callspec.params.get("emulator_profile") == "cartesia"  # type: ignore[attr-defined]
        and not keep(item)
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        gone = set(map(id, dropped))
        items[:] = [item for item in items if id(item) not in gone]
