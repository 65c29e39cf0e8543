"""A room this worker declined gets an agent anyway: dispatched again through the server API.

Why: on a LiveKit cluster a new room's job goes to one node, chosen by the worker loads
the nodes last heard (each worker reports every 2.5 s), and that node offers it only to its
own workers. In a burst, a full worker still looks free, declines (`job slots full`), the
node has no one else, and the room waits for an agent for good ("no worker available to
handle job") while a worker on another node has a free slot. LiveKit does not try again.

So the worker that declines a room checks it again once the servers know it is full (after
`delay`, longer than the load report interval): if the room still exists and has no agent
of this name, joined or on its way, it asks the server to dispatch the agent again
(`CreateDispatch`). That dispatch is placed with fresh loads, so it goes to a worker with a
free slot, on any node. It looks again `settle` s after each dispatch, up to `attempts`
dispatches (all workers may be full).

Two workers that declined the same room do not both dispatch it: the later one sees a
dispatch newer than its decline and leaves the room to it. (The check and the dispatch
are two calls, so two decliners inside the same few milliseconds could still both
dispatch; the random jitter makes that unlikely, not impossible.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from livekit import api

log = logging.getLogger("agent")

# LiveKit's worker reports its load every UPDATE_STATUS_INTERVAL (2.5 s): wait past one
DEFAULT_DELAY_S = 3.0
AGENT_NAME_ATTRIBUTE = "lk.agent.name"  # set by LiveKit on an agent's participant
# after a dispatch of ours, how long its agent may take to join before we look again: the
# server lists a dispatch's job only once a worker has accepted it, so looking sooner would
# take a dispatch still being placed for a failed one and put a second agent in the room
DEFAULT_SETTLE_S = 10.0


class Redispatcher:
    """Re-dispatches the rooms `declined()` is told about; see the module docstring."""

    def __init__(
        self,
        url: str,
        api_key: str,
        api_secret: str,
        *,
        delay: float = DEFAULT_DELAY_S,
        settle: float = DEFAULT_SETTLE_S,
        attempts: int = 5,
    ) -> None:
        self._credentials = (url, api_key, api_secret)
        self.delay = delay
        self.settle = settle
        self.attempts = attempts
        self._tasks: set[asyncio.Task[None]] = set()

    def declined(self, room: str, agent_name: str) -> None:
        """Called on the worker's event loop when it declines `room` for lack of a slot."""
        if not agent_name:
            # automatic dispatch (no AGENT_NAME) cannot be requested through the API
            return
        task = asyncio.create_task(self._watch(room, agent_name, time.time()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, room: str, agent_name: str, declined_at: float) -> None:
        ours: set[str] = set()
        try:
            async with api.LiveKitAPI(*self._credentials) as lk:
                for attempt in range(1, self.attempts + 1):
                    wait = self.settle if ours else self.delay
                    await asyncio.sleep(wait + random.uniform(0, 0.5))
                    if not await self._left_without_agent(lk, room, agent_name, declined_at, ours):
                        return
                    dispatch = await lk.agent_dispatch.create_dispatch(
                        api.CreateAgentDispatchRequest(room=room, agent_name=agent_name)
                    )
                    ours.add(dispatch.id)
                    log.info(
                        "room %s was left without an agent; dispatched %s again (%d/%d)",
                        room,
                        agent_name,
                        attempt,
                        self.attempts,
                    )
                log.warning(
                    "room %s still has no agent after %d dispatches: every worker is full",
                    room,
                    self.attempts,
                )
        except Exception as e:  # the server is unreachable, the room went away meanwhile
            log.warning("could not dispatch room %s again: %s", room, str(e) or type(e).__name__)

    async def _left_without_agent(
        self,
        lk: api.LiveKitAPI,
        room: str,
        agent_name: str,
        declined_at: float,
        ours: set[str],
    ) -> bool:
        rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
        # a dispatch to a room that is gone would create it again (room.auto_create);
        # (its participant count is no help: the server updates it lazily)
        if not rooms.rooms:
            return False
        mine = [
            d for d in await lk.agent_dispatch.list_dispatch(room) if d.agent_name == agent_name
        ]
        if any(d.state.jobs for d in mine):
            return False  # served
        # another worker that declined it has dispatched it since: it watches the room now
        newer = [d for d in mine if d.id not in ours and _seconds(d.state.created_at) > declined_at]
        return not newer

    async def wait(self) -> None:
        """Until every room being watched is served, gone, or given up on."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _seconds(timestamp: int) -> float:
    """LiveKit's dispatch times are Unix nanoseconds."""
    return timestamp / 1e9
