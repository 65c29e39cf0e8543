"""``python -m plugin_cartesia_ws.emulator``: run the Cartesia emulator as a server."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import logging
import sys
from typing import Any

from . import CartesiaEmulator
from .catalogue import VOICES, Catalogue
from .extras import ExtraMissing
from .profiles import PROFILE_ENV, PROFILES, default_profile, make_config
from .state import DEV_API_KEY, EmulatorConfig
from .voices import VoiceUnavailable


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m plugin_cartesia_ws.emulator",
        description="Local server speaking Cartesia's TTS protocol (WebSocket, bytes, SSE).",
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default loopback only)")
    p.add_argument("--port", type=int, default=8787, help="0 = any free port")
    p.add_argument("--voice", default="auto", choices=["auto", "espeak", "tone"])
    p.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help=f"accepted API key (repeatable; default {DEV_API_KEY})",
    )
    p.add_argument("--accept-any-key", action="store_true", help="accept every non-empty key")
    p.add_argument(
        "--profile",
        choices=PROFILES,
        default=default_profile(),
        help=f"plain, or cartesia: behave like the service (default ${PROFILE_ENV}, else plain)",
    )
    # latency and context rules: None = the profile's
    p.add_argument("--ttfa-ms", type=float, help="time to first audio per generation (90)")
    p.add_argument("--rtf", type=float, help="audio seconds generated per second (3)")
    p.add_argument("--chunk-ms", type=float, help="audio per chunk event (80)")
    p.add_argument("--jitter-ms", type=float)
    p.add_argument(
        "--version",
        dest="default_version",
        default="2026-03-01",
        metavar="API_VERSION",
        help="the Cartesia-Version assumed when a client sends none (not this program's version)",
    )
    p.add_argument(
        "--voices",
        metavar="ID[,ID...]",
        help="the only voice ids to accept; any other gets Cartesia's 404 voice_not_found "
        "(default: the voices the emulator knows, LiveKit's default among them)",
    )
    p.add_argument(
        "--accept-any-voice",
        action="store_true",
        help="accept every voice id (the emulator speaks them all with its one voice)",
    )
    p.add_argument("--idle-timeout", type=float, default=300.0, help="seconds (Cartesia: 300)")
    p.add_argument("--max-sockets-per-key", type=int)
    p.add_argument("--max-contexts-per-key", type=int, help="TTS concurrency limit (429)")
    p.add_argument("--cancel-inflight", choices=["finish", "stop"])
    p.add_argument("--done-after-cancel", action="store_true", default=None)
    p.add_argument(
        "--expiry",
        choices=["off", "error", "ignore"],
        help="input to a context 1 s after its last audio: taken, an error, or ignored",
    )
    p.add_argument(
        "--no-gc",
        action="store_true",
        help="switch the cyclic garbage collector off (no collection pauses; for benchmarks)",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="serve https/wss with a certificate made now; clients trust the printed CA file",
    )
    p.add_argument("--cert", help="serve TLS with this certificate (PEM) instead of a new one")
    p.add_argument("--key", help="the private key (PEM) of --cert")
    p.add_argument(
        "--tls-dir",
        help="keep the generated CA and certificate here and reuse them on the next start",
    )
    p.add_argument(
        "--strict-models",
        action="store_true",
        help="accept only the listed model ids (no newer snapshots or families)",
    )
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    if bool(args.cert) != bool(args.key):
        raise SystemExit("--cert and --key go together")
    base = make_config(profile=args.profile)
    return make_config(
        profile=args.profile,
        host=args.host,
        port=args.port,
        voice=args.voice,
        api_keys=tuple(args.api_keys or (DEV_API_KEY,)),
        accept_any_key=args.accept_any_key,
        latency=_given(
            base.latency,
            ttfa_ms=args.ttfa_ms,
            realtime_factor=args.rtf,
            chunk_ms=args.chunk_ms,
            jitter_ms=args.jitter_ms,
        ),
        rules=_given(
            base.rules,
            cancel_inflight=args.cancel_inflight,
            done_after_cancel=args.done_after_cancel,
            expiry=args.expiry,
        ),
        default_version=args.default_version,
        idle_timeout_s=args.idle_timeout,
        max_sockets_per_key=args.max_sockets_per_key,
        max_contexts_per_key=args.max_contexts_per_key,
        catalogue=_catalogue(args),
        tls=args.tls or bool(args.cert) or bool(args.tls_dir),
        tls_cert=args.cert,
        tls_key=args.key,
        tls_dir=args.tls_dir,
    )


def _given(base: Any, **flags: Any) -> Any:
    """The profile's ``base`` with the flags given on the command line."""
    return dataclasses.replace(base, **{k: v for k, v in flags.items() if v is not None})


def _catalogue(args: argparse.Namespace) -> Catalogue:
    voices: frozenset[str] | None = frozenset(VOICES)
    if args.accept_any_voice:
        voices = None
    elif args.voices:
        voices = frozenset(v.strip() for v in args.voices.split(",") if v.strip())
    return Catalogue.strict(voices=voices) if args.strict_models else Catalogue(voices=voices)


async def serve(config: EmulatorConfig, *, no_gc: bool = False) -> None:
    async with CartesiaEmulator(config) as emu:
        assert emu.state is not None
        # A full collection of a busy server's heap stalls every context at once (tens of
        # ms at 100 streams): keep start-up objects out of it and collect less often.
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        if no_gc:
            gc.disable()
        # One JSON line first, for programs that start us (EmulatorProcess); then prose.
        info = {"url": emu.url, "voice": emu.state.voice.name, "ca_file": emu.ca_path}
        print(json.dumps(info), flush=True)
        print(
            f"Cartesia emulator on {emu.url} (WebSocket {emu.ws_url}), "
            f"voice={emu.state.voice.name}. Use base_url={emu.url} and "
            f"api_key={emu.api_key if not config.accept_any_key else '<any>'}.",
            flush=True,
        )
        if emu.ca_path is not None:
            print(
                f"TLS and plain HTTP on the same port ({emu.plain_url} works for both kinds "
                f"of client); TLS clients must trust {emu.ca_path} "
                f"(Python: SSL_CERT_FILE={emu.ca_path}; Node: NODE_EXTRA_CA_CERTS={emu.ca_path}).",
                flush=True,
            )
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(config_from_args(args), no_gc=args.no_gc))
    except KeyboardInterrupt:
        sys.exit(0)
    except (VoiceUnavailable, ExtraMissing) as exc:
        # a missing optional package (eSpeak NG for --voice espeak, cryptography for --tls):
        # one line naming what to install, not a traceback; 2 as for other usage errors
        what = f"--voice {args.voice}: " if isinstance(exc, VoiceUnavailable) else ""
        print(f"error: {what}{exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # e.g. the port is taken: say so in one line
        print(
            f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
