"""The worker on a LiveKit cluster: Redis (Debian's redis-server) and two server nodes
sharing it, all on loopback, started by this module; workers as users run them.

What a team scaling out needs to know: a worker on one node serves rooms on another; two
workers on two nodes share a burst of rooms, each room getting one agent; a node that
restarts (SIGTERM or SIGKILL) gets its worker back by itself while the other node's
sessions go on; and nothing listens beyond loopback. Measured figures (the split, how
long a worker took to come back) are printed and recorded as test properties.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import psutil
import pytest
import pytest_asyncio
from livekit import api, rtc

from agent.dev.cluster import LocalCluster, node_id
from agent.dev.livekit_server import ServerUnavailable
from agent.dev.local_stack import worker_env
from agent.dev.redis_server import INSTALL_HINT, find_redis
from agent.dev.room_user import RoomUser
from agent.dev.worker_process import LogLine, WorkerProcess
from agent.settings import Settings
from agent.token import make_token
from agent.worker import RECONNECT_FOREVER

from .conftest import IN_CI, Stack, new_room
from .test_voice_turn import ANSWER, QUESTION, ask

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Cluster:
    """The running cluster and the session's emulator and OpenAI stand-in."""

    local: LocalCluster
    stack: Stack
    workers: list[WorkerProcess] = field(default_factory=list)

    def settings(self, node: int) -> Settings:
        return Settings(
            livekit_url=self.local.nodes[node].url,
            livekit_api_key=self.local.api_key,
            livekit_api_secret=self.local.api_secret,
        )

    async def start_worker(self, name: str, node: int, **overrides: str) -> WorkerProcess:
        """A worker registered with node `node` only (its LIVEKIT_URL)."""
        env = worker_env(
            self.settings(node), emulator=self.stack.emulator, openai=self.stack.openai, **overrides
        )
        worker = WorkerProcess(env, log_path=self.local.logs / f"worker-{name}.log").start()
        self.workers.append(worker)
        await worker.wait_registered(timeout=120)
        return worker

    def user(self, room: str, *, via: int, agent: str = "") -> RoomUser:
        """A participant joining `room` through node `via` (a token dispatching `agent`)."""
        token = make_token(self.settings(via), room=room, identity="user", agent_name=agent)
        return RoomUser(self.local.nodes[via].url, token)

    async def create_room(self, room: str, *, via: int, host: int, agent: str) -> None:
        """Create `room` through node `via`'s API, hosted on node `host`, dispatching `agent`."""
        node = self.local.nodes[via]
        async with api.LiveKitAPI(node.http_url, self.local.api_key, self.local.api_secret) as lk:
            await lk.room.create_room(
                api.CreateRoomRequest(
                    name=room,
                    node_id=node_id(self.local.nodes[host]),
                    agents=[api.RoomAgentDispatch(agent_name=agent)],
                )
            )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    if find_redis() is None:
        if IN_CI:
            pytest.fail(f"cluster tests cannot run in CI: {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    try:
        local = LocalCluster(tmp_path_factory.mktemp("cluster")).start()
    except ServerUnavailable as e:
        if IN_CI:
            pytest.fail(f"cluster tests cannot run in CI: {e}")
        pytest.skip(str(e))
    built = Cluster(local, stack)
    try:
        yield built
    finally:
        for worker in built.workers:
            worker.stop()
        local.stop()


def sessions_started(worker: WorkerProcess) -> list[str]:
    return [str(line.get("room")) for line in worker.messages("starting session")]


def report(record_property: object, name: str, value: object) -> None:
    print(f"\n[cluster] {name}: {value}")
    record_property(name, value)  # type: ignore[operator]


async def test_a_worker_on_node_a_serves_a_room_on_node_b(cluster: Cluster) -> None:
    worker = await cluster.start_worker("a-only", 0, AGENT_NAME="cluster-a")
    room = new_room("cross")
    # created through node B's API, hosted on node B: nothing of it is on node A
    await cluster.create_room(room, via=1, host=1, agent="cluster-a")
    script = cluster.stack.script
    script.transcript, script.replies[QUESTION] = QUESTION, ANSWER
    before = set(cluster.stack.emulator.records)
    async with cluster.user(room, via=1) as user:
        await user.wait_for_agent(timeout=60)
        await user.wait_for_agent_state("listening", after=0.0, timeout=60)
        stopped, first, _ = await ask(user, QUESTION)
    assert first > stopped
    assert sessions_started(worker) == [room]
    replies = [
        r for cid, r in cluster.stack.emulator.records.items() if cid not in before and r.done_sent
    ]
    assert (
        " ".join(r.transcript.strip() for r in replies) == ANSWER
    )  # a paced turn may span contexts
    worker.stop()


async def test_two_workers_on_two_nodes_share_a_burst_of_rooms(
    cluster: Cluster, record_property: object
) -> None:
    """Four rooms, 0.3 s apart, through both nodes; two workers of two slots each, one per
    node. Every room gets exactly one agent, so the split is two and two; a room first
    offered to a worker already full is declined and dispatched again (agent.redispatch)."""
    env = {"AGENT_NAME": "burst", "WORKER_MAX_JOBS": "2"}
    workers = [
        await cluster.start_worker("burst-a", 0, **env),
        await cluster.start_worker("burst-b", 1, **env),
    ]
    rooms = [new_room("burst") for _ in range(4)]
    users = [cluster.user(room, via=i % 2, agent="burst") for i, room in enumerate(rooms)]
    try:
        for i, user in enumerate(users):
            if i:
                await asyncio.sleep(0.3)  # the burst's spacing: the stimulus, not a wait
            await user.connect()
        await asyncio.gather(*(u.wait_for_agent(timeout=90) for u in users))
        split = {f"node {'ab'[i]}": sessions_started(w) for i, w in enumerate(workers)}
        redispatched = [line for w in workers for line in w.messages("dispatched burst again")]
        report(record_property, "burst split", {k: len(v) for k, v in split.items()})
        report(record_property, "burst rooms dispatched again", len(redispatched))
        assert sorted(split["node a"] + split["node b"]) == sorted(rooms), split
        for user in users:  # one agent in each room, not two
            agents = [
                p
                for p in user.room.remote_participants.values()
                if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
            ]
            assert len(agents) == 1, [p.identity for p in agents]
    finally:
        await asyncio.gather(*(u.aclose() for u in users))
        for worker in workers:
            worker.stop()


def nth_registration(worker: WorkerProcess, n: int) -> bool:
    return len(worker.messages("registered worker")) >= n


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_node_restarts_and_its_worker_comes_back_by_itself(
    cluster: Cluster, sig: signal.Signals, record_property: object
) -> None:
    name = sig.name.lower()
    worker_a = await cluster.start_worker(f"restart-a-{name}", 0, AGENT_NAME=f"restart-a-{name}")
    worker_b = await cluster.start_worker(f"restart-b-{name}", 1, AGENT_NAME=f"restart-b-{name}")
    room_b = new_room("steady")
    await cluster.create_room(room_b, via=1, host=1, agent=f"restart-b-{name}")
    script = cluster.stack.script
    script.transcript, script.replies[QUESTION] = QUESTION, ANSWER
    async with cluster.user(room_b, via=1) as user_b:
        await user_b.wait_for_agent(timeout=60)
        await user_b.wait_for_agent_state("listening", after=0.0, timeout=60)

        registrations = len(worker_a.messages("registered worker"))
        stopped_at = time.perf_counter()
        await asyncio.to_thread(cluster.local.restart, 0, sig)
        back_at = time.perf_counter()
        seen = 0

        def registered_again(line: LogLine) -> bool:
            nonlocal seen
            seen += "registered worker" in str(line.get("message", ""))
            return seen > registrations

        await worker_a.wait_for(registered_again, timeout=90)
        came_back = time.perf_counter()
        report(
            record_property,
            f"worker registered again after {name}",
            f"{came_back - back_at:.1f} s after the node was back "
            f"({came_back - stopped_at:.1f} s after the stop)",
        )
        assert worker_a.returncode is None
        # while its node was gone it kept trying, set never to give up (LiveKit's default
        # gives up after 16 tries, about two minutes, and then exits with status 0)
        retries = worker_a.messages("failed to connect to livekit")
        assert retries and {r.get("max_retry") for r in retries} == {RECONNECT_FOREVER}

        # the next room on the restarted node gets the agent
        room_a = new_room("after")
        await cluster.create_room(room_a, via=0, host=0, agent=f"restart-a-{name}")
        async with cluster.user(room_a, via=0) as user_a:
            await user_a.wait_for_agent(timeout=60)
        # and the session on the other node went on: it still answers
        stopped, first, _ = await ask(user_b, QUESTION)
        assert first > stopped
    assert room_a in sessions_started(worker_a)
    worker_a.stop()
    worker_b.stop()


def listening_sockets(pid: int) -> list[tuple[str, str, int]]:
    """(kind, address, port) of every socket of `pid` that listens (TCP) or is bound (UDP)."""
    found = []
    for conn in psutil.Process(pid).net_connections(kind="inet"):
        kind = "tcp" if conn.type == 1 else "udp"
        if kind == "tcp" and conn.status != psutil.CONN_LISTEN:
            continue
        if conn.laddr:
            found.append((kind, conn.laddr.ip, conn.laddr.port))
    return found


async def test_everything_listens_on_loopback_only_and_no_secret_is_on_a_command_line(
    cluster: Cluster,
) -> None:
    processes = {f"node {'ab'[i]}": node.process for i, node in enumerate(cluster.local.nodes)}
    assert cluster.local.redis is not None
    processes["redis"] = cluster.local.redis.process
    for name, child in processes.items():
        assert child is not None and child.proc is not None
        sockets = listening_sockets(child.proc.pid)
        assert sockets, name
        outside = [s for s in sockets if not s[1].startswith("127.")]
        assert not outside, (name, outside)
        cmdline = " ".join(psutil.Process(child.proc.pid).cmdline())
        assert cluster.local.api_secret not in cmdline, name
    # and a worker: its health-check server (WORKER_HOST=127.0.0.1 in the local stack)
    worker = await cluster.start_worker("loopback", 0, AGENT_NAME="loopback")
    assert worker.process.proc is not None
    root = psutil.Process(worker.process.proc.pid)
    worker_sockets = [
        s for p in [root, *root.children(recursive=True)] for s in listening_sockets(p.pid)
    ]
    assert any(s[0] == "tcp" for s in worker_sockets)
    assert all(s[1].startswith("127.") for s in worker_sockets), worker_sockets
    worker.stop()
    for node in cluster.local.nodes:
        assert node.process is not None and node.process.proc is not None
        sockets = listening_sockets(node.process.proc.pid)
        # signalling (HTTP/WebSocket) is the only TCP port: RTC over TCP is off
        assert {s for s in sockets if s[0] == "tcp"} == {("tcp", "127.0.0.1", node.port)}
        assert ("udp", "127.0.0.1", node.udp_port) in sockets
