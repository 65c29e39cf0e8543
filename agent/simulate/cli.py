"""`python -m agent simulate`: the command line, its checks, and the run it prints."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import worker
from ..settings import Settings, SettingsError
from .components import Components, choose_components
from .report import print_turns, report_barge_in, write_outputs
from .session import Simulation
from .speech import SimulationError, Utterance, espeak_utterance, wav_utterance
from .timeline import LEGEND, Turn, latency_table

log = logging.getLogger("agent.simulate")

# Why this e2e is not the README's headline: that one comes from `make bench`, whose STT is
# scripted; here Whisper runs on this machine's CPU inside the turn.
LOCAL_STT_NOTE = """\
  note: e2e here includes local Whisper tiny.en transcribing on this CPU (the STT column),
        so it is longer than the README's headline e2e, which `make bench` measures with
        a scripted STT and LLM to time the TTS plugin alone"""

PROG = "python -m agent simulate"
DEFAULT_QUESTION = "Hello! What is the weather like in Paris today?"
DEFAULT_BARGE_IN = "Sorry, stop. What time is it?"
EXIT_FAILED, EXIT_USAGE = 1, 2


def _tagged(kind: str, value: str) -> tuple[str, str]:
    return kind, value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Run voice turns offline through the worker's AgentSession: user speech in, "
        "the agent's reply out as a WAV, with a latency table and a timeline plot. Components "
        "come from the settings (.env / environment); what is not configured runs locally: "
        "Whisper tiny.en STT, an echo LLM, the Cartesia emulator.",
    )
    # the user's turns, in the order given: ("say", text) or ("wav", path)
    for option, kind, metavar, what in (
        ("--say", "say", "TEXT", f'spoken by eSpeak (repeatable; default: "{DEFAULT_QUESTION}")'),
        ("--input", "wav", "FILE.wav", "from a 16-bit PCM WAV file (repeatable)"),
    ):
        p.add_argument(
            option,
            dest="utterances",
            action="append",
            type=functools.partial(_tagged, kind),
            metavar=metavar,
            help=f"a user turn {what}",
        )
    p.add_argument(
        "--barge-in",
        nargs="?",
        const=DEFAULT_BARGE_IN,
        default=None,
        metavar="TEXT",
        help="after the last turn's reply starts, talk over it with TEXT (eSpeak; default: "
        f'"{DEFAULT_BARGE_IN}")',
    )
    p.add_argument(
        "--barge-in-after",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how long the agent speaks before the barge-in starts (1.0)",
    )
    p.add_argument("--out-dir", default="out", help="where the outputs go (out/)")
    # each a choice of the role's implementation, "auto" by default
    for option, choices, why in (
        ("--stt", ("openai", "whisper"), "OpenAI when OPENAI_API_KEY or OPENAI_STT_BASE_URL is "
         "set, else local Whisper"),
        ("--llm", ("openai", "echo"), "OpenAI-compatible when OPENAI_API_KEY or OPENAI_BASE_URL "
         "is set, else echo"),
        ("--tts", ("cartesia", "emulator"), "Cartesia at CARTESIA_BASE_URL when CARTESIA_API_KEY "
         "is set, else the emulator in this process"),
        ("--emulator-voice", ("espeak", "tone"), "the in-process emulator's voice: eSpeak when "
         "installed"),
    ):  # fmt: skip
        p.add_argument(option, choices=("auto", *choices), default="auto", help=f"auto: {why}")
    p.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each reply (60)"
    )
    p.add_argument(
        "--room",
        action="store_true",
        help="run the turns through a real local LiveKit server and the worker in its own "
        "process; the latency is what a participant hears over WebRTC (needs livekit-server "
        "or Go to build it: make livekit-server)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show the log on the console too")
    return p


@dataclass
class Result:
    turns: list[Turn]
    files: dict[str, Path]
    components: dict[str, str]
    barge_in: dict[str, Any] | None = None


@dataclass
class _Speech:
    """The user's side, read and checked before anything is written."""

    utterances: list[Utterance]
    barge_in: Utterance | None


