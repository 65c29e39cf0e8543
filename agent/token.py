"""Join tokens for LiveKit rooms: the one place the worker's keys become a JWT (the CLI's
`token` command, the local playground and the room tests all mint them here)."""

from __future__ import annotations

import datetime

from .settings import Settings


def make_token(
    settings: Settings,
    *,
    room: str,
    identity: str,
    agent_name: str = "",
    ttl: int = 3600,
    name: str = "",
) -> str:
    """A join token for `room`; with `agent_name`, joining also dispatches that agent."""
    from livekit import api

    from .preflight import dev_key_warning_quiet

    settings.require("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
    token = (
        api.AccessToken(settings.livekit_api_key, settings.livekit_api_secret)
        .with_identity(identity)
        .with_ttl(datetime.timedelta(seconds=ttl))
        .with_grants(api.VideoGrants(room_join=True, room=room))
    )
    if name:
        token = token.with_name(name)
    if agent_name:
        token = token.with_room_config(
            api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=agent_name)])
        )
    with dev_key_warning_quiet(settings.livekit_api_key, settings.livekit_api_secret):
        return token.to_jwt()
