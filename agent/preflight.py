"""Check what the worker depends on before it starts, so a wrong setting is one clear line
and exit status 2, not LiveKit's 16 retries over minutes ("failed to connect to livekit,
retrying in 10s") or a job that fails when a call arrives.

LiveKit: one authenticated API call (ListRooms, which every project key may make) tells the
three cases apart: nothing listens there, the server rejects the key or secret, or it
answers. Cartesia: one request to its voices endpoint (`GET /voices/{id}`, which the
emulator serves too) checks the key and the voice; CARTESIA_CHECK=off skips it for an
offline start. TTS_PLUGIN=livekit: LiveKit's Cartesia plugin must be installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import ipaddress
import warnings
from collections.abc import Iterator
from urllib.parse import urlsplit

import aiohttp
from livekit import api

from plugin_cartesia_ws.models import DEFAULT_API_VERSION

from .settings import Settings, SettingsError, check_url

TIMEOUT_S = 5.0


class ServerCheckFailed(SettingsError):
    """The LiveKit server cannot be reached or refuses the credentials. One line."""


async def check_livekit(settings: Settings, timeout: float = TIMEOUT_S) -> None:
    settings.require_livekit()
    url = check_url("LIVEKIT_URL", str(settings.livekit_url))  # --url skips the settings' check
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


def quiet_dev_key_warning_for_good(api_key: str | None, api_secret: str | None) -> None:
    """For a whole worker process on the dev pair: LiveKit mints a token at every
    (re)connection, and each would print PyJWT's two raw lines into the JSON log."""
    if (api_key, api_secret) == DEV_KEY_PAIR:
        from jwt.warnings import InsecureKeyLengthWarning

        warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)


def dev_key_exposure(settings: Settings) -> str | None:
    """A warning when the well-known dev pair guards a server that is not on loopback:
    anyone who can reach it can mint tokens, join its rooms or take its jobs."""
    if (settings.livekit_api_key, settings.livekit_api_secret) != DEV_KEY_PAIR:
        return None
    host = urlsplit(str(settings.livekit_url or "")).hostname or ""
    if host == "localhost" or _is_loopback(host):
        return None
    return (
        f"LIVEKIT_URL={settings.livekit_url} is not a loopback address, but the keys are "
        "the public devkey/secret pair: anyone who reaches that server can join its rooms "
        "and take its jobs. Give the server a generated secret "
        "(docs/rooms-and-deployment.md#on-the-lan)"
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_livekit_sync(settings: Settings) -> None:
    with dev_key_warning_quiet(settings.livekit_api_key, settings.livekit_api_secret):
        asyncio.run(check_livekit(settings))


# ---------------------------------------------------------------------- Cartesia
async def check_cartesia(settings: Settings, timeout: float = TIMEOUT_S) -> None:
    """The TTS can speak: its plugin is installed, and (unless CARTESIA_CHECK=off) Cartesia
    accepts the key and knows the voice. Never shows the key."""
    if (
        settings.tts_plugin == "livekit"
        and importlib.util.find_spec("livekit.plugins.cartesia") is None
    ):
        raise ServerCheckFailed(
            "TTS_PLUGIN=livekit needs LiveKit's Cartesia plugin: "
            "pip install livekit-plugins-cartesia (or unset TTS_PLUGIN)"
        )
    if settings.cartesia_check == "off":
        return
    settings.require("CARTESIA_API_KEY")
    base = settings.cartesia_base_url.rstrip("/")
    http_base = base.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    url = f"{http_base}/voices/{settings.cartesia_voice}"
    headers = {
        "X-API-Key": str(settings.cartesia_api_key),
        "Cartesia-Version": DEFAULT_API_VERSION,
    }
    skip = "or set CARTESIA_CHECK=off to start without this check"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
            http.get(url, headers=headers) as reply,
        ):
            status = reply.status
    except (TimeoutError, aiohttp.ClientError, OSError) as e:
        reason = str(e) or type(e).__name__
        raise ServerCheckFailed(
            f"cannot reach Cartesia at {base} ({reason}): check CARTESIA_BASE_URL, {skip}"
        ) from None
    if status in (401, 403):
        raise ServerCheckFailed(
            f"Cartesia at {base} rejected CARTESIA_API_KEY (HTTP {status}): check the key"
        )
    if status == 404:
        raise ServerCheckFailed(
            f"Cartesia at {base} does not know CARTESIA_VOICE={settings.cartesia_voice!r} "
            "(HTTP 404): use a voice id from your Cartesia voice library"
        )
    if status >= 300:
        raise ServerCheckFailed(
            f"Cartesia at {base} answered HTTP {status} to a voice lookup: {skip}"
        )


def check_cartesia_sync(settings: Settings) -> None:
    asyncio.run(check_cartesia(settings))
