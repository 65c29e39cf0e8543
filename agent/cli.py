"""`python -m agent {dev,start,console,connect,token,simulate,playground}`.

dev / start / console / connect are LiveKit's own worker commands (their options and
`--help` come from livekit-agents), run with this package's worker options. `token` mints
a join token for the Agents Playground. `simulate` runs voice turns offline (agent.simulate).
`playground` serves a local page to talk to the agent in a browser (agent.dev.playground).

Settings come from the environment and `.env` (see .env.example); a missing one is reported
in one line with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from .settings import Settings, SettingsError, load_dotenv_into
from .token import make_token

PROG = "python -m agent"
LIVEKIT_COMMANDS = {
    "dev": "run the worker in development mode (debug logs, never reports itself full)",
    "start": "run the worker in production mode (health check on :8081)",
    "console": "talk to the agent in this terminal, no LiveKit server (needs a sound card, or --text)",
    "connect": "run one job in an existing room: connect --room NAME",
}
# Commands served by the local stack and the simulation, found by name: the product never
# imports agent.dev or agent.simulate, and runs (and deploys) without them.
TOOL_COMMANDS = {"simulate": "agent.simulate", "playground": "agent.dev.playground"}
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        # LiveKit's CLI and the job processes read the environment, so .env goes there too
        load_dotenv_into(os.environ)
        if argv and argv[0] in LIVEKIT_COMMANDS:
            return _run_livekit(argv[0], argv[1:])
        if argv and argv[0] in TOOL_COMMANDS:  # their options belong to their modules
            return _run_tool(argv[0], argv[1:])
        args = _parser().parse_args(argv)
        if args.command == "token":
            return _token(args)
        _parser().print_help(sys.stderr)
        return EXIT_USAGE
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="LiveKit voice agent: Silero VAD + OpenAI STT/LLM + Cartesia WebSocket TTS. "
        "dev, start, console and connect are LiveKit's worker commands "
        "(their options: `%(prog)s dev --help`). Settings: environment or .env (.env.example).",
    )
    sub = p.add_subparsers(
        dest="command", metavar="{dev,start,console,connect,token,simulate,playground}"
    )
    # listed for --help only: main() dispatches these before parsing
    for name, text in LIVEKIT_COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)

    t = sub.add_parser(
        "token",
        help="print the LiveKit URL and a room join token (for the Agents Playground)",
        description="Print LIVEKIT_URL and a join token for ROOM; with --agent (default: "
        "AGENT_NAME) the token also dispatches that agent to the room.",
    )
    t.add_argument("--room", required=True, help="room to join (created on first join)")
    t.add_argument("--identity", required=True, help="participant identity, unique per room")
    t.add_argument(
        "--agent",
        default=None,
        help="agent name to dispatch (explicit dispatch); default AGENT_NAME; '' for none",
    )
    t.add_argument("--ttl", type=int, default=3600, help="token lifetime in seconds (3600)")
    t.add_argument("--name", default="", help="participant display name")

    sub.add_parser("simulate", help="run voice turns offline, audio file in, audio file out")
    sub.add_parser("playground", help="talk to the agent in a browser page on localhost")
    return p


# ---------------------------------------------------------------------- LiveKit CLI
_LIVEKIT_OPTIONS = {
    "--url": "LIVEKIT_URL",
    "--api-key": "LIVEKIT_API_KEY",
    "--api-secret": "LIVEKIT_API_SECRET",
}


def _run_livekit(command: str, rest: list[str]) -> int:
    settings = Settings.from_env()
    if not ("--help" in rest or "-h" in rest):
        if command != "console":
            # what is not on the command line must come from the environment or .env
            given = {
                name
                for opt, name in _LIVEKIT_OPTIONS.items()
                if any(a == opt or a.startswith(opt + "=") for a in rest)
            }
            settings.require(*(n for n in _LIVEKIT_OPTIONS.values() if n not in given))
        settings.require_models()
        if command != "console":
            _check_server(settings, rest)
        from .preflight import check_cartesia_sync

        check_cartesia_sync(settings)

    from livekit.agents import cli

    from .worker import server_options

    # LiveKit's (typer) CLI parses sys.argv[1:]: give it exactly `COMMAND [options]`
    sys.argv = [sys.argv[0], command, *rest]
    cli.run_app(server_options(settings))
    return 0


def _check_server(settings: Settings, rest: list[str]) -> None:
    """Fail in one line when the server is unreachable or refuses the keys (LiveKit's
    own worker would retry for minutes). Command-line --url/--api-key/--api-secret win."""
    import dataclasses

    from .preflight import check_livekit_sync, quiet_dev_key_warning_for_good

    given: dict[str, Any] = {}
    for i, arg in enumerate(rest):
        for opt, name in _LIVEKIT_OPTIONS.items():
            if arg.startswith(opt + "="):
                given[name.lower()] = arg.split("=", 1)[1]
            elif arg == opt and i + 1 < len(rest):
                given[name.lower()] = rest[i + 1]
    settings = dataclasses.replace(settings, **given)
    check_livekit_sync(settings)
    _warn_if_exposed(settings)
    # PyJWT's two raw lines per token LiveKit mints, for the public dev pair only
    quiet_dev_key_warning_for_good(settings.livekit_api_key, settings.livekit_api_secret)


# ---------------------------------------------------------------------- token
def _token(args: argparse.Namespace) -> int:
    settings = Settings.from_env().require_livekit()
    if args.ttl <= 0:
        print("error: --ttl must be a positive number of seconds", file=sys.stderr)
        return EXIT_USAGE
    agent_name = settings.agent_name if args.agent is None else args.agent
    jwt = make_token(
        settings,
        room=args.room,
        identity=args.identity,
        agent_name=agent_name,
        ttl=args.ttl,
        name=args.name,
    )
    _warn_if_exposed(settings)
    print(f"url: {settings.livekit_url}")
    print(f"token: {jwt}")
    print(
        "paste both into the Agents Playground (Manual connect)"
        + (f"; joining dispatches agent {agent_name!r}" if agent_name else ""),
        file=sys.stderr,
    )
    return 0


# ---------------------------------------------------------------------- simulate, playground
def _run_tool(command: str, args: list[str]) -> int:
    module_name = TOOL_COMMANDS[command]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name + ".").startswith(e.name + "."):
            msg = f"`{command}` is not available in this version ({e.name} is missing)"
        else:
            msg = f"`{command}` needs the Python package that provides {e.name!r}; install it"
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    return int(module.main(args) or 0)


def _warn_if_exposed(settings: Settings) -> None:
    from .preflight import dev_key_exposure

    if warning := dev_key_exposure(settings):
        print(f"warning: {warning}", file=sys.stderr)
