"""The run as PNG figures (matplotlib, Agg): TTFA per reply shape, e2e, barge-in, scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..common import BASELINE, FLOOR, OURS, VARIANTS
from .format import NAMES, SHAPES_LABEL, ran, times


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
        FLOOR: "#7f7f7f",
    }

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        written.append(name)

    ttfa = results.get("ttfa", {})
    if ran(ttfa):
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
            ax.annotate(times(r), (i, top + 15), ha="center", fontsize=7)
        ax.set_ylabel("time to first audio (ms)")
        ax.set_title("TTFA while the LLM streams (median, p5–p95; ours (clause) / baseline above)")
        ax.legend(fontsize=8)
        save(fig, "ttfa.png")

    e2e = results.get("e2e", {})
    if ran(e2e):
        fig, ax = plt.subplots(figsize=(6, 4))
        _boxes(
            ax,
            {v: e["raw_ms"] for v, e in e2e["engines"].items()},
            "e2e_latency (ms)",
            "AgentSession end-to-end latency, three-sentence reply",
        )
        save(fig, "e2e.png")

    barge = results.get("barge_in", {})
    if ran(barge):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        raw = barge["engines"][OURS]["cancel_to_server_raw_ms"]
        a1.hist(raw, bins=20, color=colors[OURS])
        a1.set_xlabel("aclose() -> cancel at the server (ms)")
        a1.set_title("ours: cancel on the wire (baseline sends none)")
        _boxes(
            a2,
            {v: barge["engines"][v]["ttfa_after_interruption_raw_ms"] for v in (OURS, BASELINE)},
            "TTFA (ms)",
            "TTFA of the turn after an interruption",
        )
        save(fig, "barge_in.png")

    scale = results.get("scale", {})
    if ran(scale):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        for v in (OURS, BASELINE, FLOOR):
            lv = scale["levels"][v]
            ns = [x["streams"] for x in lv]
            cpu = (a2, [x["client_cpu_per_audio_s"] * 100 for x in lv], "o-", NAMES[v])
            ttfa = (
                (a1, [x["ttfa"].get("median") for x in lv], "o-", f"{NAMES[v]} p50"),
                (a1, [x["ttfa"].get("p95") for x in lv], "s--", f"{NAMES[v]} p95"),
            )
            series = (cpu,) if v == FLOOR else (*ttfa, cpu)  # the floor's TTFA means nothing
            for ax, ys, style, label in series:
                ax.plot(ns, ys, style, color=colors[v], label=label)
        for ax in (a1, a2):
            ax.set_xscale("log")
            ax.set_xlabel("concurrent streams")
            ax.legend(fontsize=8)
        a1.set_ylabel("TTFA (ms)")
        a1.set_ylim(bottom=0)
        a2.set_ylim(bottom=0)
        a2.set_ylabel("client CPU per second of audio (% of a core)")
        a2.axhline(2.0, color="grey", linestyle=":")
        save(fig, "scale.png")
    return written


def _boxes(ax: Any, samples: dict[str, list[float]], ylabel: str, title: str) -> None:
    """One box per engine, whiskers at p5 and p95 (the report's spread everywhere)."""
    ax.boxplot(list(samples.values()), tick_labels=[NAMES[v] for v in samples], whis=(5, 95))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
