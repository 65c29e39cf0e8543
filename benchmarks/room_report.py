"""The room benchmark's report: heard latency per worker, billed characters, interrupted
turns, where the time goes (from the workers' LiveKit metrics) and rooms at once.

The per-stage breakdown reads the worker's own log lines for each measured room (LiveKit's
metrics as `agent/session_logs.py` logs them), on one timeline from the VAD's end of the
user's speech: the final transcript (VAD silence + STT), the LLM's first token (the LLM
starts at the final transcript: preemptive generation), the text held before the first
TTS request plus the audio output, the TTS's first byte; their sum is LiveKit's
`e2e_latency`. Heard minus e2e is the two WebRTC legs (and where the participant and the
VAD put the end of speech).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

WORKERS = ("ours", "ours_nospec", "baseline")
LABELS = {
    "ours": "ours, speculative TTS (PREEMPTIVE_TTS=on, default)",
    "ours_nospec": "ours, PREEMPTIVE_TTS=off",
    "baseline": "livekit.plugins.cartesia",
}
TARGET_RATIO = 0.70
# (key, what it is); keys of `stages()`
STAGES = (
    ("transcript", "end of speech -> final transcript (VAD silence + STT)"),
    ("llm_ttft", "LLM first token (from the final transcript)"),
    ("text_held", "text held before the first TTS request, and the audio output"),
    ("tts_ttfb", "TTS first byte (from the first text sent)"),
    ("e2e", "= LiveKit's e2e_latency (VAD end of speech -> first audio out)"),
    ("webrtc", "heard - e2e (both WebRTC legs)"),
    ("heard", "= heard by the participant"),
    ("lead", "turn committed - final transcript (preemptive generation's head start)"),
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def stages(lines: list[dict[str, Any]], room: str, heard_ms: float) -> dict[str, float]:
    """One turn's stages (ms) from its worker's log lines for `room`; {} when missing."""
    user = next((x for x in lines if x.get("room") == room and _is(x, "user turn:")), None)
    agent = next((x for x in lines if x.get("room") == room and _is(x, "agent turn:")), None)
    if user is None or agent is None:
        return {}
    ms: dict[str, float] = {}
    for line, keys in (
        (agent, ("e2e_latency", "llm_node_ttft", "tts_node_ttfb")),
        (user, ("transcription_delay", "end_of_turn_delay")),
    ):
        for key in keys:
            value = line.get(key)
            if not isinstance(value, int | float):
                return {}
            ms[key] = float(value) * 1000
    return {
        "transcript": ms["transcription_delay"],
        "llm_ttft": ms["llm_node_ttft"],
        "text_held": ms["e2e_latency"]
        - ms["transcription_delay"]
        - ms["llm_node_ttft"]
        - ms["tts_node_ttfb"],
        "tts_ttfb": ms["tts_node_ttfb"],
        "e2e": ms["e2e_latency"],
        "webrtc": heard_ms - ms["e2e_latency"],
        "heard": heard_ms,
        "lead": ms["end_of_turn_delay"] - ms["transcription_delay"],
    }


def _is(line: dict[str, Any], prefix: str) -> bool:
    return str(line.get("message", "")).startswith(prefix)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def _mean(values: list[float]) -> str:
    return f"{statistics.fmean(values):.0f}" if values else "–"


def report(result: dict[str, Any]) -> str:
    lines = _latency(result) + _billing(result) + _interrupted(result) + _breakdown(result)
    settings = result.get("worker_settings")
    if settings:
        shared = ", ".join(f"{k}={v}" for k, v in settings.items())
        lines = [f"All three workers ran with {shared}.", ""] + lines
    return "\n".join(lines + _scale(result))


def _latency(result: dict[str, Any]) -> list[str]:
    lat = result["latency_ms"]
    lines = [
        "## Heard latency (end of the participant's speech -> first voiced frame of the reply)",
        "",
        "| worker | turns | p50 | p95 | mean | p50 / official | no reply in 60 s |",
        "|---|---|---|---|---|---|---|",
    ]
    base = _median(lat.get("baseline", []))
    for name in WORKERS:
        v = lat.get(name, [])
        if not v:
            continue
        ratio = f"{statistics.median(v) / base:.2f}x" if base else "–"
        lines.append(
            f"| {LABELS[name]} | {len(v)} | {statistics.median(v):.0f} ms | "
            f"{pct(v, 0.95):.0f} ms | {statistics.fmean(v):.0f} ms | {ratio} | "
            f"{result.get('latency_failed', {}).get(name, 0)} |"
        )
    if base and lat.get("ours"):
        ratio = statistics.median(lat["ours"]) / base
        verdict = "met" if ratio <= TARGET_RATIO else "missed"
        lines.append(
            f"\np50 ratio ours / baseline: {ratio:.2f}x (speculative TTS; target "
            f"{TARGET_RATIO:.2f}x: {verdict})"
        )
    if base and lat.get("ours_nospec"):
        ratio = statistics.median(lat["ours_nospec"]) / base
        lines.append(f"p50 ratio ours without speculative TTS / baseline: {ratio:.2f}x")
    shapes = result.get("shapes", [])
    turns = result.get("turns", {})
    if shapes and turns:
        lines += ["", "| reply (p50 per shape) | " + " | ".join(WORKERS) + " |"]
        lines.append("|---" * (len(WORKERS) + 1) + "|")
        for i, shape in enumerate(shapes):
            cells = [
                _ms(_median([t["heard_ms"] for t in turns.get(w, []) if t["shape"] == i]))
                for w in WORKERS
            ]
            lines.append(f"| {shape[:40]}… | " + " | ".join(cells) + " |")
    return lines + [""]


def _billing(result: dict[str, Any]) -> list[str]:
    turns = result.get("turns", {})
    if not turns:
        return []
    lines = [
        "## Billed TTS characters per turn (each worker has its own emulator)",
        "",
        "| worker | turns | reply chars (mean) | billed per turn (mean) | contexts per turn | "
        "cancelled contexts (all turns) | billed in them per turn (mean) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in WORKERS:
        t = turns.get(name, [])
        if not t:
            continue
        lines.append(
            f"| {name} | {len(t)} | {_mean([x['reply_chars'] for x in t])} | "
            f"{_mean([x['billed_chars'] for x in t])} | {_mean([x['contexts'] for x in t])} | "
            f"{sum(x['cancelled_contexts'] for x in t)} | "
            f"{_mean([x['cancelled_chars'] for x in t])} |"
        )
    lines.append(
        "\nA context cancelled in a turn nobody interrupted is a speculative reply LiveKit "
        "discarded (its preemptive generation restarted): what speculative TTS cost."
    )
    hesitant = result.get("hesitant", {})
    if any(hesitant.values()):
        lines += [
            "",
            'Hesitant turns (the question with a 0.35 s pause after "What should I cook"):',
            "",
            "| worker | turns | heard p50 | reply chars (mean) | billed per turn (mean) | "
            "cancelled contexts (all turns) | billed in them per turn (mean) |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in WORKERS:
            t = hesitant.get(name, [])
            if t:
                lines.append(
                    f"| {name} | {len(t)} | {_ms(_median([x['heard_ms'] for x in t]))} | "
                    f"{_mean([x['reply_chars'] for x in t])} | "
                    f"{_mean([x['billed_chars'] for x in t])} | "
                    f"{sum(x['cancelled_contexts'] for x in t)} | "
                    f"{_mean([x['cancelled_chars'] for x in t])} |"
                )
    return lines + [""]


def _interrupted(result: dict[str, Any]) -> list[str]:
    barge = result.get("interrupted", {})
    if not any(barge.values()):
        return []
    lines = [
        "## Interrupted turns (a ~30 s story, the participant talks over it)",
        "",
        "| worker | turns | story chars | story billed per interrupted turn (mean, min-max) | "
        "share of the story | story heard (mean) | talked after (mean) | cancel sent |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in WORKERS:
        t = barge.get(name, [])
        if not t:
            continue
        billed = [x["story_billed_chars"] for x in t]
        full = t[0]["story_chars"]
        lines.append(
            f"| {name} | {len(t)} | {full} | {statistics.fmean(billed):.0f} "
            f"({min(billed)}-{max(billed)}) | {statistics.fmean(billed) / full:.0%} | "
            f"{statistics.fmean([x['story_heard_s'] for x in t]):.1f} s | "
            f"{statistics.fmean([x['talked_after_s'] for x in t]):.1f} s | "
            f"{sum(1 for x in t if x['story_cancelled'])}/{len(t)} |"
        )
    failed = result.get("interrupted_failed", {})
    if any(failed.values()):
        lines.append(f"\nInterrupted turns that timed out: {failed}")
    return lines + [""]


def _breakdown(result: dict[str, Any]) -> list[str]:
    turns = result.get("turns", {})
    per = {
        w: {
            k: _median([t["stages"][k] for t in turns.get(w, []) if t.get("stages")])
            for k, _ in STAGES
        }
        for w in WORKERS
        if turns.get(w)
    }
    if not per or all(v["e2e"] is None for v in per.values()):
        return []
    names = list(per)
    lines = [
        "## Where the time goes (medians per stage, from the workers' LiveKit metrics)",
        "",
        "| stage | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for key, what in STAGES:
        lines.append(f"| {what} | " + " | ".join(_ms(per[w][key]) for w in names) + " |")
    base_heard = _median(result["latency_ms"].get("baseline", []))
    shared_stages = [per.get("baseline", {}).get(k) for k in ("transcript", "llm_ttft", "webrtc")]
    if base_heard and all(v is not None for v in shared_stages):
        shared = sum(v or 0.0 for v in shared_stages)
        lines.append(
            f"\nThe stages no TTS plugin changes (transcript, LLM first token, WebRTC) take "
            f"{shared:.0f} ms on the official worker: a TTS with no latency at all would "
            f"be heard at {shared / base_heard:.2f}x the official p50."
        )
    return lines + [""]


def _scale(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Rooms at once (one worker of ours)",
        "",
        "| rooms at once (one worker) | p50 | p95 | turns without a reply in 120 s |",
        "|---|---|---|---|",
    ]
    for n, v in result["scale_ms"].items():
        lost = result.get("scale_failed", {}).get(n, 0)
        if v:
            lines.append(
                f"| {n} | {statistics.median(v):.0f} ms | {pct(v, 0.95):.0f} ms | {lost} |"
            )
        else:
            lines.append(f"| {n} | – | – | {lost} |")
    held = sessions_within(result["scale_ms"], 1.2)
    if held is not None:
        lines.append(
            f"\nRooms at once before p95 grows by more than 20 % over one room: {held} "
            f"({held / result['cores']:.1f} sessions per core on {result['cores']} cores)"
        )
    return lines


def sessions_within(scale_ms: dict[str, list[float]], factor: float) -> int | None:
    """The most rooms at once whose p95 stays within `factor` of the one-room p95."""
    if not scale_ms.get("1"):
        return None
    limit = factor * pct(scale_ms["1"], 0.95)
    held = [int(n) for n, v in scale_ms.items() if v and pct(v, 0.95) <= limit]
    return max(held) if held else None


def plot(result: dict[str, Any], path: Path) -> None:
    """Per-turn heard latency of the three workers, and p50/p95 against rooms at once."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, marker in zip(WORKERS, ("o", "^", "s"), strict=True):
        values = result["latency_ms"].get(name, [])
        left.plot(range(1, len(values) + 1), values, marker=marker, label=name)
    left.set(xlabel="turn", ylabel="ms", title="heard latency per turn (one room each)")
    left.legend()
    rooms = [int(n) for n in result["scale_ms"] if result["scale_ms"][n]]
    for q, label in ((0.5, "p50"), (0.95, "p95")):
        right.plot(
            rooms, [pct(result["scale_ms"][str(n)], q) for n in rooms], marker="o", label=label
        )
    right.set(
        xlabel="rooms at once, one worker", ylabel="ms", title="ours under load", xticks=rooms
    )
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
