"""Which model ids the emulator accepts: the listed ones, their families' dated snapshots and
the next family versions by default; only the listed ones when strict."""

from __future__ import annotations

import pytest

from plugin_cartesia_ws.emulator.catalogue import MODELS, Catalogue, model_status

LENIENT = Catalogue()
STRICT = Catalogue.strict()


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_listed_model_is_accepted_in_both_modes(model: str) -> None:
    assert model_status(model, LENIENT) == model_status(model, STRICT) == "ok"


def test_pipecats_default_is_listed() -> None:
    assert "sonic-3.6" in MODELS


@pytest.mark.parametrize(
    "model",
    [
        "sonic-3.6-2026-12-01",  # a snapshot released after this list was written
        "sonic-3-2026-03-15",
        "sonic-2-2025-09-01",
        "sonic-turbo-2026-01-01",
        "sonic-3.7",  # the next family versions
        "sonic-3.10",
        "sonic-4",
        "sonic-4.1-2027-02-01",
    ],
)
def test_dated_and_future_ids_are_accepted_unless_strict(model: str) -> None:
    assert model_status(model, LENIENT) == "ok"
    assert model_status(model, STRICT) == "unknown"


@pytest.mark.parametrize(
    "model",
    [
        "sonic-9",  # more than one major version ahead
        "sonic-5",
        "sonic-1",  # never existed
        "sonic-3.1",  # older than the newest family, and not listed
        "sonic-3-2024-01-01",  # before the family's first snapshot
        "sonic-3-2026-02-30",  # not a date
        "sonic-3.6-latest",
        "sonic-foo",
        "gpt-4o-mini-tts",
        "",
        " sonic-3",
    ],
)
def test_ids_no_service_would_route_are_unknown(model: str) -> None:
    assert model_status(model, LENIENT) == "unknown"


@pytest.mark.parametrize("model", [None, 3, ["sonic-3"], {"id": "sonic-3"}])
def test_non_strings_are_unknown(model: object) -> None:
    assert model_status(model, LENIENT) == "unknown"


@pytest.mark.parametrize(
    "model",
    ["sonic", "sonic-english", "sonic-multilingual", "sonic-2-2025-03-07", "sonic-2024-12-12"],
)
def test_sunsetted_models_and_snapshots(model: str) -> None:
    assert model_status(model, LENIENT) == "sunsetted"


def test_a_custom_strict_list() -> None:
    only = Catalogue.strict(frozenset({"my-model"}))
    assert model_status("my-model", only) == "ok"
    assert model_status("sonic-3", only) == "unknown"
    assert model_status("sonic-english", only) == "sunsetted"  # the sunset list still applies


def test_the_next_family_is_relative_to_the_newest_listed() -> None:
    older = Catalogue(models=frozenset({"sonic-2", "sonic-2-2025-04-16"}))
    assert model_status("sonic-2.5", older) == "ok"
    assert model_status("sonic-3", older) == "ok"
    assert model_status("sonic-4", older) == "unknown"
