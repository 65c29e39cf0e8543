"""The scripted LLM replies: reply shapes, their tokens and arrival times, and the earliest
first audio a reply allows."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from agent.dev.scripted import TokenPlan, llm_tokens

from .emulator import EMULATOR_TTFA_S

__all__ = ["SHAPES", "SHAPE_BY_NAME", "Script", "Shape", "llm_tokens", "script", "token_times"]


@dataclass(frozen=True)
class Shape:
    """A reply shape. ``group``: "early" (a sentence or clause end of at least three words
    comes early), "long" (a long first sentence), or "short" (the first sentence is short,
    complete before any deadline, with no earlier clause of three words: every policy that
    sends whole words in phrases waits for it, as the baseline does)."""

    name: str
    label: str
    text: str
    group: str = "early"


SHAPES: tuple[Shape, ...] = (
    Shape("short", "one short sentence", "Sure, I can book that table for you.", "short"),
    Shape("greeting", "greeting", "Hi there! How can I help you today?"),
    Shape(
        "greeting_name",
        "greeting with a name",
        "Hello Maria, thanks for calling Bella Cucina. What can I do for you today?",
        "short",
    ),
    Shape(
        "sure",
        '"Sure, ..." + a long sentence',
        "Sure, I can move your appointment with Doctor Patel to Thursday afternoon at "
        "three thirty instead.",
        "long",
    ),
    Shape(
        "of_course",
        '"Of course! ..."',
        "Of course! The restaurant is open until eleven tonight, and the kitchen takes "
        "orders until ten thirty.",
    ),
    Shape(
        "three",
        "three sentences",
        "Sure! It is sunny and twenty two degrees in Paris today. "
        "Would you like the forecast for tomorrow as well?",
    ),
    Shape(
        "long_first",
        "long first sentence, comma late",
        "The fastest way into the city is the express train from the lower level of "
        "terminal two, and it takes twenty minutes.",
        "long",
    ),
    Shape(
        "long_no_comma",
        "long first sentence, no comma",
        "The quickest way to get from the airport to your hotel downtown is the express "
        "train that leaves every fifteen minutes from the lower level of terminal two.",
        "long",
    ),
    Shape(
        "question",
        "long question",
        "Would you like me to send the confirmation to the email address we have on file "
        "for your account?",
        "long",
    ),
    Shape(
        "list",
        "a list",
        "Here are three options:\n1. The train.\n2. A taxi.\n3. The bus.",
    ),
    Shape(
        "price",
        "numbers and prices",
        "Your total comes to $42.50 including tax and delivery, and it should arrive in "
        "about 35 minutes.",
        "long",
    ),
    Shape(
        "plans",
        "prices in a list sentence",
        "The basic plan is $9.99 a month, the standard plan is $15.49, and the premium "
        "plan is $22.99.",
    ),
    Shape(
        "clause_start",
        "starts with a clause",
        "Well, if you leave before eight, you will be there by nine.",
    ),
)
SHAPE_BY_NAME = {s.name: s for s in SHAPES}

TOKEN_GAP_S = (0.015, 0.025)  # per token after the first, uniform
_CLAUSE_MARKS = frozenset(",;:—")
_SENTENCE_MARKS = frozenset(".!?")
MIN_CLAUSE_WORDS = 3


def token_times(count: int, rng: random.Random) -> list[float]:
    """First token at t=0, then one every 15-25 ms."""
    times = [0.0]
    for _ in range(count - 1):
        times.append(times[-1] + rng.uniform(*TOKEN_GAP_S))
    return times


def first_clause_token(tokens: Sequence[str]) -> int:
    """Index of the token that completes the first speakable clause: a sentence end, or a
    clause mark (, ; : —) after at least three words. Independent of any plugin's chunker."""
    text = ""
    for i, token in enumerate(tokens):
        text += token
        if i + 1 < len(tokens) and not tokens[i + 1][:1].isspace():
            continue  # "$42" "." "50": a mark inside a number ends nothing
        mark = token.strip()[-1:]
        line = text.split("\n")[-1].strip()
        words = len(re.findall(r"\w+", text))
        if mark in _SENTENCE_MARKS and words and not re.fullmatch(r"\d+[.)]", line):  # "1." lists
            return i
        if mark in _CLAUSE_MARKS and words >= MIN_CLAUSE_WORDS:
            return i
    return len(tokens) - 1


def lower_bound_s(tokens: Sequence[str], times: Sequence[float]) -> float:
    """Earliest possible first audio: first speakable clause complete + the server's TTFA."""
    return times[first_clause_token(tokens)] + EMULATOR_TTFA_S


@dataclass
class Script:
    """One scripted LLM reply: its tokens and when each arrives (seconds from the first)."""

    shape: Shape
    tokens: list[str]
    times: list[float]

    @property
    def lower_bound_s(self) -> float:
        return lower_bound_s(self.tokens, self.times)

    @property
    def plan(self) -> TokenPlan:
        return list(zip(self.times, self.tokens, strict=True))


def script(shape: Shape, seed: int) -> Script:
    tokens = llm_tokens(shape.text)
    return Script(shape, tokens, token_times(len(tokens), random.Random(seed)))
