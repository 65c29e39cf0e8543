"""Integration with a real LiveKit server (self-hosted or Cloud). Runs only when
LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET are in the environment."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from livekit import api, rtc

from agent.settings import Settings
from agent.token import make_token

HAVE_SERVER = all(
    os.environ.get(n) for n in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
)

pytestmark = [
    pytest.mark.cloud,
    pytest.mark.skipif(
        not HAVE_SERVER, reason="LIVEKIT_URL/KEY/SECRET not set: no LiveKit server to test against"
    ),
]


async def test_room_can_be_created_and_listed() -> None:
    settings = Settings.from_env(dotenv_path=None).require_livekit()
    name = f"agent-test-{uuid.uuid4().hex[:8]}"
    async with api.LiveKitAPI(
        settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret
    ) as lk:
        created = await lk.room.create_room(api.CreateRoomRequest(name=name, empty_timeout=60))
        try:
            assert created.name == name
            listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[name]))
            assert [room.name for room in listed.rooms] == [name]
        finally:
            await lk.room.delete_room(api.DeleteRoomRequest(room=name))


async def test_server_accepts_our_join_token() -> None:
    settings = Settings.from_env(dotenv_path=None).require_livekit()
    name = f"agent-test-{uuid.uuid4().hex[:8]}"
    token = make_token(settings, room=name, identity="token-test", ttl=120)
    room = rtc.Room()
    try:
        await asyncio.wait_for(room.connect(settings.livekit_url, token), 30)
        assert room.name == name
        assert room.local_participant.identity == "token-test"
    finally:
        await room.disconnect()
        async with api.LiveKitAPI(
            settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret
        ) as lk:
            await lk.room.delete_room(api.DeleteRoomRequest(room=name))
