"""The run as a markdown report (``latest.md``): targets, then one section a benchmark."""

from __future__ import annotations

from typing import Any

from ..common import BASELINE, FLOOR, OURS, VARIANTS
from .format import NAMES, SHAPES_LABEL, cell, num, ran, table, times


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# Benchmarks: plugin_cartesia_ws vs livekit-plugins-cartesia",
        "",
        f"Mode **{meta['mode']}**, {meta['date']}, {meta['duration_s']:.0f} s. "
        f"Machine: {meta['machine']['cpu']} ({meta['machine']['cores']} cores), "
        f"{meta['machine']['ram_gib']} GiB RAM, Python {meta['python']}, "
        f"livekit-agents {meta['versions'].get('livekit-agents')}, "
        f"livekit-plugins-cartesia {meta['versions'].get('livekit-plugins-cartesia')}, "
        f"plugin_cartesia_ws {meta['versions'].get('plugin_cartesia_ws')}. "
        f"Load average at start: {meta['machine']['load_at_start']}.",
        f"Emulator in its own process: `{' '.join(meta['emulator_args'])}` (its garbage "
        f"collector off; RSS {meta['emulator_rss_mib']['start']} -> "
        f"{meta['emulator_rss_mib'].get('end')} MiB over the run). Times in ms as "
        "median (p5–p95). Method: `benchmarks/README.md`.",
        "",
        "## Targets",
        "",
    ]
    lines += table(
        ("Target", "Goal", "Result", "Status", "Margin"),
        (
            (
                t["name"],
                t["goal"],
                t["value"],
                f"**{t['status']}**",
                "; ".join(x for x in (t["margin"], t.get("note", "")) if x),
            )
            for t in results["targets"]
        ),
    )
    lines += _corpus_md(results.get("corpus", {}))
    lines += _ttfa_md(results.get("ttfa", {}))
    lines += _e2e_md(results.get("e2e", {}))
    lines += _barge_md(results.get("barge_in", {}))
    lines += _scale_md(results.get("scale", {}))
    lines += ["", "## 5. Audio integrity", ""]
    sections = {name: results.get(name, {}) for name in ("ttfa", "e2e", "barge_in", "scale")}
    lines += table(
        ("Benchmark", "Turns checked", "Equal to the emulator's audio"),
        (
            (name, sec["integrity"]["checked"], sec["integrity"]["ok"])
            if ran(sec)
            else (name, f"skipped: {sec.get('skipped', '')}", "–")
            for name, sec in sections.items()
        ),
    )
    return "\n".join(lines) + "\n"


def _skipped(title: str, sec: dict[str, Any]) -> list[str]:
    return ["", f"## {title}", "", f"Skipped: {sec.get('skipped', '')}"]


def _ttfa_md(sec: dict[str, Any]) -> list[str]:
    if not ran(sec):
        return _skipped("1. Time to first audio", sec)
    rows = [(SHAPES_LABEL.get(k, k), sec["shapes"][k]) for k in sec["shapes"]]
    rows.append(("**all shapes**", sec["overall"]))
    out = [
        "",
        f"## 1. Time to first audio, LLM streaming ({sec['turns_per_cell']} turns per cell)",
        "",
    ]
    out += table(
        (
            "Reply",
            "Group",
            "Lower bound",
            *(NAMES[v] for v in VARIANTS),
            "clause / baseline",
            "clause / bound",
        ),
        (
            (
                label,
                s.get("group", ""),
                cell(s["lower_bound"]),
                *(cell(s["engines"][v]) for v in VARIANTS),
                times(s["vs_baseline"].get(OURS)),
                times(s["vs_lower_bound"].get(OURS)),
            )
            for label, s in rows
        ),
    )
    per = sec["per_shape"]
    out += [
        "",
        "Groups: *early* = a sentence or clause end of three or more words comes early; "
        "*long* = a long first sentence; *short* = the first sentence is short and complete "
        "before any deadline with no earlier clause of three words (no policy can help). "
        f"Mean of ours/baseline over early and long shapes: **{times(per['mean_early_or_long'])}**"
        f", worst of them {times(per['worst_early_or_long'])}, worst of all "
        f"{times(per['worst_any'])}.",
    ]
    cold = sec["cold"]
    out += [
        "",
        f"Cold first turn (fresh TTS, no prewarm; reply: {SHAPES_LABEL[cold['shape']]}) "
        "vs the same reply warm:",
        "",
    ]
    out += table(
        ("Engine", "Cold", "Warm"),
        ((NAMES[v], cell(cold["engines"][v]), cell(cold["warm_same_shape"][v])) for v in VARIANTS),
    )
    out += ["", "First text each engine sent (last turn of each reply):", ""]
    for k, s in sec["shapes"].items():
        sent = "; ".join(f"{NAMES[v]}: `{s['first_text_sent'][v]!r}`" for v in VARIANTS)
        out.append(f"- {SHAPES_LABEL.get(k, k)}: {sent}")
    return out


