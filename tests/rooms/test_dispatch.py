"""How LiveKit's server hands rooms to our workers: explicit dispatch by agent name,
several workers sharing the rooms with no coordination code of ours, and draining."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from livekit import api

from agent.dev.worker_process import WorkerProcess
from agent.redispatch import Redispatcher
from agent.simulate import espeak_utterance

from .conftest import Stack, new_room

pytestmark = pytest.mark.asyncio(loop_scope="session")

ATTRIBUTE_AGENT_NAME = "lk.agent.name"


def sessions_started(worker: WorkerProcess) -> list[str]:
    return [str(line.get("room")) for line in worker.messages("starting session")]


async def test_named_worker_joins_only_rooms_that_name_it(stack: Stack) -> None:
    worker = await stack.start_worker("named", AGENT_NAME="concierge")
    try:
        plain, named = new_room("plain"), new_room("named")
        async with (
            stack.user(plain, agent="") as u_plain,
            stack.user(named, agent="concierge") as u_named,
        ):
            agent = await u_named.wait_for_agent(timeout=60)
            joined = u_named.room.remote_participants[agent]
            assert joined.attributes.get(ATTRIBUTE_AGENT_NAME) == "concierge"
            # dispatch happens when a room is created: `plain` was created first, so by now
            # the worker has been offered everything it will ever be offered for it
            async with api.LiveKitAPI(
                stack.server.http_url, stack.server.api_key, stack.server.api_secret
            ) as lk:
                dispatches = await lk.agent_dispatch.list_dispatch(room_name=plain)
            # (the server records an automatic dispatch, agent name "", for every new room)
            assert "concierge" not in {d.agent_name for d in dispatches}
            assert u_plain.agent_identity is None
        assert sessions_started(worker) == [named]
    finally:
        worker.stop()


async def test_two_workers_share_rooms_and_a_draining_worker_finishes_its_session(
    stack: Stack,
) -> None:
    # two job slots each: LiveKit's server must spread four rooms over both
    env = {"AGENT_NAME": "fleet", "WORKER_MAX_JOBS": "2"}
    first = await stack.start_worker("fleet-1", **env)
    second = await stack.start_worker("fleet-2", **env)
    try:
        rooms = [new_room("fleet") for _ in range(4)]
        users = [stack.user(room, agent="fleet") for room in rooms]
        await asyncio.gather(*(u.connect() for u in users))
        try:
            await asyncio.gather(*(u.wait_for_agent(timeout=90) for u in users))
            await asyncio.gather(
                *(u.wait_for_agent_state("listening", after=0.0, timeout=90) for u in users)
            )
            by_worker = {
                "fleet-1": sessions_started(first),
                "fleet-2": sessions_started(second),
            }
            assert Counter(len(v) for v in by_worker.values()) == Counter({2: 2}), by_worker
            assert sorted(by_worker["fleet-1"] + by_worker["fleet-2"]) == sorted(rooms)

            # drain: a reply is playing in one of fleet-1's rooms when it gets SIGTERM
            room = by_worker["fleet-1"][0]
            user = users[rooms.index(room)]
            stack.script.transcript = "Tell me about the weather."
            reply = "The weather is calm today. Expect sun in the morning and light rain later."
            stack.script.replies[stack.script.transcript] = reply
            said = user.say(espeak_utterance(stack.script.transcript).pcm)
            await said.done.wait()
            heard_from = await user.wait_for_agent_audio(after=said.voice_end, timeout=60)
            first.terminate()
            end = await user.wait_for_reply_end(after=heard_from, timeout=60)
            assert first.returncode is None  # still serving its rooms while it drains
            record = next(
                r for r in stack.emulator.records.values() if r.transcript.strip() == reply
            )
            assert record.done_sent and not record.cancelled
            heard_s = end - heard_from
            sent_s = record.audio_bytes / 2 / 24000
            assert heard_s > sent_s - 0.5, (heard_s, sent_s)  # the whole reply was heard
        finally:
            await asyncio.gather(*(u.aclose() for u in users))
        # with its participants gone, the draining worker's sessions end and it exits
        assert await first.wait_exit(timeout=90) == 0
        assert first.messages("draining worker")
    finally:
        first.stop()
        second.stop()


async def test_a_room_left_without_an_agent_is_dispatched_again(stack: Stack) -> None:
    """What a worker does for a room it declined (agent.redispatch), driven directly: the
    room is dispatched again while it has no agent, once, and a room that is gone is not
    created again. (On a cluster this gives a declined room to another node's worker:
    tests/rooms/test_cluster.py.)"""
    worker = await stack.start_worker("spare", AGENT_NAME="spare")
    redispatch = Redispatcher(
        stack.server.url, stack.server.api_key, stack.server.api_secret, delay=0.1, settle=10
    )
    room = new_room("orphan")
    try:
        async with (
            api.LiveKitAPI(
                stack.server.http_url, stack.server.api_key, stack.server.api_secret
            ) as lk,
            stack.user(room, agent="") as user,  # a room nobody dispatched "spare" to
        ):
            redispatch.declined(room, "spare")
            await user.wait_for_agent(timeout=60)
            await redispatch.wait()
            spare = [
                d for d in await lk.agent_dispatch.list_dispatch(room) if d.agent_name == "spare"
            ]
            assert len(spare) == 1 and spare[0].state.jobs
            # declined again while served: nothing more is dispatched
            redispatch.declined(room, "spare")
            await redispatch.wait()
            again = [
                d for d in await lk.agent_dispatch.list_dispatch(room) if d.agent_name == "spare"
            ]
            assert [d.id for d in again] == [spare[0].id]
            assert sessions_started(worker) == [room]

            # a room that does not exist (any more) is not created by a dispatch
            gone = new_room("gone")
            redispatch.declined(gone, "spare")
            await redispatch.wait()
            listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[gone]))
            assert not listed.rooms
    finally:
        await redispatch.aclose()
        worker.stop()


async def test_a_draining_worker_stops_waiting_for_its_sessions_at_the_drain_bound(
    stack: Stack,
) -> None:
    """WORKER_DRAIN_TIMEOUT bounds the drain on SIGTERM (what a pod's grace period must
    outlast, deploy/kubernetes/worker.yaml): a session that does not end does not keep the
    worker alive past it."""
    worker = await stack.start_worker("bounded", AGENT_NAME="bounded", WORKER_DRAIN_TIMEOUT="2")
    try:
        async with stack.user(new_room("bounded"), agent="bounded") as user:
            await user.wait_for_agent(timeout=60)
            await user.wait_for_agent_state("listening", after=0.0, timeout=60)
            worker.terminate()
            await worker.wait_exit(timeout=60)
            # it left with its session still running: the bound ended the drain
            assert worker.messages("draining worker")
            assert worker.messages("drain timed out, forcing shutdown")
    finally:
        worker.stop()
