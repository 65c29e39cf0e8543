"""``python -m benchmarks [--quick]``: ours vs livekit-plugins-cartesia, side by side, against the
emulator in its own process. Writes ``latest.json``, ``latest.md`` and PNG plots to the output
directory (``benchmarks/results/``; ``--quick`` writes to ``benchmarks/results/quick/``)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import logging
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from . import bench_barge_in, bench_corpus, bench_e2e, bench_scale, bench_ttfa, report
from .common import FULL, QUICK, Emulator, Settings, settle_heap

RESULTS = Path(__file__).parent / "results"
BENCHMARKS = {
    "corpus": bench_corpus,
    "ttfa": bench_ttfa,
    "e2e": bench_e2e,
    "barge_in": bench_barge_in,
    "scale": bench_scale,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument(
        "--quick", action="store_true", help="fewer turns and levels (CI smoke, < 2 min)"
    )
    p.add_argument("--out", type=Path, help="output directory")
    p.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--turns", type=int, help="TTFA turns per (reply, engine)")
    p.add_argument("--cold-turns", type=int, help="cold first turns per engine")
    p.add_argument("--e2e-turns", type=int, help="AgentSession turns per TTS (0 = skip)")
    p.add_argument("--e2e-turns-per-session", type=int)
    p.add_argument("--barge-turns", type=int, help="interrupted turns per TTS")
    p.add_argument("--levels", help="concurrency levels, e.g. 1,10,50,100")
    p.add_argument("--scale-samples", type=int, help="minimum TTFA samples per level")
    p.add_argument("--scale-rounds", type=int, help="minimum rounds per level")
    p.add_argument("--mem-streams", type=int, help="open streams for the memory figure")
    p.add_argument("--seed", type=int)
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    base = QUICK if args.quick else FULL
    changes: dict[str, Any] = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(Settings)
        if f.name != "levels" and getattr(args, f.name, None) is not None
    }
    if args.levels:
        changes["levels"] = tuple(int(x) for x in args.levels.split(","))
    return dataclasses.replace(base, **changes)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def metadata_for(settings: Settings, mode: str) -> dict[str, Any]:
    import plugin_cartesia_ws

    return {
        "mode": mode,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": dataclasses.asdict(settings),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": _git_commit(),
        "machine": {
            "cpu": _cpu_model(),
            "cores": psutil.cpu_count(logical=True),
            "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "load_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": {
            "livekit-agents": _version("livekit-agents"),
            "livekit-plugins-cartesia": _version("livekit-plugins-cartesia"),
            "plugin_cartesia_ws": plugin_cartesia_ws.__version__,
            "aiohttp": _version("aiohttp"),
        },
    }


async def run(settings: Settings, selected: list[str], mode: str) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {"meta": metadata_for(settings, mode)}

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", flush=True)

    async with Emulator() as emu:
        results["meta"]["emulator_args"] = ["python -m plugin_cartesia_ws.emulator", *emu.args]
        results["meta"]["emulator_gc"] = "off (the emulator's --no-gc, see benchmarks/emulator.py)"
        log(f"emulator up at {emu.url}")
        results["meta"]["emulator_rss_mib"] = {"start": emu.rss_mib()}
        for name, module in BENCHMARKS.items():
            if name not in selected:
                results[name] = {"skipped": "not selected (--only)"}
                continue
            log(f"{name} ...")
            settle_heap()
            results[name] = await module.run(emu, settings, log)
        results["meta"]["emulator_rss_mib"]["end"] = emu.rss_mib()
    results["meta"]["duration_s"] = round(time.perf_counter() - started, 1)
    results["targets"] = report.targets(results)
    return results


def write(results: dict[str, Any], out: Path, plots: bool) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "latest.json", out / "latest.md"]
    results["meta"]["plots"] = report.plots(results, out) if plots else []
    (out / "latest.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out / "latest.md").write_text(report.markdown(results))
    return written + [out / p for p in results["meta"]["plots"]]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = settings_from(args)
    selected = [s.strip() for s in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = set(selected) - set(BENCHMARKS)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    mode = "quick" if args.quick else "full"
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    results = asyncio.run(run(settings, selected, mode))
    files = write(results, out, plots=not args.no_plots)
    print()
    print(report.markdown(results))
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
