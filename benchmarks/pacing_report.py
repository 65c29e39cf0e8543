"""The pacing benchmark's figures (``bench_pacing``): per-turn rows, the billed / heard table,
the targets, and the markdown report."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .measure import ratio, target

ENGINE_NAMES = ("ours paced", "ours unpaced", "official", "official paced")
# Stalls in the first half second of audio come before any held text could leave (the first
# chunk's own audio): the emulator's chunk jitter (+-40 ms on the realistic profile) against
# the player's 20 ms jitter buffer, every engine alike. Pacing can only cause later ones.
START_S = 0.5


def later_stall_ms(row: dict[str, Any]) -> float:
    """A reply's stall once its first half second of audio has played (what pacing owns)."""
    return float(sum(ms for at, ms in row["stalls"] if at >= START_S))


# ---------------------------------------------------------------- figures
def _words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def turn_row(t: Any) -> dict[str, Any]:
    return {
        "engine": t.engine,
        "length_s": t.length_s,
        "speech_s": round(t.reply.speech_s, 1),
        "reply_chars": len(t.reply.text),
        "cut_s": t.cut_s,
        "close_delay_s": t.close_delay_s,
        "heard_s": round(t.heard_s, 2),
        "heard_chars": round(t.heard_chars),
        "billed": t.billed,
        "billed_per_heard": ratio(t.billed, t.heard_chars),
        "stall_ms": round(t.stall_s * 1000, 1),
        "stalls": [(round(at, 2), round(length * 1000)) for at, length in t.stalls][:10],
        "ttfa_ms": None if t.ttfa_s is None else round(t.ttfa_s * 1000, 1),
        "words_ok": _words(t.server_text) == _words(t.reply.text) if t.cut_s is None else None,
        "error": t.error,
    }


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(sum(vals) / len(vals), 2) if vals else None


def billed_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (length, cut, delay): each engine's mean billed/heard over the replicates."""
    cases = sorted({(r["length_s"], r["cut_s"], r["close_delay_s"]) for r in rows})
    table = []
    for length, cut, delay in cases:
        mine = [
            r
            for r in rows
            if (r["length_s"], r["cut_s"], r["close_delay_s"]) == (length, cut, delay)
        ]
        cell = {
            name: {
                "billed_per_heard": _mean(
                    [r["billed_per_heard"] for r in mine if r["engine"] == name]
                ),
                "billed": _mean([r["billed"] for r in mine if r["engine"] == name]),
                "per_reply": [r["billed_per_heard"] for r in mine if r["engine"] == name],
            }
            for name in ENGINE_NAMES
        }
        heard = _mean([r["heard_chars"] for r in mine])
        table.append(
            {
                "length_s": length,
                "cut_s": cut,
                "close_delay_s": delay,
                "heard_chars": heard,
                "engines": cell,
            }
        )
    return table


def targets(result: dict[str, Any], lead: float) -> list[dict[str, Any]]:
    out = []
    for case in result["billed"]:
        if case["cut_s"] != 3.0 or case["length_s"] < 30 or case["close_delay_s"] != 0:
            continue
        e = case["engines"]
        ours, paced, official = (
            e[n]["billed_per_heard"] for n in ("ours paced", "official paced", "official")
        )
        limit = 1 + lead / case["cut_s"]
        ok = (
            None
            if None in (ours, paced, official)
            else ours <= limit and ours <= paced and ours <= official / 5
        )
        out.append(
            target(
                f"billed / heard, 3 s into {case['length_s']:g} s replies, aclose at the cut",
                f"<= {limit:.2f}x, <= official paced, <= official / 5",
                f"ours {ours}x, official paced {paced}x, official {official}x",
                ok,
            )
        )
    for profile, rows in result["uninterrupted"].items():
        mine = [r for r in rows if r["engine"] == "ours paced"]
        later = [later_stall_ms(r) for r in mine]
        first = max((r["stall_ms"] - later_stall_ms(r) for r in rows), default=0)
        out.append(
            target(
                f"underrun stall after the first 0.5 s of audio, ours paced, {profile}",
                "0 ms",
                f"max {max(later, default=0):.0f} ms over {len(later)} replies "
                f"(in the first 0.5 s, any engine: up to {first:.0f} ms)",
                bool(later) and max(later) == 0,
            )
        )
        words = [r["words_ok"] for r in rows if r["engine"].startswith("ours")]
        out.append(
            target(
                f"no word lost, repeated or fused, ours, {profile}",
                "every reply",
                f"{sum(words)} / {len(words)}",
                bool(words) and all(words),
            )
        )
    ratios = [v["ratio"] for v in result["ttfa"].values() if v["ratio"] is not None]
    out.append(
        target(
            "time to first audio, paced / unpaced, every shape",
            "<= 1.02x",
            f"worst {max(ratios, default=0):.3f}x over {len(ratios)} shapes",
            bool(ratios) and max(ratios) <= 1.02,
        )
    )
    return out


