"""The playground's token endpoint: the browser gets a verifiable join token for a fresh
room that dispatches the agent, and never the API secret; what the page says when no agent
joins; a taken --port is reported before anything starts."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from livekit import api

from agent.dev import playground
from agent.dev.playground import PlaygroundServer
from agent.settings import Settings

KEY, SECRET, URL = "APIkey", "a-test-secret-that-is-at-least-32-characters", "wss://x.livekit.cloud"


async def test_token_endpoint_mints_a_dispatching_token_and_hides_the_secret() -> None:
    settings = Settings(livekit_url=URL, livekit_api_key=KEY, livekit_api_secret=SECRET)
    server = await PlaygroundServer(settings, "helper").start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as http:
            bodies = []
            for query in ("", "?room=kitchen&identity=ann"):
                async with http.get(f"{server.url}token{query}") as resp:
                    assert resp.status == 200
                    bodies.append((await resp.text(), await resp.json()))
    finally:
        await server.aclose()

    (first_text, first), (_, named) = bodies
    assert SECRET not in first_text and first["url"] == URL
    claims = api.TokenVerifier(KEY, SECRET).verify(first["token"])
    assert claims.video.room == first["room"] and claims.video.room_join
    assert claims.identity == first["identity"]
    assert [a.agent_name for a in claims.room_config.agents] == ["helper"]
    # each Connect opens a new room unless one is named
    assert (named["room"], named["identity"]) == ("kitchen", "ann")
    assert server.rooms == [first["room"], "kitchen"]


def test_a_taken_port_is_reported_first_naming_the_option(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 22: it was reported 12.7 s late, after everything else had started, without
    naming --port. Nothing else starts now: the bundle and the stack are never reached."""
    reached: list[str] = []
    monkeypatch.setattr(playground, "bundle_is_stale", lambda: reached.append("bundle") or False)
    monkeypatch.setattr(playground, "serve", lambda args: reached.append("serve"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert playground.main(["--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: --port {port} is taken on 127.0.0.1") and err.count("\n") == 1
    assert "choose another port with --port" in err
    assert reached == []


async def test_the_page_learns_what_to_do_when_no_agent_joins() -> None:
    settings = Settings(livekit_url=URL, livekit_api_key=KEY, livekit_api_secret=SECRET)
    server = await PlaygroundServer(settings, "helper", worker_log="/tmp/logs/worker.log").start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{server.url}token") as resp:
            body = await resp.json()
    finally:
        await server.aclose()
    assert "/tmp/logs/worker.log" in body["no_agent"] and "Connect again" in body["no_agent"]


def test_the_playground_worker_takes_more_than_one_room() -> None:
    """A reload or a second tab opens a room while the old one still closes."""
    assert playground.PLAYGROUND_JOBS > 1
