"""The playground's token endpoint: the browser gets a verifiable join token for a fresh
room that dispatches the agent, and never the API secret."""

from __future__ import annotations

import aiohttp
from livekit import api

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
