"""The room benchmark's turns, as a participant lives them, and what the emulator billed.

`Script` is what the OpenAI stand-in hears and answers (one at a time: turns run one after
another). `Billing` reads one worker's own emulator process: the contexts billed since the
last look, with their transcripts and whether they were cancelled. `spoken_turn` asks a
question in a fresh room and measures the latency heard (`hesitant_question()`: the same
question with a pause in it, which may start a preemptive reply that is then discarded);
`interrupted_turn` asks for a ~30 s story and talks over it once the agent has spoken for
~3.5 s (barge-in).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.dev.local_openai import TranscriptionRequest
from agent.dev.room_user import MIC_RATE, RoomUser, voiced_span
from agent.settings import Settings
from agent.simulate import espeak_utterance
from agent.token import make_token

from .emulator import Emulator

QUESTION = "What should I cook for dinner tonight?"
# the question said in two breaths: a pause longer than a short VAD_MIN_SILENCE (a stretch of
# speech ends, is transcribed, and a preemptive reply starts) and shorter than the 0.5 s
# endpointing delay (the user's turn goes on)
HESITANT_PARTS = ("What should I cook", "for dinner tonight?")
HESITANT_PAUSE_S = 0.35
# reply shapes: a short opener, a long first sentence without a comma, a list, a price
REPLIES = [
    "Sure! How about a simple pasta with garlic, olive oil and a little chili?",
    "A warm vegetable curry with rice is easy to make on a weeknight and keeps well for lunch.",
    "Of course. You could try tacos, a stir fry, or a quick omelette with herbs.",
    "A roast chicken costs about twelve dollars and feeds four people with leftovers.",
]
STORY_QUESTION = "Tell me a long story."
# ~30 s of the emulator's tone voice; streamed by the stand-in LLM in ~3 s
STORY = (
    "Once upon a time, in a small village by the sea, there lived an old fisherman. "
    "Every morning he rowed out past the lighthouse and waited for the tide to turn. "
    "One day he caught a fish that could talk, and it promised him three wishes. "
    "He thought about it for a long time before he said a single word. "
    "First he wished for a new boat, with a red sail and a warm little cabin. "
    "Then he wished for a garden behind his house, full of apples and roses. "
    "For his last wish he asked the fish to swim home safely to its family. "
    "The fish thanked him, and every spring after that the sea was kind to him."
)
STOP = "Stop, please."
AFTER_STOP = "Okay, I will stop."
# LiveKit ignores the user for the first 3 s of a session's first reply (echo cancellation
# warm-up, livekit.agents.voice.agent_session._DEFAULT_AEC_WARMUP_DURATION): talk after it
BARGE_IN_AFTER_S = 3.0 + 0.5


@dataclass
class Script:
    """What the stand-in STT hears (`transcript`) and what its LLM answers: the reply for
    the user's last message if there is one in `replies`, else `reply`."""

    transcript: str = QUESTION
    reply: str = REPLIES[0]
    replies: dict[str, str] = field(
        default_factory=lambda: {STORY_QUESTION: STORY, STOP: AFTER_STOP}
    )
    # heard one per stretch of speech before `transcript` (the hesitant question's parts)
    segments: list[str] = field(default_factory=list)

    def transcribe(self, request: TranscriptionRequest) -> str:
        return self.segments.pop(0) if self.segments else self.transcript

    def answer(self, messages: list[dict[str, Any]]) -> str:
        users = [m for m in messages if m.get("role") == "user"]
        last = users[-1].get("content") if users else ""
        if isinstance(last, list):  # content parts
            last = " ".join(str(p.get("text", "")) for p in last if isinstance(p, dict))
        return self.replies.get(str(last).strip(), self.reply)


