"""What a simulation reports: the turns on the console, the barge-in check, and the files
(reply.wav, conversation.wav, timeline.png, conversation.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..dev.audio_io import write_wav
from .components import Components
from .session import Simulation
from .speech import USER_RATE
from .timeline import Turn, plot_timeline


def heard_audio(sim: Simulation, gap: float = 0.4) -> tuple[np.ndarray, int]:
    """The agent's audio as the listener heard it, replies in order with `gap` s of
    silence between them."""
    pieces: list[np.ndarray] = []
    rate = sim.session.tts.sample_rate if sim.session.tts is not None else 24000
    for seg in sim.speaker.segments:
        if seg.frames:
            rate = seg.frames[0].sample_rate
        if pieces:
            pieces.append(np.zeros(int(gap * rate), np.int16))
        pieces.append(seg.heard_pcm())
    return (np.concatenate(pieces) if pieces else np.zeros(0, np.int16)), rate


def conversation_audio(sim: Simulation) -> tuple[np.ndarray, int]:
    """User and agent on one timeline, as a recording of the call would sound."""
    from plugin_cartesia_ws.emulator.resample import resample_s16

    _, rate = heard_audio(sim)
    placed: list[tuple[float, np.ndarray]] = [
        (s.queued_at, resample_s16(s.utterance.pcm, USER_RATE, rate)) for s in sim.speech
    ]
    placed += [(seg.started_at, seg.heard_pcm()) for seg in sim.speaker.segments]
    if not placed:
        return np.zeros(0, np.int16), rate
    t0 = min(at for at, _ in placed)
    end = max(int(round((at - t0) * rate)) + len(pcm) for at, pcm in placed)
    mix = np.zeros(end, np.int32)
    for at, pcm in placed:
        i = int(round((at - t0) * rate))
        mix[i : i + len(pcm)] += pcm
    return np.clip(mix, -32768, 32767).astype(np.int16), rate


def print_turns(turns: list[Turn]) -> None:
    for t in turns:
        if t.source:
            tag = " (barge-in)" if t.barge_in else ""
            print(f"turn {t.index}{tag}")
            if t.said is not None:
                print(f'  user said:   "{t.said}"')
            else:
                print(f"  user audio:  {t.source}")
            print(f'  STT heard:   "{t.heard}"')
        else:
            print(f"turn {t.index} (agent)")
        state = (
            f"interrupted after {t.played_s:.1f} of {t.received_s:.1f} s"
            if t.interrupted
            else f"{t.played_s:.1f} s of audio"
        )
        print(f'  agent:       "{t.reply}"  [{state}]')


def report_barge_in(
    sim: Simulation, turns: list[Turn], emulator: Any, overlapped: bool | None
) -> dict[str, Any]:
    """What the barge-in did: where the reply stopped, what the server saw, and that no
    audio of the cancelled context played afterwards."""
    cut = next((t for t in turns if t.interrupted), None)
    report: dict[str, Any] = {"overlapped": bool(overlapped), "interrupted": cut is not None}
    if cut is None:
        print(
            "barge-in: the reply was not interrupted"
            + ("" if overlapped else " (it had ended before the user spoke)")
        )
        return report
    nxt = next((t for t in turns if t.index > cut.index and t.barge_in), None)
    report.update(
        heard=cut.reply,
        played_s=cut.played_s,
        received_s=cut.received_s,
        context_id=cut.context_id,
        next_heard=nxt.heard if nxt else None,
        next_reply=nxt.reply if nxt else None,
    )
    reaction = ""
    if nxt is not None and nxt.speech_start is not None and cut.playback_end is not None:
        reaction = f", {1000 * (cut.playback_end - nxt.speech_start):.0f} ms after the user started talking"
    print(
        f"barge-in: the reply stopped after {cut.played_s:.2f} s{reaction} "
        f"({cut.received_s:.2f} s of it had arrived)"
    )
    print(f'  heard:      "{cut.reply}"')
    if emulator is not None and cut.context_id in emulator.records:
        rec = emulator.records[cut.context_id]
        # every later reply is byte for byte its own context's audio: nothing of the
        # cancelled context reached the speaker after the cut
        later = [
            (t, sim.segments_by_turn[t.index])
            for t in turns
            if t.index > cut.index and t.index in sim.segments_by_turn
        ]
        clean = all(
            t.context_id != cut.context_id
            and t.context_id in emulator.records
            and seg.sha256() == emulator.records[t.context_id].audio_sha256
            for t, seg in later
        )
        report.update(
            server_cancelled=rec.cancelled,
            server_done_sent=rec.done_sent,
            chunks_sent=rec.chunks_sent,
            chunks_after_cancel=rec.chunks_after_cancel,
            later_audio_is_other_contexts=clean,
            sockets_opened=emulator.sockets_opened,
        )
        if rec.cancelled:
            cancel_at = sim.wall_from_monotonic(rec.cancel_received_at)
            when = ""
            if cancel_at is not None and cut.playback_end is not None:
                when = f" {1000 * (cancel_at - cut.playback_end):.0f} ms after playback stopped"
            print(
                f"  emulator:   received the cancel for context {cut.context_id}{when}, and "
                + ("had already sent `done`" if rec.done_sent else "sent no `done` for it")
            )
        else:
            print(f"  emulator:   NO cancel received for context {cut.context_id}")
        print(
            "  afterwards: "
            + (
                "no audio of that context played (every later reply is byte-identical to its "
                "own context's audio)"
                if clean
                else "AUDIO MISMATCH: a later reply is not exactly its own context's audio"
            )
            + f"; WebSockets opened in all: {emulator.sockets_opened}"
        )
    if nxt is not None:
        print(f'  next turn:  "{nxt.heard}" -> "{nxt.reply}"')
    return report


def write_outputs(
    sim: Simulation,
    turns: list[Turn],
    components: Components,
    out_dir: Path,
    emulator: Any,
    barge_report: dict[str, Any] | None,
) -> dict[str, Path]:
    files: dict[str, Path] = {}
    pcm, rate = heard_audio(sim)
    write_wav(str(out_dir / "reply.wav"), pcm, rate)
    files[f"agent audio as heard, {len(pcm) / rate:.1f} s"] = out_dir / "reply.wav"
    mix, mix_rate = conversation_audio(sim)
    write_wav(str(out_dir / "conversation.wav"), mix, mix_rate)
    files["user and agent on one timeline"] = out_dir / "conversation.wav"
    try:
        plot_timeline(turns, out_dir / "timeline.png")
        files["timeline"] = out_dir / "timeline.png"
    except ImportError:
        print("timeline.png skipped: matplotlib is not installed (pip install matplotlib)")
    data = {
        "components": components.labels,
        "turns": [t.to_dict() for t in turns],
        "history": sim.session.history.to_dict(exclude_timestamp=False),
        "barge_in": barge_report,
        "usage": str(sim.session.usage),
        "events": {
            "user_states": sim.user_states,
            "final_transcripts": sim.finals,
            "errors": sim.errors,
        },
    }
    if emulator is not None:
        data["emulator"] = {
            "sockets_opened": emulator.sockets_opened,
            "contexts": {
                cid: {k: v for k, v in rec.summary().items() if k != "received"}
                for cid, rec in emulator.records.items()
            },
        }
    (out_dir / "conversation.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    files["history, metrics, timings"] = out_dir / "conversation.json"
    files["log"] = out_dir / "simulate.log"
    return files
