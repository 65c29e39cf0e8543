"""Pure: which ``model_id`` values the emulator accepts, as Cartesia's service would.

Cartesia names models by family (``sonic-3.6``) and by dated snapshot of a family
(``sonic-3.6-2026-08-27``); a family name routes to its newest snapshot. Clients move to new
families and snapshots as Cartesia ships them (pipecat's default went from ``sonic-3.5`` to
``sonic-3.6``), so by default the emulator also accepts ids shaped like a snapshot of a listed
family or like the next family version: a test suite keeps working when a client bumps its
default. ``Catalogue.strict()`` accepts only the listed ids, for tests of the 400.
See ``docs/cartesia-protocol.md`` (models).

Voices: like Cartesia, the emulator knows its voices (``VOICES``) and answers any other id
with 404 ``voice_not_found``, so a typo shows up here and not first against the service.
``Catalogue(voices=None)`` (``--accept-any-voice``) accepts every id.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

# What Cartesia lists today (docs' model pages, the SDKs' ``TTSModel`` types, pipecat's
# default). Aliases (``-latest``) and families route to a snapshot.
MODELS = frozenset(
    {
        "sonic-3.6",
        "sonic-3.6-2026-08-27",
        "sonic-3.5",
        "sonic-3.5-2026-05-04",
        "sonic-3",
        "sonic-3-2026-01-12",
        "sonic-3-2025-10-27",
        "sonic-latest",
        "sonic-3-latest",
        "sonic-2",
        "sonic-2-2025-04-16",
        "sonic-2-2025-05-08",
        "sonic-2-2025-06-11",
        "sonic-turbo",
        "sonic-turbo-2025-06-04",
    }
)
# Discontinued on 2026-06-01; requests answer 410 ``model_sunsetted``.
SUNSETTED_MODELS = frozenset(
    {
        "sonic",
        "sonic-english",
        "sonic-multilingual",
        "sonic-2-2025-03-07",
        "sonic-turbo-2025-03-07",
    }
)
# Families whose every snapshot was discontinued (``sonic-2024-12-12`` and the like).
SUNSETTED_FAMILIES = frozenset({"sonic"})

# Voices the emulator knows by default: the defaults of the clients it is used with and
# the ids this repository's docs and tests name. Extend with Catalogue(voices=...) or
# --voices; switch the check off with --accept-any-voice.
VOICES: dict[str, str] = {
    "f786b574-daa5-4673-aa0c-cbe3e8534c02": "LiveKit's default Cartesia voice",
    "6ccbfb76-1fc6-48f7-b71d-91ac6298247b": "the cartesia Python SDK's default voice",
    "694f9389-aac1-45b6-b726-9d9369183238": "a voice of Cartesia's request examples",
    "a0e99841-438c-4a64-b679-ae501e7d6091": "a voice of Cartesia's quickstart examples",
}

ModelStatus = Literal["ok", "sunsetted", "unknown"]

_DATED = re.compile(r"^(?P<family>.+)-(?P<date>\d{4}-\d{2}-\d{2})$")
_VERSIONED = re.compile(r"^sonic-(?P<major>\d+)(?:\.(?P<minor>\d+))?$")


@dataclass(frozen=True)
class Catalogue:
    """What this server accepts: models, sunsetted models, voices (default ``VOICES``;
    None = any id).

    ``accept_family_ids``: also accept dated snapshots of listed families and newer
    versions of the newest family (at most one major version ahead), as a service that
    has shipped them would.
    """

    models: frozenset[str] = MODELS
    sunsetted_models: frozenset[str] = SUNSETTED_MODELS
    voices: frozenset[str] | None = frozenset(VOICES)
    accept_family_ids: bool = True

    @classmethod
    def strict(cls, models: frozenset[str] = MODELS, **fields: object) -> Catalogue:
        """Only the listed ids: a model Cartesia has not listed is a 400."""
        return cls(models=frozenset(models), accept_family_ids=False, **fields)  # type: ignore[arg-type]


def voice_known(voice_id: str, catalogue: Catalogue) -> bool:
    return catalogue.voices is None or voice_id in catalogue.voices


def voice_info(voice_id: str) -> dict[str, object]:
    """The fields of Cartesia's voice object that clients read (``GET /voices/{id}``)."""
    return {
        "id": voice_id,
        "name": VOICES.get(voice_id, "emulated voice"),
        "description": "Served by the Cartesia emulator.",
        "language": "en",
        "is_public": True,
        "is_owner": False,
        "created_at": "2025-01-01T00:00:00Z",
    }


def model_status(model_id: object, catalogue: Catalogue) -> ModelStatus:
    """``ok``, ``sunsetted`` (410) or ``unknown`` (400 ``model_not_found``)."""
    if not isinstance(model_id, str):
        return "unknown"
    if model_id in catalogue.sunsetted_models:
        return "sunsetted"
    if model_id in catalogue.models:
        return "ok"
    if not catalogue.accept_family_ids:
        return "unknown"
    dated = _DATED.match(model_id)
    if dated is not None:
        family, date = dated["family"], _parse_date(dated["date"])
        if date is None:
            return "unknown"
        if family in SUNSETTED_FAMILIES:
            return "sunsetted"
        if _family_status(family, catalogue) != "ok":
            return "unknown"
        first = _first_snapshot(family, catalogue)
        return "ok" if first is None or date >= first else "unknown"
    return _family_status(model_id, catalogue)


def _family_status(family: str, catalogue: Catalogue) -> ModelStatus:
    if family in catalogue.models:
        return "ok"
    version = _version(family)
    newest = max(
        (v for v in (_version(m) for m in catalogue.models) if v is not None), default=None
    )
    if version is None or newest is None:
        return "unknown"
    return "ok" if newest < version and version[0] <= newest[0] + 1 else "unknown"


def _version(model_id: str) -> tuple[int, int] | None:
    match = _VERSIONED.match(model_id)
    if match is None:
        return None
    return int(match["major"]), int(match["minor"] or 0)


def _first_snapshot(family: str, catalogue: Catalogue) -> dt.date | None:
    """The oldest listed snapshot of a family: older dates never existed."""
    dates = []
    for model in catalogue.models:
        dated = _DATED.match(model)
        if dated is not None and dated["family"] == family:
            dates.append(_parse_date(dated["date"]))
    known = [d for d in dates if d is not None]
    return min(known) if known else None


def _parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None