class Billing:
    """One worker's emulator: the contexts billed since the last `new_contexts()`."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._seen: dict[str, int] = {}

    async def new_contexts(self) -> list[dict[str, Any]]:
        """Each context billed (more) since the last call: id, chars billed since then,
        transcript received, cancelled or not."""
        spend = await self.emulator.spend()
        found = []
        for cid, chars in spend["by_context"].items():
            before = self._seen.get(cid, 0)
            if chars == before:
                continue
            self._seen[cid] = chars
            record = await self.emulator.context(cid) or {}
            found.append(
                {
                    "context_id": cid,
                    "billed_chars": chars - before,
                    "transcript": str(record.get("transcript", "")),
                    "cancelled": record.get("cancel_received_at") is not None,
                }
            )
        return found


def _squash(text: str) -> str:
    """Without whitespace: a plugin may send sentences with or without a space between."""
    return "".join(text.split())


_STORY = _squash(STORY)


def new_room(agent: str) -> str:
    return f"bench-{agent}-{uuid.uuid4().hex[:6]}"


async def _joined(user: RoomUser, timeout: float) -> None:
    await user.wait_for_agent(timeout=timeout)
    await user.wait_for_agent_state("listening", after=0.0, timeout=timeout)


def hesitant_question() -> np.ndarray:
    """The question's two parts, each trimmed to its voiced span, `HESITANT_PAUSE_S` apart."""
    parts = []
    for text in HESITANT_PARTS:
        pcm = espeak_utterance(text).pcm
        span = voiced_span(pcm, MIC_RATE) or (0.0, len(pcm) / MIC_RATE)
        parts.append(pcm[int(span[0] * MIC_RATE) : int(span[1] * MIC_RATE)])
    pause = np.zeros(int(HESITANT_PAUSE_S * MIC_RATE), np.int16)
    tail = np.zeros(MIC_RATE // 10, np.int16)
    return np.concatenate([parts[0], pause, parts[1], tail]).astype(np.int16)


async def spoken_turn(
    url: str,
    settings: Settings,
    agent: str,
    billing: Billing,
    timeout: float,
    speech: np.ndarray | None = None,
) -> dict[str, Any]:
    """A fresh room, one question (`speech`, default QUESTION), the whole reply: the
    latency heard (ms) and what was billed for it (a context cancelled in such a turn is a
    speculative reply LiveKit discarded)."""
    room = new_room(agent)
    await billing.new_contexts()  # whatever came before is not this turn's
    token = make_token(settings, room=room, identity="user", agent_name=agent)
    async with RoomUser(url, token) as user:
        await _joined(user, timeout)
        said = user.say(espeak_utterance(QUESTION).pcm if speech is None else speech)
        await said.done.wait()
        first = await user.wait_for_agent_audio(after=said.voice_end, timeout=timeout)
        await user.wait_for_reply_end(after=first, timeout=timeout)
    contexts = await billing.new_contexts()
    return {
        "room": room,
        "heard_ms": (first - said.voice_end) * 1000,
        "billed_chars": sum(c["billed_chars"] for c in contexts),
        "contexts": len(contexts),
        "cancelled_contexts": sum(1 for c in contexts if c["cancelled"]),
        "cancelled_chars": sum(c["billed_chars"] for c in contexts if c["cancelled"]),
    }


async def interrupted_turn(
    url: str, settings: Settings, agent: str, billing: Billing, script: Script, timeout: float
) -> dict[str, Any]:
    """A fresh room: ask for the story, talk over it `BARGE_IN_AFTER_S` after its first
    audio, hear the answer to that. Billed characters of the story's contexts (every
    context whose text is part of the story) against the story's length."""
    room = new_room(agent)
    await billing.new_contexts()
    token = make_token(settings, room=room, identity="user", agent_name=agent)
    async with RoomUser(url, token) as user:
        await _joined(user, timeout)
        script.transcript = STORY_QUESTION
        said = user.say(espeak_utterance(STORY_QUESTION).pcm)
        await said.done.wait()
        first = await user.wait_for_agent_audio(after=said.voice_end, timeout=timeout)
        await user.wait_until(
            lambda: (user.heard.last_voiced() or 0.0) > first + BARGE_IN_AFTER_S,
            timeout=timeout,
        )
        script.transcript = STOP
        stop = user.say(espeak_utterance(STOP).pcm)
        await stop.done.wait()
        answer = await user.wait_for_agent_audio(after=stop.voice_end, timeout=timeout)
        await user.wait_for_reply_end(after=answer, timeout=timeout)
    contexts = await billing.new_contexts()
    story = [c for c in contexts if _squash(c["transcript"]) and _squash(c["transcript"]) in _STORY]
    heard_until = max(
        (t for t, v in zip(user.heard.times, user.heard.voiced, strict=False) if v and t < answer),
        default=first,
    )
    return {
        "room": room,
        "story_chars": len(STORY),
        "story_billed_chars": sum(c["billed_chars"] for c in story),
        "story_contexts": len(story),
        "story_cancelled": any(c["cancelled"] for c in story),
        "billed_chars": sum(c["billed_chars"] for c in contexts),
        "story_heard_s": heard_until - first,
        "talked_after_s": stop.voice_start - first,
    }
