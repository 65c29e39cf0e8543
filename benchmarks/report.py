"""Turns the results dict into targets (PASS/MISS), a markdown report and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import BASELINE, OURS, SHAPES, VARIANTS, target

CPU_STREAMS = 8  # issue 12: client CPU per audio second compared at 8 concurrent streams

NAMES = {
    "ours-clause": "ours (clause)",
    "ours-sentence": "ours (sentence)",
    "ours-tokens": "ours (tokens)",
    BASELINE: "baseline",
}


# ---------------------------------------------------------------- formatting
def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def cell(summary: dict[str, Any] | None, digits: int = 0) -> str:
    """median (p5–p95) in ms."""
    if not summary or not summary.get("n"):
        return "–"
    med, lo, hi = summary["median"], summary["p5"], summary["p95"]
    return f"{_num(med, digits)} ({_num(lo, digits)}–{_num(hi, digits)})"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def _ran(section: Any) -> bool:
    return isinstance(section, dict) and "skipped" not in section


# ---------------------------------------------------------------- targets
def _ratio_target(name: str, value: float | None, limit: float, what: str) -> dict[str, Any]:
    if value is None:
        return target(name, f"≤ {limit:.2f}x", "–", None, note="not measured")
    diff = value - limit
    margin = f"{abs(diff):.2f}x {'under' if diff <= 0 else 'over'} the limit"
    return target(name, f"≤ {limit:.2f}x {what}", f"{value:.2f}x", value <= limit, margin)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    ttfa = results.get("ttfa", {})
    if _ran(ttfa):
        overall = ttfa["overall"]
        per = ttfa["per_shape"]
        worst_shape = max(per["ratios"], key=lambda k: per["ratios"][k] or 0.0)
        item = _ratio_target(
            "TTFA ours (clause) / baseline, worst shape (every shape)",
            per["worst_any"],
            1.05,
            "baseline",
        )
        item["note"] = f"worst: {SHAPES_LABEL.get(worst_shape, worst_shape)}"
        out.append(item)
        out.append(
            _ratio_target(
                "TTFA ours / baseline, worst shape with an early boundary or a long first sentence",
                per["worst_early_or_long"],
                0.85,
                "baseline",
            )
        )
        out.append(
            _ratio_target(
                "TTFA ours / baseline, mean of the per-shape ratios over those shapes",
                per["mean_early_or_long"],
                0.70,
                "baseline",
            )
        )
        out.append(
            _ratio_target(
                "TTFA, ours (clause) vs lower bound (first clause + 90 ms)",
                overall["vs_lower_bound"].get(OURS),
                1.2,
                "lower bound",
            )
        )
    e2e = results.get("e2e", {})
    if _ran(e2e):
        gain = e2e.get("median_gain_ms")
        out.append(
            target(
                "e2e_latency in AgentSession, three-sentence reply: baseline - ours (median)",
                "≥ 150 ms",
                f"{_num(gain)} ms",
                None if gain is None else gain >= 150,
                ""
                if gain is None
                else f"{abs(gain - 150):.0f} ms {'above' if gain >= 150 else 'short of'} 150 ms",
            )
        )
    else:
        out.append(
            target(
                "e2e_latency, three-sentence reply",
                "≥ 150 ms",
                "–",
                None,
                note=str(e2e.get("skipped", "")),
            )
        )
    barge = results.get("barge_in", {})
    if _ran(barge):
        ours = barge["engines"][OURS]
        base = barge["engines"][BASELINE]
        cancel = ours.get("cancel_to_server") or {}
        worst = cancel.get("max")
        out.append(
            target(
                "cancel frame reaches the server after aclose() (ours, worst turn)",
                "< 10 ms",
                f"p50 {_num(cancel.get('median'), 1)} ms, max {_num(worst, 1)} ms"
                + f" ({ours['cancels_received']}/{ours['turns']} received)",
                None if worst is None else worst < 10 and ours["cancels_received"] == ours["turns"],
                ""
                if worst is None
                else f"{10 - worst:.1f} ms to spare"
                if worst < 10
                else f"{worst - 10:.1f} ms over",
                note=f"baseline: {base['cancel_note'] or 'sent'}",
            )
        )
        out.append(
            target(
                "audio bytes yielded after aclose() (ours / baseline)",
                "0",
                f"{ours['bytes_after_aclose']} / {base['bytes_after_aclose']}",
                ours["bytes_after_aclose"] == 0,
                note=f"baseline: {base['bytes_after_aclose']} B",
            )
        )
        out.append(
            target(
                f"sockets opened over {ours['turns']} interrupted turns (ours / baseline)",
                "1",
                f"{ours['sockets_opened']} / {base['sockets_opened']}",
                ours["sockets_opened"] == 1,
            )
        )
    scale = results.get("scale", {})
    if _ran(scale):
        levels = scale["levels"][OURS]
        worst = max((lv["client_cpu_per_audio_s"] or 0.0) for lv in levels)
        out.append(
            target(
                "client CPU per real-time stream (ours, worst level)",
                "< 2 % of one core",
                f"{worst * 100:.2f} %",
                worst < 0.02,
                f"{abs(2 - worst * 100):.2f} points {'under' if worst < 0.02 else 'over'}",
                note="whole client process (plugin + LiveKit's AudioEmitter + harness)",
            )
        )
        base_levels = {lv["streams"]: lv for lv in scale["levels"][BASELINE]}
        at8 = next((lv for lv in levels if lv["streams"] == CPU_STREAMS), None)
        cpu_ratio = None
        if at8 is not None and base_levels.get(CPU_STREAMS):
            ours_cpu = at8["client_cpu_per_audio_s"]
            base_cpu = base_levels[CPU_STREAMS]["client_cpu_per_audio_s"]
            cpu_ratio = ours_cpu / base_cpu if ours_cpu and base_cpu else None
        item = _ratio_target(
            f"client CPU per second of audio at {CPU_STREAMS} streams, ours / baseline",
            cpu_ratio,
            0.8,
            "baseline",
        )
        if at8 is not None and cpu_ratio is not None:
            item["note"] = (
                f"{at8['client_cpu_per_audio_s'] * 100:.3f} % vs "
                f"{base_levels[CPU_STREAMS]['client_cpu_per_audio_s'] * 100:.3f} % of a core"
            )
        out.append(item)
        memory = scale.get("memory", {})
        if OURS in memory and BASELINE in memory:
            ours_mem = memory[OURS]["traced_kib_per_stream"]
            base_mem = memory[BASELINE]["traced_kib_per_stream"]
            out.append(
                target(
                    "Python memory per open stream (tracemalloc), ours vs baseline",
                    "below the baseline",
                    f"{ours_mem} vs {base_mem} KiB",
                    ours_mem < base_mem,
                    f"{abs(base_mem - ours_mem):.1f} KiB {'under' if ours_mem < base_mem else 'over'}",
                )
            )
        first, last = levels[0], levels[-1]
        p95_ratio = None
        if first["ttfa"].get("p95") and last["ttfa"].get("p95"):
            p95_ratio = last["ttfa"]["p95"] / first["ttfa"]["p95"]
        item = _ratio_target(
            f"TTFA p95 at {last['streams']} streams vs {first['streams']} (ours)",
            p95_ratio,
            1.5,
            f"{first['streams']} stream",
        )
        if last["streams"] != 100:
            item["note"] = "fewer levels in this run (the target is about 100 streams)"
        if last.get("emulator_busy"):
            item["note"] += " emulator process above 80 % of a core: it may be the bottleneck"
        out.append(item)
    sections = [s for s in ("ttfa", "e2e", "barge_in", "scale") if _ran(results.get(s))]
    checked = sum(results[s]["integrity"]["checked"] for s in sections)
    ok = sum(results[s]["integrity"]["ok"] for s in sections)
    out.append(
        target(
            "audio integrity: each turn's audio equals what the emulator sent",
            "all turns",
            f"{ok}/{checked} turns",
            checked > 0 and ok == checked,
        )
    )
    return out


# ---------------------------------------------------------------- markdown
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
        "| Target | Goal | Result | Status | Margin |",
        "|---|---|---|---|---|",
    ]
    for t in results["targets"]:
        margin = "; ".join(x for x in (t["margin"], t.get("note", "")) if x)
        lines.append(f"| {t['name']} | {t['goal']} | {t['value']} | **{t['status']}** | {margin} |")
    lines += _corpus_md(results.get("corpus", {}))
    lines += _ttfa_md(results.get("ttfa", {}))
    lines += _e2e_md(results.get("e2e", {}))
    lines += _barge_md(results.get("barge_in", {}))
    lines += _scale_md(results.get("scale", {}))
    lines += [
        "",
        "## 5. Audio integrity",
        "",
        "| Benchmark | Turns checked | Equal to the emulator's audio |",
        "|---|---|---|",
    ]
    for name in ("ttfa", "e2e", "barge_in", "scale"):
        sec = results.get(name, {})
        if _ran(sec):
            integ = sec["integrity"]
            lines.append(f"| {name} | {integ['checked']} | {integ['ok']} |")
        else:
            lines.append(f"| {name} | skipped: {sec.get('skipped', '')} | – |")
    return "\n".join(lines) + "\n"


def _ttfa_md(sec: dict[str, Any]) -> list[str]:
    if not _ran(sec):
        return ["", "## 1. Time to first audio", "", f"Skipped: {sec.get('skipped', '')}"]
    head = "| Reply | Lower bound | " + " | ".join(NAMES[v] for v in VARIANTS)
    head = head.replace("| Reply |", "| Reply | Group |")
    head += " | clause / baseline | clause / bound |"
    out = [
        "",
        f"## 1. Time to first audio, LLM streaming ({sec['turns_per_cell']} turns per cell)",
        "",
        head,
        "|" + "---|" * (len(VARIANTS) + 5),
    ]
    rows = [(SHAPES_LABEL.get(k, k), sec["shapes"][k]) for k in sec["shapes"]]
    rows.append(("**all shapes**", sec["overall"]))
    for label, s in rows:
        out.append(
            f"| {label} | {s.get('group', '')} | {cell(s['lower_bound'])} | "
            + " | ".join(cell(s["engines"][v]) for v in VARIANTS)
            + f" | {_x(s['vs_baseline'].get(OURS))} | {_x(s['vs_lower_bound'].get(OURS))} |"
        )
    per = sec["per_shape"]
    out += [
        "",
        "Groups: *early* = a sentence or clause end of three or more words comes early; "
        "*long* = a long first sentence; *short* = the first sentence is short and complete "
        "before any deadline with no earlier clause of three words (no policy can help). "
        f"Mean of ours/baseline over early and long shapes: **{_x(per['mean_early_or_long'])}**"
        f", worst of them {_x(per['worst_early_or_long'])}, worst of all {_x(per['worst_any'])}.",
    ]
    cold = sec["cold"]
    out += [
        "",
        f"Cold first turn (fresh TTS, no prewarm; reply: {SHAPES_LABEL[cold['shape']]}) "
        "vs the same reply warm:",
        "",
        "| Engine | Cold | Warm |",
        "|---|---|---|",
    ]
    out += [
        f"| {NAMES[v]} | {cell(cold['engines'][v])} | {cell(cold['warm_same_shape'][v])} |"
        for v in VARIANTS
    ]
    out += ["", "First text each engine sent (last turn of each reply):", ""]
    for k, s in sec["shapes"].items():
        sent = "; ".join(f"{NAMES[v]}: `{s['first_text_sent'][v]!r}`" for v in VARIANTS)
        out.append(f"- {SHAPES_LABEL.get(k, k)}: {sent}")
    return out


SHAPES_LABEL = {s.name: s.label for s in SHAPES}


def _corpus_md(sec: dict[str, Any]) -> list[str]:
    if not _ran(sec):
        return []
    corpus = sec["corpus"]
    out = [
        "",
        f"## 0. First chunk on {corpus['replies']} real assistant replies ({corpus['source']})",
        "",
        "Simulated clock, no I/O: when the first chunk leaves (ms after the first token), how "
        "many words it has, and why it left.",
        "",
        "| Policy | first chunk ms, median (p5–p95) | mean | words, median | words 1-3 / 4-6 / "
        "7-9 / 10-14 / 15-24 / ≥25 | why it left |",
        "|---|---|---|---|---|---|",
    ]
    bins = ("1-3", "4-6", "7-9", "10-14", "15-24", ">=25")
    for name, p in sec["policies"].items():
        hist = p["first_chunk_words"]["histogram"]
        why = ", ".join(f"{k} {v}" for k, v in p["reasons"].items())
        out.append(
            f"| {name} | {cell(p['first_chunk_ms'])} | {_num(p['first_chunk_ms'].get('mean'))} "
            f"| {p['first_chunk_words']['median']} | "
            + " / ".join(str(hist.get(b, 0)) for b in bins)
            + f" | {why} |"
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
    if not _ran(sec):
        return [
            "",
            "## 2. End-to-end turn latency (AgentSession)",
            "",
            f"Skipped: {sec.get('skipped', '')}",
        ]
    out = [
        "",
        "## 2. End-to-end turn latency in a headless AgentSession (three-sentence reply)",
        "",
        "| Engine | Turns | e2e_latency | tts_node_ttfb | llm_node_ttft |",
        "|---|---|---|---|---|",
    ]
    for v, e in sec["engines"].items():
        out.append(
            f"| {NAMES[v]} | {e['turns']} | {cell(e['e2e_latency'])} | {cell(e['tts_node_ttfb'])} "
            f"| {cell(e['llm_node_ttft'])} |"
        )
    out += [
        "",
        f"Median gain: {_num(sec['median_gain_ms'])} ms (ours / baseline {_x(sec['ratio'])}).",
    ]
    return out


def _barge_md(sec: dict[str, Any]) -> list[str]:
    if not _ran(sec):
        return ["", "## 3. Barge-in", "", f"Skipped: {sec.get('skipped', '')}"]
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

    rows = [
        ("cancel frame at the server, after aclose()", cancel(ours), cancel(base)),
        (
            "frames / bytes yielded after aclose()",
            f"{ours['frames_after_aclose']} / {ours['bytes_after_aclose']}",
            f"{base['frames_after_aclose']} / {base['bytes_after_aclose']}",
        ),
        (
            "emulator chunks sent after the cancel (in-flight input finishes)",
            chunks(ours),
            chunks(base),
        ),
        (
            f"sockets opened over {ours['turns']} interrupted turns",
            str(ours["sockets_opened"]),
            str(base["sockets_opened"]),
        ),
        (
            "TTFA of the turn after an interruption",
            cell(ours["ttfa_after_interruption"]),
            cell(base["ttfa_after_interruption"]),
        ),
        (
            "TTFA of the first turn (after a completed one)",
            cell(ours["ttfa_first_turn"]),
            cell(base["ttfa_first_turn"]),
        ),
        ("aclose() duration", cell(ours["aclose_duration"], 2), cell(base["aclose_duration"], 2)),
    ]
    out = [
        "",
        f"## 3. Barge-in ({ours['turns']} consecutive interrupted turns)",
        "",
        "| | ours (clause) | baseline |",
        "|---|---|---|",
    ]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return out


def _scale_md(sec: dict[str, Any]) -> list[str]:
    if not _ran(sec):
        return ["", "## 4. Overhead and scale", "", f"Skipped: {sec.get('skipped', '')}"]
    out = [
        "",
        "## 4. Overhead and scale (concurrent streams on one TTS instance)",
        "",
        "| Streams | Engine | TTFA p50 | TTFA p95 | Client CPU per audio second | Client CPU | Emulator CPU | Sockets | GC runs (gen 2), max pause |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i in range(len(sec["levels"][OURS])):
        for v in (OURS, BASELINE):
            lv = sec["levels"][v][i]
            out.append(
                f"| {lv['streams']} | {NAMES[v]} | {_num(lv['ttfa'].get('median'))} | {_num(lv['ttfa'].get('p95'))} "
                f"| {lv['client_cpu_per_audio_s'] * 100:.2f} % | {lv['client_cpu_share'] * 100:.0f} % "
                f"| {lv['emulator_cpu_share'] * 100:.0f} % | {lv['sockets_opened']} "
                f"| {lv['gc']['collections'][2]}, {lv['gc']['max_pause_ms']:.0f} ms |"
            )
    out += [
        "",
        "| Memory | Open streams | Python memory per open stream (tracemalloc) | Sockets |",
        "|---|---|---|---|",
    ]
    for v, m in sec["memory"].items():
        out.append(
            f"| {NAMES[v]} | {m['streams']} | {m['traced_kib_per_stream']} KiB "
            f"| {m['sockets_opened']} |"
        )
    out += [
        "",
        "RSS growth per stream is in `latest.json`; it is ~0 because the allocator reuses memory "
        "freed by the earlier levels.",
    ]
    return out


# ---------------------------------------------------------------- plots
def plots(results: dict[str, Any], out_dir: Path) -> list[str]:
    """PNG figures (matplotlib, Agg). Returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[str] = []
    colors = {
        "ours-clause": "#1f77b4",
        "ours-sentence": "#7fb3de",
        "ours-tokens": "#9467bd",
        BASELINE: "#d62728",
    }

    ttfa = results.get("ttfa", {})
    if _ran(ttfa):
        fig, ax = plt.subplots(figsize=(14, 5.8))
        names = list(ttfa["shapes"])
        width = 0.2
        for j, v in enumerate(VARIANTS):
            meds = [ttfa["shapes"][k]["engines"][v].get("median", 0) for k in names]
            lo = [
                m - ttfa["shapes"][k]["engines"][v].get("p5", m)
                for k, m in zip(names, meds, strict=True)
            ]
            hi = [
                ttfa["shapes"][k]["engines"][v].get("p95", m) - m
                for k, m in zip(names, meds, strict=True)
            ]
            xs = [i + (j - 1.5) * width for i in range(len(names))]
            ax.bar(xs, meds, width, yerr=[lo, hi], label=NAMES[v], color=colors[v], capsize=2)
        bounds = [ttfa["shapes"][k]["lower_bound"].get("median", 0) for k in names]
        ax.scatter(
            range(len(names)),
            bounds,
            marker="_",
            s=900,
            color="black",
            zorder=5,
            label="lower bound",
        )
        ax.set_xticks(
            range(len(names)),
            [SHAPES_LABEL.get(k, k) for k in names],
            rotation=30,
            ha="right",
            fontsize=8,
        )
        for i, k in enumerate(names):  # every shape's ratio, not only a median
            r = ttfa["shapes"][k]["vs_baseline"].get(OURS)
            top = ttfa["shapes"][k]["engines"][BASELINE].get("p95", 0)
            ax.annotate(_x(r), (i, top + 15), ha="center", fontsize=7)
        ax.set_ylabel("time to first audio (ms)")
        ax.set_title("TTFA while the LLM streams (median, p5–p95; ours (clause) / baseline above)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "ttfa.png", dpi=110)
        plt.close(fig)
        written.append("ttfa.png")

    e2e = results.get("e2e", {})
    if _ran(e2e):
        fig, ax = plt.subplots(figsize=(6, 4))
        data = [e2e["engines"][v]["raw_ms"] for v in e2e["engines"]]
        ax.boxplot(data, tick_labels=[NAMES[v] for v in e2e["engines"]], whis=(5, 95))
        ax.set_ylabel("e2e_latency (ms)")
        ax.set_title("AgentSession end-to-end latency, three-sentence reply")
        fig.tight_layout()
        fig.savefig(out_dir / "e2e.png", dpi=110)
        plt.close(fig)
        written.append("e2e.png")

    barge = results.get("barge_in", {})
    if _ran(barge):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        raw = barge["engines"][OURS]["cancel_to_server_raw_ms"]
        a1.hist(raw, bins=20, color=colors[OURS])
        a1.set_xlabel("aclose() -> cancel at the server (ms)")
        a1.set_title("ours: cancel on the wire (baseline sends none)")
        data = [barge["engines"][v]["ttfa_after_interruption_raw_ms"] for v in (OURS, BASELINE)]
        a2.boxplot(data, tick_labels=[NAMES[OURS], NAMES[BASELINE]], whis=(5, 95))
        a2.set_ylabel("TTFA (ms)")
        a2.set_title("TTFA of the turn after an interruption")
        fig.tight_layout()
        fig.savefig(out_dir / "barge_in.png", dpi=110)
        plt.close(fig)
        written.append("barge_in.png")

    scale = results.get("scale", {})
    if _ran(scale):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        for v in (OURS, BASELINE):
            lv = scale["levels"][v]
            ns = [x["streams"] for x in lv]
            a1.plot(
                ns,
                [x["ttfa"].get("median") for x in lv],
                "o-",
                color=colors[v],
                label=f"{NAMES[v]} p50",
            )
            a1.plot(
                ns,
                [x["ttfa"].get("p95") for x in lv],
                "s--",
                color=colors[v],
                label=f"{NAMES[v]} p95",
            )
            a2.plot(
                ns,
                [x["client_cpu_per_audio_s"] * 100 for x in lv],
                "o-",
                color=colors[v],
                label=NAMES[v],
            )
        for ax in (a1, a2):
            ax.set_xscale("log")
            ax.set_xlabel("concurrent streams")
            ax.legend(fontsize=8)
        a1.set_ylabel("TTFA (ms)")
        a1.set_ylim(bottom=0)
        a2.set_ylim(bottom=0)
        a2.set_ylabel("client CPU per second of audio (% of a core)")
        a2.axhline(2.0, color="grey", linestyle=":")
        fig.tight_layout()
        fig.savefig(out_dir / "scale.png", dpi=110)
        plt.close(fig)
        written.append("scale.png")
    return written
