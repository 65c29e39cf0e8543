"""How many rooms one worker takes at once (WORKER_MAX_JOBS), decided when a room is offered."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from livekit.agents import JobRequest

log = logging.getLogger("agent")


class JobSlots:
    """At most `max_jobs` jobs at once, counted in the event loop when a job is offered.

    LiveKit's own check (load + jobs accepted but not launched) races: `load_fnc` runs in a
    thread, so a job launched while it runs is missing from the load but no longer counted
    as accepted, and a third job slips in (seen in CI: three rooms on a two-slot worker).
    Here running and accepting jobs are counted at the same instant, in one place.
    """

    def __init__(self, max_jobs: int, on_decline: Callable[[str, str], None] | None = None) -> None:
        self.max_jobs = max_jobs
        # told (room, agent name) of every room declined, e.g. Redispatcher.declined
        self.on_decline = on_decline
        self._server: Any = None
        self._accepting: set[str] = set()
        self._warned_blind = False

    def load(self, server: Any) -> float:
        """LiveKit's load_fnc: share of the slots in use. LiveKit calls it before every
        job offer, which is how `request` learns the server it counts running jobs on."""
        self._server = server
        return min(len(server.active_jobs) / self.max_jobs, 1.0)

    def in_use(self) -> int:
        """Jobs running or being accepted; one that is both (launched, accept() not yet
        returned) counts once."""
        if self._server is None:
            if not self._warned_blind:
                self._warned_blind = True
                log.warning(
                    "WORKER_MAX_JOBS sees only rooms being accepted, not running ones: "
                    "LiveKit did not call the worker's load function (LiveKit Cloud replaces it)"
                )
            return len(self._accepting)
        running = {j.job.id for j in self._server.active_jobs}
        return len(running | self._accepting)

    async def request(self, req: JobRequest) -> None:
        """LiveKit's request_fnc: accept while a slot is free, else let the server offer
        the room to another worker."""
        if self.in_use() >= self.max_jobs:
            log.info(
                "job slots full, declining room %s (WORKER_MAX_JOBS=%d)",
                req.room.name,
                self.max_jobs,
            )
            await req.reject(terminate=False)  # False: the server tries another worker
            if self.on_decline is not None:
                self.on_decline(req.room.name, req.agent_name)
            return
        self._accepting.add(req.id)
        try:
            await req.accept()  # returns once the job's process runs it (or it failed)
        finally:
            self._accepting.discard(req.id)
