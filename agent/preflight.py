"""Check the LiveKit server before the worker starts, so a wrong URL or secret is one clear
line and exit status, not LiveKit's 16 retries over minutes ("failed to connect to livekit,
retrying in 10s").

One authenticated API call (ListRooms, which every project key may make) tells the three
cases apart: nothing listens there, the server rejects the key or secret, or it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Iterator

import aiohttp
from livekit import api

from .settings import Settings, SettingsError

TIMEOUT_S = 5.0


class ServerCheckFailed(SettingsError):
    """The LiveKit server cannot be reached or refuses the credentials. One line."""


async def check_livekit(settings: Settings, timeout: float = TIMEOUT_S) -> None:
    settings.require_livekit()
    url = str(settings.livekit_url)
    try:
        async with api.LiveKitAPI(
            url,
            settings.livekit_api_key,
            settings.livekit_api_secret,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as lk:
            await lk.room.list_rooms(api.ListRoomsRequest())
    except api.TwirpError as e:
        status = f"{e.status} {e.message}".strip()
        if e.status in (401, 403):
            raise ServerCheckFailed(
                f"the LiveKit server at {url} rejected LIVEKIT_API_KEY/LIVEKIT_API_SECRET "
                f"({status}): check both against the server's keys"
            ) from None
        raise ServerCheckFailed(f"the LiveKit server at {url} answered {status}") from None
    except (TimeoutError, aiohttp.ClientConnectionError, OSError) as e:
        reason = str(e) or type(e).__name__
        raise ServerCheckFailed(
            f"cannot reach a LiveKit server at {url} ({reason}): is it running, and is "
            "LIVEKIT_URL right?"
        ) from None
    except ValueError as e:  # a malformed URL
        raise ServerCheckFailed(f"LIVEKIT_URL={url!r} is not usable: {e}") from None


# `livekit-server --dev`'s built-in key pair: known to everyone, for local use only.
DEV_KEY_PAIR = ("devkey", "secret")


@contextlib.contextmanager
def dev_key_warning_quiet(api_key: str | None, api_secret: str | None) -> Iterator[None]:
    """PyJWT warns (InsecureKeyLengthWarning, two lines) that a secret under 32 bytes is
    insecure. For the dev server's well-known pair that is noise: its secret is public
    anyway. For any other secret the warning stays, once, as PyJWT gives it."""
    with warnings.catch_warnings():
        if (api_key, api_secret) == DEV_KEY_PAIR:
            from jwt.warnings import InsecureKeyLengthWarning

            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        yield


def check_livekit_sync(settings: Settings) -> None:
    with dev_key_warning_quiet(settings.livekit_api_key, settings.livekit_api_secret):
        asyncio.run(check_livekit(settings))
