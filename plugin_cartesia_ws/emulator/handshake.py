"""Who may connect: credentials, API version, and the HTTP refusals a real server gives.

Every endpoint (WebSocket, /tts/bytes, /tts/sse, /access-token) checks a request here first.
"""

from __future__ import annotations

import json

from aiohttp import web

from .messages import KNOWN_VERSIONS
from .state import EmulatorState

STATE_KEY: web.AppKey[EmulatorState] = web.AppKey("state", EmulatorState)


def credentials(request: web.Request) -> str | None:
    """Every documented way to authenticate (section 1.2), first found wins."""
    header = request.headers.get("X-API-Key")
    if header:
        return header
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.query.get("api_key") or request.query.get("access_token")


def _version(request: web.Request, state: EmulatorState) -> str:
    """The query parameter wins over the header (section 1.3)."""
    return (
        request.query.get("cartesia_version")
        or request.headers.get("Cartesia-Version")
        or state.config.default_version
    )


def check_handshake(request: web.Request, state: EmulatorState) -> tuple[str, str]:
    """Returns (key, version) or raises the HTTP refusal a real server gives."""
    version = _version(request, state)
    key = credentials(request)
    state.stats["handshakes"] += 1
    if not state.is_authorized(key):
        state.stats["handshakes_refused"] += 1
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "Unauthorized", "message": "Invalid or missing API key."}),
            content_type="application/json",
        )
    if version not in KNOWN_VERSIONS:
        raise web.HTTPNotFound(
            text="API version not found: No API schema exists for the requested Cartesia-Version.",
        )
    assert key is not None
    return key, version