# ---------------------------------------------------------------- report
def _fmt(value: float | None, unit: str = "x") -> str:
    return "-" if value is None else f"{value:.2f}{unit}"


def markdown(result: dict[str, Any]) -> str:
    lines = ["# Pacing: what an interrupted reply costs (issue 20)", ""]
    lines += ["| target | goal | result | status |", "|---|---|---|---|"]
    lines += [
        f"| {t['name']} | {t['goal']} | {t['value']} | {t['status']} |" for t in result["targets"]
    ]
    lines += ["", "## Characters billed / characters heard", ""]
    lines += [
        "Mean over the replies of each case (each reply's own ratio in brackets). Realistic "
        "profile. Heard: the reply's characters in proportion to the seconds played by the cut.",
        "",
        "| reply | cut | aclose | heard (chars) | " + " | ".join(ENGINE_NAMES) + " |",
        "|---|---|---|---|" + "---|" * len(ENGINE_NAMES),
    ]
    for case in result.get("billed", []):
        cells = [
            f"**{_fmt(c['billed_per_heard'])}** ({', '.join(_fmt(v, '') for v in c['per_reply'])})"
            for c in case["engines"].values()
        ]
        delay = "at the cut" if case["close_delay_s"] == 0 else f"{case['close_delay_s']:g} s later"
        lines.append(
            f"| {case['length_s']:g} s | {case['cut_s']:g} s | {delay} | {case['heard_chars']:.0f} | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", "## Underrun stall on uninterrupted replies", ""]
    lines += [
        "Per engine: how long the listener waited for audio in each reply, in ms (three 10 s, "
        "three 30 s, three 90 s replies, in order), the player starting 20 ms after the first "
        "frame (a jitter buffer); the same after the first 0.5 s of audio, where pacing could "
        "cause one; whether the server got the reply's words exactly once; failed turns.",
        "",
    ]
    for profile, rows in result["uninterrupted"].items():
        lines += [
            f"**{profile}**",
            "",
            "| engine | stall per reply (ms) | max | after the first 0.5 s, max | words at the server | errors |",
            "|---|---|---|---|---|---|",
        ]
        for name in dict.fromkeys(r["engine"] for r in rows):
            mine = [r for r in rows if r["engine"] == name]
            stalls = ", ".join(f"{r['stall_ms']:.0f}" for r in mine)
            words = sum(bool(r["words_ok"]) for r in mine)
            errors = sum(r["error"] is not None for r in mine)
            lines.append(
                f"| {name} | {stalls} | {max(r['stall_ms'] for r in mine):.0f} | {max(later_stall_ms(r) for r in mine):.0f} | {words} / {len(mine)} | {errors} |"
            )
        lines.append("")
    lines += [
        "## Time to first audio, paced / unpaced",
        "",
        "| reply | ours paced (ms) | ours unpaced (ms) | ratio |",
        "|---|---|---|---|",
    ]
    for v in result["ttfa"].values():
        lines.append(
            f"| {v['label']} | {v['ours paced'].get('median', '-')} | {v['ours unpaced'].get('median', '-')} | {_fmt(v['ratio'], 'x')} |"
        )
    return "\n".join(lines) + "\n"
