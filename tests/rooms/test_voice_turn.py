"""The worker in a real room: a participant (the real `livekit` rtc SDK) talks to it over
WebRTC through a real LiveKit server, and hears the reply the emulator synthesized.

Chain: user's eSpeak speech -> mic track -> server -> worker (Silero VAD, OpenAI STT and
LLM clients against the local OpenAI-compatible server, plugin_cartesia_ws against the
emulator) -> agent track -> server -> this participant.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from agent.dev.room_user import HEARD_RATE, RoomUser, envelope_similarity, voiced_span
from agent.dev.worker_process import REPO_ROOT, WorkerProcess
from agent.simulate import espeak_utterance
from plugin_cartesia_ws.emulator.state import ContextRecord
from plugin_cartesia_ws.emulator.voices import EspeakVoice

from .conftest import AGENT, Stack, new_room

pytestmark = pytest.mark.asyncio(loop_scope="session")

QUESTION = "What is the weather like today?"
ANSWER = (
    "Sure! Today it is sunny and warm, with a light breeze from the west. "
    "Tomorrow brings a few clouds in the afternoon."
)
STORY = (
    "Once upon a time, in a small village by the sea, there lived an old fisherman. "
    "Every morning he rowed out past the lighthouse and waited for the tide to turn. "
    "One day he caught a fish that could talk, and it promised him three wishes. "
    "He thought about it for a long time before he said a single word."
)
STOP = "Stop, please."
AEC_WARMUP_S = 3.0  # livekit.agents.voice.agent_session._DEFAULT_AEC_WARMUP_DURATION
AFTER_STOP = "Okay, I will stop."


def new_records(stack: Stack, before: set[str]) -> list[ContextRecord]:
    return [r for cid, r in stack.emulator.records.items() if cid not in before]


def record_pcm(record: ContextRecord) -> np.ndarray:
    assert record.audio is not None, "the emulator did not keep this context's audio"
    return np.frombuffer(bytes(record.audio), dtype=np.int16)


def cli_token(stack: Stack, room: str) -> str:
    """A join token from `python -m agent token`, as a user would get one."""
    env = {
        **os.environ,
        "LIVEKIT_URL": stack.server.url,
        "LIVEKIT_API_KEY": stack.server.api_key,
        "LIVEKIT_API_SECRET": stack.server.api_secret,
        "AGENT_NAME": AGENT,
    }
    out = subprocess.run(
        [sys.executable, "-m", "agent", "token", "--room", room, "--identity", "user"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    assert lines["url"] == stack.server.url
    return lines["token"]


async def ask(user: RoomUser, text: str, *, timeout: float = 60.0) -> tuple[float, float, float]:
    """Say `text`; return (user stopped speaking, first agent audio, end of reply)."""
    said = user.say(espeak_utterance(text).pcm)
    await said.done.wait()
    first = await user.wait_for_agent_audio(after=said.voice_end, timeout=timeout)
    end = await user.wait_for_reply_end(after=first, timeout=timeout)
    return said.voice_end, first, end


async def test_a_voice_turn_is_heard_over_webrtc(
    stack: Stack, default_worker: WorkerProcess
) -> None:
    stack.script.transcript = QUESTION
    stack.script.replies[QUESTION] = ANSWER
    room = new_room("turn")
    before = set(stack.emulator.records)
    async with RoomUser(stack.server.url, cli_token(stack, room)) as user:
        await user.wait_for_agent(timeout=60)
        await user.wait_for_agent_state("listening", after=0.0, timeout=60)
        stopped, first, end = await ask(user, QUESTION)

    # the worker took the job (dispatched by the token) and heard the question
    assert default_worker.find(lambda line: line.get("room") == room)
    records = new_records(stack, before)
    assert (
        " ".join(r.transcript.strip() for r in records) == ANSWER
    )  # a paced turn may span contexts
    record = records[0]
    assert record.done_sent and not record.cancelled

    # what reached the participant is the turn's audio (all its contexts), whole, after Opus
    sent = np.concatenate([record_pcm(r) for r in records])
    sent_span = voiced_span(sent, HEARD_RATE)
    assert sent_span is not None
    heard = user.heard.pcm_between(first - 0.05, end + 0.05)
    heard_span = voiced_span(heard, HEARD_RATE)
    assert heard_span is not None
    heard_len, sent_len = heard_span[1] - heard_span[0], sent_span[1] - sent_span[0]
    # within 0.25 s: WebRTC's jitter buffer may stretch or squeeze a loaded receiver's
    # playout by a few frames; a lost or repeated word would be 0.3 s and more
    assert abs(heard_len - sent_len) < 0.25, (heard_len, sent_len)
    match = envelope_similarity(heard, sent, HEARD_RATE)
    other = EspeakVoice().render(STORY, sample_rate=HEARD_RATE).samples.astype(np.int16)
    control = envelope_similarity(heard, other, HEARD_RATE)
    assert match > 0.8 and match - control > 0.2, (match, control)
    assert first > stopped


async def test_transcriptions_reach_the_participant(
    stack: Stack, default_worker: WorkerProcess
) -> None:
    stack.script.transcript = QUESTION
    stack.script.replies[QUESTION] = ANSWER
    async with stack.user(new_room("transcript")) as user:
        agent = await user.wait_for_agent(timeout=60)
        await user.wait_for_agent_state("listening", after=0.0, timeout=60)
        await ask(user, QUESTION)

        def finals(identity: str) -> list[str]:
            return [t.text for t in user.transcript_of(identity) if t.final]

        await user.wait_until(lambda: finals(agent) and finals("user"), timeout=30)
        # the user's words, then the agent's, in order and whole, as the Playground shows
        assert finals("user") == [QUESTION]
        assert finals(agent) == [ANSWER]
        user_seg = user.transcript_of("user")[0]
        agent_seg = user.transcript_of(agent)[0]
        assert user_seg.received_at < agent_seg.received_at


async def test_barge_in_in_the_room(stack: Stack, default_worker: WorkerProcess) -> None:
    stack.script.transcript = "Tell me a story."
    stack.script.replies["Tell me a story."] = STORY
    stack.script.replies[STOP] = AFTER_STOP
    before = set(stack.emulator.records)
    # a slow LLM (8 tokens/s): the story is still being synthesized when the user speaks
    # up, so there is a Cartesia context to cancel (a finished one has nothing to cancel;
    # the worker then only drops the audio it holds)
    stack.openai.token_interval = 0.12
    try:
        await _barge_in(stack, before)
    finally:
        stack.openai.token_interval = 0.02


async def _barge_in(stack: Stack, before: set[str]) -> None:
    async with stack.user(new_room("barge")) as user:
        await user.wait_for_agent(timeout=60)
        await user.wait_for_agent_state("listening", after=0.0, timeout=60)
        said = user.say(espeak_utterance("Tell me a story.").pcm)
        await said.done.wait()
        first = await user.wait_for_agent_audio(after=said.voice_end, timeout=60)
        # talk over the reply once LiveKit listens for interruptions: it ignores the user
        # for the first AEC_WARMUP_S of the session's first reply (echo cancellation warm-up)
        await user.wait_until(
            lambda: (user.heard.last_voiced() or 0.0) > first + AEC_WARMUP_S + 0.5, timeout=30
        )
        stack.script.transcript = STOP
        interruption = user.say(espeak_utterance(STOP).pcm)
        await interruption.done.wait()
        # the story's context (paced, the turn may have gone on in '<id>-r<n>' contexts after
        # quiet spells): the one still receiving text is cancelled
        (story_record,) = [
            r for r in new_records(stack, before) if STORY.startswith(r.transcript.strip())
        ]

        def story_contexts() -> list[ContextRecord]:
            return [
                r
                for r in new_records(stack, before)
                if r.context_id.startswith(story_record.context_id)
            ]

        await stack.emulator.wait_for(
            lambda: any(r.cancelled for r in story_contexts()), timeout=30
        )
        # the answer to the interruption comes on the same socket
        reply_first = await user.wait_for_agent_audio(after=interruption.voice_end, timeout=60)
        await user.wait_for_reply_end(after=reply_first, timeout=60)

    story_heard = user.heard.pcm_between(first - 0.05, interruption.voice_end)
    story_span = voiced_span(story_heard, HEARD_RATE)
    family = story_contexts()
    synthesized = sum(len(record_pcm(r)) for r in family) / HEARD_RATE
    # paced, the story's end was never sent: its full length from the rate of what was made
    full = synthesized * len(STORY) / max(len("".join(r.transcript for r in family)), 1)
    assert story_span is not None
    # the story stopped at the listener, long before its end, and after the user spoke up
    heard_until = first + story_span[1]
    assert story_span[1] - story_span[0] < full - 2.0, (story_span, full)
    assert heard_until > interruption.voice_start
    records = new_records(stack, before)
    answer = [r for r in records if r.transcript.strip() == AFTER_STOP]
    assert len(answer) == 1 and answer[0].done_sent
    assert answer[0].socket_id == story_record.socket_id
