"""The emulator's aiohttp app: its routes, the small endpoints, and the admin routes.

``GET /``, ``WS /tts/websocket`` (``socket_session``), ``POST /tts/bytes`` and
``POST /tts/sse`` (``http_tts``), ``POST /access-token``, ``GET /voices`` and
``GET /voices/{id}`` (the voices it knows: a client checks its key and voice there),
plus ``/_emulator/*`` admin routes
(faults, records, spend) for tests and benchmarks that run the emulator in another process.
"""

from __future__ import annotations

import json
import secrets
import time

from aiohttp import web

from .catalogue import VOICES, voice_info, voice_known
from .faults import Fault
from .handshake import STATE_KEY, check_handshake, credentials
from .http_tts import tts_bytes, tts_sse
from .messages import error_event
from .socket_session import SocketSession, websocket_endpoint
from .state import EmulatorState


def build_app(state: EmulatorState) -> web.Application:
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_get("/", _status)
    app.router.add_get("/tts/websocket", websocket_endpoint)
    app.router.add_post("/tts/bytes", tts_bytes)
    app.router.add_post("/tts/sse", tts_sse)
    app.router.add_post("/access-token", _access_token)
    app.router.add_get("/voices", _voices)
    app.router.add_get("/voices/{voice_id}", _voice)
    app.router.add_get("/_emulator/stats", _admin_stats)
    app.router.add_get("/_emulator/spend", _admin_spend)
    app.router.add_get("/_emulator/contexts/{context_id}", _admin_context)
    app.router.add_post("/_emulator/faults", _admin_add_fault)
    app.router.add_delete("/_emulator/faults", _admin_clear_faults)
    app.router.add_post("/_emulator/reset", _admin_reset)
    return app


async def _status(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return web.json_response({"ok": True, "version": state.config.default_version})


async def _access_token(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    key = credentials(request)
    if key not in state.config.api_keys and not state.config.accept_any_key:
        raise web.HTTPUnauthorized(text="Unauthorized: Invalid API key.")
    body = await request.json()
    expires_in = int(body.get("expires_in", 60))
    if not 1 <= expires_in <= 3600:
        raise web.HTTPBadRequest(text="Invalid request: expires_in must be in [1, 3600].")
    token = "tok_" + secrets.token_urlsafe(24)
    state.tokens[token] = time.time() + expires_in
    return web.json_response({"token": token})


async def _voices(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    check_handshake(request, state)
    known = state.config.catalogue.voices
    ids = sorted(VOICES if known is None else known)
    return web.json_response({"data": [voice_info(v) for v in ids], "has_more": False})


async def _voice(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    check_handshake(request, state)
    voice_id = request.match_info["voice_id"]
    if not voice_known(voice_id, state.config.catalogue):
        raise web.HTTPNotFound(
            text=json.dumps(
                {
                    "error_code": "voice_not_found",
                    "title": "Voice not found",
                    "message": f"No voice with id {voice_id}.",
                }
            ),
            content_type="application/json",
        )
    return web.json_response(voice_info(voice_id))


# ---------------------------------------------------------------- admin
async def _admin_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].snapshot())


async def _admin_spend(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].spend().to_dict())


async def _admin_context(request: web.Request) -> web.Response:
    record = request.app[STATE_KEY].records.get(request.match_info["context_id"])
    if record is None:
        raise web.HTTPNotFound(text="no such context")
    return web.json_response(record.summary())


async def _admin_add_fault(request: web.Request) -> web.Response:
    try:
        fault = Fault.from_dict(await request.json())
    except (ValueError, TypeError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    request.app[STATE_KEY].faults.add(fault)
    return web.json_response(fault.to_dict())


async def _admin_clear_faults(request: web.Request) -> web.Response:
    request.app[STATE_KEY].faults.clear()
    return web.json_response({"ok": True})


async def _admin_reset(request: web.Request) -> web.Response:
    request.app[STATE_KEY].reset_records()
    return web.json_response({"ok": True})


__all__ = ["build_app", "SocketSession", "STATE_KEY", "error_event"]