def _corpus_md(sec: dict[str, Any]) -> list[str]:
    if not ran(sec):
        return []
    corpus = sec["corpus"]
    out = [
        "",
        f"## 0. First chunk on {corpus['replies']} real assistant replies ({corpus['source']})",
        "",
        "Simulated clock, no I/O: when the first chunk leaves (ms after the first token), how "
        "many words it has, and why it left.",
        "",
    ]
    bins = ("1-3", "4-6", "7-9", "10-14", "15-24", ">=25")
    out += table(
        (
            "Policy",
            "first chunk ms, median (p5–p95)",
            "mean",
            "words, median",
            "words 1-3 / 4-6 / 7-9 / 10-14 / 15-24 / ≥25",
            "why it left",
        ),
        (
            (
                name,
                cell(p["first_chunk_ms"]),
                num(p["first_chunk_ms"].get("mean")),
                p["first_chunk_words"]["median"],
                " / ".join(str(p["first_chunk_words"]["histogram"].get(b, 0)) for b in bins),
                ", ".join(f"{k} {v}" for k, v in p["reasons"].items()),
            )
            for name, p in sec["policies"].items()
        ),
    )
    forced = next(p["deadline_cuts"] for p in sec["policies"].values() if "deadline_cuts" in p)
    share = forced["percent_of_first_sentence"]
    out += [
        "",
        f"Cuts forced by the deadline: {forced['count']}; they keep {share.get('median')} % of "
        f"the first sentence's words (median; p5 {share.get('p5')} %, p95 {share.get('p95')} %). "
        "Examples (cut at `|`):",
        "",
    ]
    out += [f"- `{example}`" for example in forced["examples"]]
    return out


def _e2e_md(sec: dict[str, Any]) -> list[str]:
    if not ran(sec):
        return _skipped("2. End-to-end turn latency (AgentSession)", sec)
    out = [
        "",
        "## 2. End-to-end turn latency in a headless AgentSession (three-sentence reply)",
        "",
    ]
    out += table(
        ("Engine", "Turns", "e2e_latency", "tts_node_ttfb", "llm_node_ttft"),
        (
            (
                NAMES[v],
                e["turns"],
                cell(e["e2e_latency"]),
                cell(e["tts_node_ttfb"]),
                cell(e["llm_node_ttft"]),
            )
            for v, e in sec["engines"].items()
        ),
    )
    out += [
        "",
        f"Median gain: {num(sec['median_gain_ms'])} ms (ours / baseline {times(sec['ratio'])}).",
    ]
    return out


def _barge_md(sec: dict[str, Any]) -> list[str]:
    if not ran(sec):
        return _skipped("3. Barge-in", sec)
    ours, base = sec["engines"][OURS], sec["engines"][BASELINE]

    def cancel(e: dict[str, Any]) -> str:
        c = e.get("cancel_to_server")
        return e["cancel_note"] if not c else f"{cell(c, 2)}, max {c['max']:.2f}"

    def chunks(e: dict[str, Any]) -> str:
        c = e.get("server_chunks_after_cancel")
        return (
            "n/a (no cancel sent)"
            if not c
            else f"{c['total']} (≤ {c['per_turn_max']} per turn), all dropped"
        )

    def frames(e: dict[str, Any]) -> str:
        return f"{e['frames_after_aclose']} / {e['bytes_after_aclose']}"

    rows = [
        ("cancel frame at the server, after aclose()", cancel),
        ("frames / bytes yielded after aclose()", frames),
        ("emulator chunks sent after the cancel (in-flight input finishes)", chunks),
        (
            f"sockets opened over {ours['turns']} interrupted turns",
            lambda e: str(e["sockets_opened"]),
        ),
        (
            "TTFA of the turn after an interruption",
            lambda e: cell(e["ttfa_after_interruption"]),
        ),
        (
            "TTFA of the first turn (after a completed one)",
            lambda e: cell(e["ttfa_first_turn"]),
        ),
        ("aclose() duration", lambda e: cell(e["aclose_duration"], 2)),
    ]
    out = ["", f"## 3. Barge-in ({ours['turns']} consecutive interrupted turns)", ""]
    out += table(("", "ours (clause)", "baseline"), ((a, f(ours), f(base)) for a, f in rows))
    return out


def _scale_md(sec: dict[str, Any]) -> list[str]:
    if not ran(sec):
        return _skipped("4. Overhead and scale", sec)
    out = ["", "## 4. Overhead and scale (concurrent streams on one TTS instance)", ""]
    levels = [
        (v, sec["levels"][v][i])
        for i in range(len(sec["levels"][OURS]))
        for v in (OURS, BASELINE, FLOOR)
    ]
    out += table(
        (
            "Streams",
            "Engine",
            "TTFA p50",
            "TTFA p95",
            "Client CPU per audio second",
            "Client CPU",
            "Emulator CPU",
            "Sockets",
            "GC runs (gen 2), max pause",
        ),
        (
            (
                lv["streams"],
                NAMES[v],
                num(None if v == FLOOR else lv["ttfa"].get("median")),
                num(None if v == FLOOR else lv["ttfa"].get("p95")),
                f"{lv['client_cpu_per_audio_s'] * 100:.2f} %",
                f"{lv['client_cpu_share'] * 100:.0f} %",
                f"{lv['emulator_cpu_share'] * 100:.0f} %",
                lv["sockets_opened"],
                f"{lv['gc']['collections'][2]}, {lv['gc']['max_pause_ms']:.0f} ms",
            )
            for v, lv in levels
        ),
    )
    out.append("")
    out += table(
        ("Memory", "Open streams", "Python memory per open stream (tracemalloc)", "Sockets"),
        (
            (NAMES[v], m["streams"], f"{m['traced_kib_per_stream']} KiB", m["sockets_opened"])
            for v, m in sec["memory"].items()
        ),
    )
    out += [
        "",
        "RSS growth per stream is in `latest.json`; it is ~0 because the allocator reuses memory "
        "freed by the earlier levels.",
    ]
    out += [
        "",
        "The floor (`benchmarks/floor.py`) is no product: it waits for the whole reply, sends "
        "it in one frame and only parses, decodes and hands audio to LiveKit, so its TTFA "
        "means nothing. Its CPU is what LiveKit's stream API, aiohttp, JSON, base64 and this "
        "harness cost: a plugin with the same features (word timestamps) cannot spend less.",
    ]
    return out
