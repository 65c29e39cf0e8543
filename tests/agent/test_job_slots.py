"""The worker's job slots (``WORKER_MAX_JOBS``) with LiveKit's real ``JobRequest``: what is
counted when, and a declined room handed to the re-dispatcher."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import cast

import pytest
from livekit.agents import JobRequest
from livekit.agents.job import RunningJobInfo
from livekit.protocol import agent as agent_proto
from livekit.protocol import models as rtc_models

from agent import worker
from agent.job_slots import JobSlots
from agent.settings import Settings


class _FakeServer:
    """What JobSlots reads of LiveKit's AgentServer: the jobs its processes run."""

    def __init__(self) -> None:
        self.active_jobs: list[RunningJobInfo] = []


class _Offer:
    """A real JobRequest whose accept() goes as LiveKit's does: the answer goes out, the
    server assigns the job (`assign`), the job's process takes it (it is in `active_jobs`
    from here), the start message reaches the process (`launch`), and accept() returns;
    `fail` makes that last step raise, as a launch that failed does."""

    def __init__(self, server: _FakeServer, room: str, *, fail: bool = False) -> None:
        self.answers: list[object] = []
        self.accepted = asyncio.Event()
        self.assign = asyncio.Event()
        self.running = asyncio.Event()
        self.launch = asyncio.Event()
        job = agent_proto.Job(id=f"AJ_{room}", room=rtc_models.Room(name=room))
        info = cast(RunningJobInfo, SimpleNamespace(job=job))

        async def on_reject(terminate: bool) -> None:
            self.answers.append(("reject", terminate))

        async def on_accept(args: object) -> None:
            self.answers.append("accept")
            self.accepted.set()
            await self.assign.wait()
            server.active_jobs.append(info)
            self.running.set()
            await self.launch.wait()
            if fail:
                server.active_jobs.remove(info)
                raise RuntimeError("failed to launch job on process")

        self.request = JobRequest(job=job, on_reject=on_reject, on_accept=on_accept)

    def go(self) -> None:
        """Let accept() run to its end at once (or fail), whenever it is called."""
        self.assign.set()
        self.launch.set()


async def test_job_slots_count_accepted_jobs_before_they_run() -> None:
    opts = worker.server_options(Settings(worker_max_jobs=2))
    server = _FakeServer()
    assert opts.load_fnc(server) == 0.0  # type: ignore[call-arg]
    offers = [_Offer(server, f"r{i}") for i in range(4)]
    # r0 accepted and running, its accept() not returned yet: one slot, not two
    first = asyncio.create_task(opts.request_fnc(offers[0].request))
    offers[0].assign.set()
    await offers[0].running.wait()
    # r1 accepted, not assigned yet: r2 finds both slots taken and goes to another worker
    second = asyncio.create_task(opts.request_fnc(offers[1].request))
    await offers[1].accepted.wait()
    offers[2].go()  # (were it accepted, it would run at once)
    await opts.request_fnc(offers[2].request)
    assert [o.answers for o in offers[:3]] == [["accept"], ["accept"], [("reject", False)]]
    offers[0].go()
    offers[1].go()
    await asyncio.gather(first, second)
    assert opts.load_fnc(server) == 1.0  # type: ignore[call-arg]
    # r0 ends: a slot is free again
    server.active_jobs.pop(0)
    offers[3].go()
    await opts.request_fnc(offers[3].request)
    assert offers[3].answers == ["accept"]


async def test_job_slots_free_the_slot_of_a_job_that_failed_to_start() -> None:
    opts = worker.server_options(Settings(worker_max_jobs=1))
    server = _FakeServer()
    opts.load_fnc(server)  # type: ignore[call-arg]
    failing, next_one = _Offer(server, "r0", fail=True), _Offer(server, "r1")
    failing.go()
    with pytest.raises(RuntimeError):  # LiveKit logs it ("job_request_fnc failed")
        await opts.request_fnc(failing.request)
    next_one.go()
    await opts.request_fnc(next_one.request)
    assert (failing.answers, next_one.answers) == (["accept"], ["accept"])


async def test_a_room_declined_for_lack_of_a_slot_is_handed_to_the_redispatcher() -> None:
    declined: list[tuple[str, str]] = []
    slots = JobSlots(1, on_decline=lambda room, agent: declined.append((room, agent)))
    server = _FakeServer()
    slots.load(server)
    taken, extra = _Offer(server, "r0"), _Offer(server, "r1")
    for offer in (taken, extra):
        offer.request.job.agent_name = "fleet"
        offer.go()
    await slots.request(taken.request)
    await slots.request(extra.request)
    assert (taken.answers, extra.answers) == (["accept"], [("reject", False)])
    assert declined == [("r1", "fleet")]
