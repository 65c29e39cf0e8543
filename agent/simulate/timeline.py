"""Per-turn timing of a simulated conversation: the latency table and the timeline plot.

A ``Turn`` holds wall-clock times (``time.time()``) of what happened in one exchange, from
the user's first voiced sample to the end of the agent's audio, plus the latency metrics
LiveKit attached to the two ``ChatMessage``s. ``agent.simulate`` fills them in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Turn:
    index: int
    # the user's side
    source: str = ""  # "eSpeak" or a WAV path; "" for a turn the agent started
    said: str | None = None  # text given to eSpeak, when known
    heard: str = ""  # the user message in the history (the STT's transcript)
    barge_in: bool = False  # spoken over the previous reply
    speech_start: float | None = None  # first / last voiced sample of the user audio
    speech_end: float | None = None
    vad_end_at: float | None = None  # Silero END_OF_SPEECH (user state -> listening)
    stt_final_at: float | None = None  # final transcript
    # the agent's side
    reply: str = ""  # the assistant message in the history: what was heard
    interrupted: bool = False
    llm_start_at: float | None = None
    llm_first_token_at: float | None = None
    llm_end_at: float | None = None
    tts_first_text_at: float | None = None  # first text on the Cartesia socket
    tts_first_audio_at: float | None = None  # first audio back
    tts_time_to_first_audio: float | None = None  # TurnStats.time_to_first_audio
    context_id: str | None = None
    playback_start: float | None = None
    played_s: float = 0.0
    received_s: float = 0.0
    # LiveKit's ChatMessage.metrics
    user_metrics: dict[str, Any] = field(default_factory=dict)
    agent_metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def playback_end(self) -> float | None:
        return None if self.playback_start is None else self.playback_start + self.played_s

    @property
    def vad_delay(self) -> float | None:
        """Last voiced sample -> VAD end of speech (includes Silero's silence window)."""
        return _diff(self.vad_end_at, self.speech_end)

    @property
    def heard_after(self) -> float | None:
        """Last voiced sample of the user -> first agent audio played: what the user waits."""
        return _diff(self.playback_start, self.speech_end)

    def latencies(self) -> dict[str, float | None]:
        u, a = self.user_metrics, self.agent_metrics
        return {
            "vad_end_of_speech": self.vad_delay,
            "transcription_delay": u.get("transcription_delay"),
            "stt_after_vad": _diff(self.stt_final_at, self.vad_end_at),
            "end_of_turn_delay": u.get("end_of_turn_delay"),
            "llm_node_ttft": a.get("llm_node_ttft"),
            "tts_node_ttfb": a.get("tts_node_ttfb"),
            "tts_time_to_first_audio": self.tts_time_to_first_audio,
            "e2e_latency": a.get("e2e_latency"),
            "user_end_to_agent_audio": self.heard_after,
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["latencies"] = self.latencies()
        return d


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


# ---------------------------------------------------------------------- table
COLUMNS = (
    ("VAD end", "vad_end_of_speech"),
    ("STT", "transcription_delay"),
    ("(after VAD)", "stt_after_vad"),
    ("end of turn", "end_of_turn_delay"),
    ("LLM 1st token", "llm_node_ttft"),
    ("TTS 1st audio", "tts_node_ttfb"),
    ("(socket)", "tts_time_to_first_audio"),
    ("e2e", "e2e_latency"),
    ("user waits", "user_end_to_agent_audio"),
)

LEGEND = """\
  VAD end        last voiced user sample -> Silero decides END_OF_SPEECH (mostly its 0.55 s
                 silence window)
  STT            transcription_delay: end of speech (where the VAD places it) -> final
                 transcript; (after VAD): from the VAD's decision, i.e. the STT call itself
  end of turn    end_of_turn_delay: end of speech -> the turn goes to the LLM
  LLM 1st token  llm_node_ttft: LLM request -> first token
  TTS 1st audio  tts_node_ttfb: first text into the TTS -> first audio out of it; (socket):
                 TurnStats.time_to_first_audio, first text sent -> first audio received
  e2e            e2e_latency: end of speech (VAD) -> the agent's audio starts playing
  user waits     last voiced user sample -> the agent's audio starts playing"""


def _ms(value: Any) -> str:
    if not isinstance(value, int | float) or math.isnan(value):
        return "-"
    return f"{value * 1000:.0f} ms"


def latency_table(turns: Sequence[Turn]) -> str:
    header = ["turn", *(name for name, _ in COLUMNS)]
    rows = []
    for t in turns:
        lat = t.latencies()
        label = f"{t.index}" + (" (barge-in)" if t.barge_in else "")
        label += " *" if t.interrupted else ""
        rows.append([label, *(_ms(lat[key]) for _, key in COLUMNS)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    if any(t.interrupted for t in turns):
        lines.append("* reply interrupted by the user")
    return "\n".join(lines)


# ---------------------------------------------------------------------- plot
LANES = ("user speech", "VAD", "STT", "LLM", "TTS", "agent playback")
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf")


def plot_timeline(turns: Sequence[Turn], path: str | Path, *, title: str = "") -> Path:
    """Horizontal bars and markers per turn on one time axis (seconds from the first user
    sound). Needs matplotlib; uses the Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [
        v
        for t in turns
        for v in (t.speech_start, t.playback_start, t.llm_start_at, t.vad_end_at)
        if v is not None
    ]
    t0 = min(times) if times else 0.0
    end = max(
        [v for t in turns for v in (t.speech_end, t.playback_end, t.llm_end_at) if v is not None]
        + [t0 + 1.0]
    )

    def x(v: float) -> float:
        return v - t0

    lane_y = {name: len(LANES) - 1 - i for i, name in enumerate(LANES)}
    fig, ax = plt.subplots(figsize=(12, 4.8), dpi=110)
    h = 0.55

    def bar(lane: str, start: float | None, stop: float | None, color: str, **kw: Any) -> None:
        if start is None or stop is None or stop <= start:
            return
        ax.broken_barh(
            [(x(start), stop - start)], (lane_y[lane] - h / 2, h), facecolors=color, **kw
        )

    def marker(lane: str, at: float | None, color: str, label: str = "", sym: str = "v") -> None:
        if at is None:
            return
        ax.plot([x(at)], [lane_y[lane]], marker=sym, color=color, markersize=9, zorder=5)
        if label:
            ax.annotate(
                label,
                (x(at), lane_y[lane] + h / 2),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=7,
            )

    for t in turns:
        c = _COLORS[(t.index - 1) % len(_COLORS)]
        bar("user speech", t.speech_start, t.speech_end, c, alpha=0.85)
        if t.speech_start is not None:
            ax.annotate(
                f"user {t.index}" + (" (barge-in)" if t.barge_in else ""),
                (x(t.speech_start), lane_y["user speech"] - h / 2 - 0.05),
                fontsize=7,
                va="top",
            )
        # silence the VAD waits for, then its decision
        bar("VAD", t.speech_end, t.vad_end_at, c, alpha=0.25)
        marker("VAD", t.vad_end_at, c, _label(t.vad_delay))
        bar("STT", t.vad_end_at, t.stt_final_at, c, alpha=0.25)
        marker("STT", t.stt_final_at, c, _label(_diff(t.stt_final_at, t.vad_end_at)), sym="D")
        bar("LLM", t.llm_start_at, t.llm_end_at, c, alpha=0.25)
        marker(
            "LLM", t.llm_first_token_at, c, _label(t.agent_metrics.get("llm_node_ttft")), sym="o"
        )
        bar("TTS", t.tts_first_text_at, t.tts_first_audio_at, c, alpha=0.25)
        marker(
            "TTS", t.tts_first_audio_at, c, _label(t.agent_metrics.get("tts_node_ttfb")), sym="s"
        )
        if t.playback_start is not None:
            bar("agent playback", t.playback_start, t.playback_end, c, alpha=0.85)
            if t.interrupted and t.received_s > t.played_s and t.playback_end is not None:
                # synthesized but never heard: cancelled by the barge-in
                bar(
                    "agent playback",
                    t.playback_end,
                    t.playback_start + t.received_s,
                    "none",
                    edgecolor="red",
                    hatch="///",
                    linewidth=0.8,
                )
                marker("agent playback", t.playback_end, "red", "barge-in: cut", sym="X")
                ax.annotate(
                    "arrived, never played",
                    (x(t.playback_end) + 0.1, lane_y["agent playback"] - h / 2 - 0.05),
                    fontsize=7,
                    va="top",
                    color="red",
                )
            e2e = t.heard_after
            if e2e is not None and t.speech_end is not None:
                y = lane_y["agent playback"] + h / 2 + 0.12
                ax.annotate(
                    "",
                    xy=(x(t.playback_start), y),
                    xytext=(x(t.speech_end), y),
                    arrowprops={"arrowstyle": "<->", "color": c, "lw": 1},
                )
                ax.annotate(
                    f"user waits {e2e * 1000:.0f} ms",
                    ((x(t.speech_end) + x(t.playback_start)) / 2, y + 0.05),
                    ha="center",
                    fontsize=7,
                    color=c,
                )

    ax.set_yticks([lane_y[n] for n in LANES], list(LANES))
    ax.set_ylim(-0.7, len(LANES) - 0.3)
    ax.set_xlim(-0.2, x(end) + 0.3)
    ax.set_xlabel("seconds since the user started speaking")
    ax.grid(axis="x", linestyle=":", alpha=0.6)
    ax.set_title(title or "voice turns: user speech -> VAD -> STT -> LLM -> TTS -> playback")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def _label(value: Any) -> str:
    return "" if not isinstance(value, int | float) else f"{value * 1000:.0f} ms"