def _user_speech(args: argparse.Namespace) -> _Speech:
    specs = args.utterances or [("say", DEFAULT_QUESTION)]
    texts = [("--say", text) for kind, text in specs if kind == "say"]
    if args.barge_in is not None:
        texts.append(("--barge-in", args.barge_in))
    for option, text in texts:
        if not text.strip():
            raise SimulationError(f"{option} needs some text to speak, not {text!r}")
    if args.barge_in_after < 0:
        raise SimulationError("--barge-in-after must not be negative")
    utterances = [espeak_utterance(v) if kind == "say" else wav_utterance(v) for kind, v in specs]
    barge_in = espeak_utterance(args.barge_in) if args.barge_in is not None else None
    return _Speech(utterances, barge_in)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:  # the user's speech first: a mistake there leaves nothing behind
        speech = _user_speech(args)
    except SimulationError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    out_dir = Path(args.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: cannot create {out_dir}: {e.strerror}", file=sys.stderr)
        return EXIT_USAGE
    if args.room:
        return _run_in_room(args, speech.utterances, out_dir)
    restore = _setup_logging(out_dir / "simulate.log", verbose=args.verbose)
    try:
        settings = Settings.from_env()
        components = choose_components(settings, stt=args.stt, llm=args.llm, tts=args.tts)
    except (SettingsError, SimulationError) as e:
        restore()
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        asyncio.run(_run(args, settings, components, speech, out_dir))
    except SimulationError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one line for users; the traceback goes to the log
        log.exception("simulation failed")
        print(f"error: the simulation failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        restore()
    return 0


def _run_in_room(args: argparse.Namespace, utterances: list[Utterance], out_dir: Path) -> int:
    from . import room as simulate_room

    try:
        return simulate_room.main(args, [(u.said or u.source, u.pcm) for u in utterances], out_dir)
    except simulate_room.RoomSimulationError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED


def _setup_logging(path: Path, *, verbose: bool) -> Callable[[], None]:
    """Everything at INFO into the log file, and on the console too with -v (without it,
    the console shows only the simulation's own lines)."""
    root = logging.getLogger()
    old_level = root.level
    file_handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    file_handler.setLevel(logging.INFO)
    file_handler.setFormatter(
        logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    handlers: list[logging.Handler] = [file_handler]
    if verbose:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("  [%(levelname)s %(name)s] %(message)s"))
        handlers.append(console)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(logging.INFO)

    def restore() -> None:
        for h in handlers:
            root.removeHandler(h)
            h.close()
        root.setLevel(old_level)

    return restore


async def _run(
    args: argparse.Namespace,
    settings: Settings,
    components: Components,
    speech: _Speech,
    out_dir: Path,
) -> Result:
    utterances, barge_in = speech.utterances, speech.barge_in
    async with contextlib.AsyncExitStack() as stack:
        emulator = None
        if components.use_emulator:
            from plugin_cartesia_ws.emulator import CartesiaEmulator

            emulator = await stack.enter_async_context(CartesiaEmulator(voice=args.emulator_voice))
            settings = dataclasses.replace(
                settings, cartesia_api_key=emulator.api_key, cartesia_base_url=emulator.url
            )
            voice = emulator.state.voice.name if emulator.state else args.emulator_voice
            components.labels["TTS"] += f", {voice} voice, {emulator.url}"

        n = len(utterances)
        print(f"{PROG}: {n} turn{'s' if n != 1 else ''}" + (" + barge-in" if barge_in else ""))
        for role in ("VAD", "STT", "LLM", "TTS"):
            print(f"  {role}  {components.labels[role]}")
        if components.llm is not None:
            log.warning(
                "offline echo LLM: no language model is configured; replies repeat the user"
            )

        loaded = time.perf_counter()
        sim = Simulation(
            settings, vad=worker.load_vad(settings), stt=components.stt, llm=components.llm
        )
        stack.push_async_callback(sim.aclose)
        if hasattr(components.stt, "load"):
            await asyncio.to_thread(components.stt.load)  # type: ignore[union-attr]
        log.info("models loaded in %.2f s", time.perf_counter() - loaded)
        await sim.start()

        overlapped = None
        for i, utt in enumerate(utterances, start=1):
            print(f"turn {i}: the user says {utt.describe()}")
            if barge_in is not None and i == n:
                overlapped = await sim.turn_with_barge_in(
                    utt, barge_in, after=args.barge_in_after, timeout=args.timeout
                )
            else:
                await sim.turn(utt, timeout=args.timeout)
        if barge_in is not None:
            print(
                f"turn {n + 1}: {args.barge_in_after:.1f} s into the reply, the user says "
                f"{barge_in.describe()}"
            )

        turns = sim.turns()
        print()
        print_turns(turns)
        print()
        print(latency_table(turns))
        print(LEGEND)
        if components.stt is not None:
            print(LOCAL_STT_NOTE)

        barge_report = None
        if barge_in is not None:
            print()
            barge_report = report_barge_in(sim, turns, emulator, overlapped)

        files = write_outputs(sim, turns, components, out_dir, emulator, barge_report)
        print()
        for name, path in files.items():
            print(f"wrote {path}" + (f"  ({name})" if name else ""))
        return Result(turns, files, dict(components.labels), barge_report)
