"""`python -m agent playground`: talk to the agent in a browser, offline or on LiveKit Cloud.

Serves, on 127.0.0.1 only, the page in `playground/` (LiveKit's browser SDK, bundled by
esbuild at build time) and `GET /token`, which mints a join token for a fresh room that
dispatches the agent. The API secret stays in this process; the browser gets only the
token. Before serving, it starts what is missing (`agent.dev.local_stack`): a LiveKit server
when LIVEKIT_URL is not set, the Cartesia emulator when CARTESIA_API_KEY is not, the local
OpenAI stand-in (echo LLM, Whisper STT) when neither OPENAI_API_KEY nor OPENAI_BASE_URL is,
and the worker (unless --no-worker). Ctrl-C stops all of it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from plugin_cartesia_ws.emulator.serving import start_site

from ..settings import Settings, SettingsError
from ..token import make_token
from .livekit_server import REPO_ROOT, VERSION, ServerUnavailable, find_binary

WEB_DIR = REPO_ROOT / "playground"
DIST = WEB_DIR / "dist"
DEFAULT_AGENT = "playground"
# Rooms the playground's worker takes at once. A reload, a Disconnect followed at once by
# Connect, or a second tab opens a new room while the old one still closes (about 2 s), and
# LiveKit does not retry a dispatch that found every worker full: one slot left those
# without an agent for 25-30 s.
PLAYGROUND_JOBS = 4
NO_STT = "(no speech-to-text here: pip install -e '.[whisper]' or set OPENAI_API_KEY)"


class PlaygroundError(RuntimeError):
    """One line for users."""


def bundle_is_stale() -> bool:
    built = DIST / "app.js"
    if not built.is_file():
        return True
    sources = [*WEB_DIR.joinpath("src").iterdir(), WEB_DIR / "package-lock.json"]
    return any(s.stat().st_mtime > built.stat().st_mtime for s in sources)


def build_page() -> None:
    """Install the pinned npm packages (package-lock.json) and bundle the page into dist/."""
    npm = shutil.which("npm")
    if npm is None:
        raise PlaygroundError("the page is not built and npm is missing: install Node.js 20+")
    steps = [["ci", "--no-audit", "--no-fund", "--loglevel=error"], ["run", "build"]]
    if (WEB_DIR / "node_modules" / "livekit-client").is_dir():
        steps = steps[1:]
    for step in steps:
        out = subprocess.run([npm, *step], cwd=WEB_DIR, capture_output=True, text=True)
        if out.returncode != 0:
            tail = (out.stderr or out.stdout).strip().splitlines()[-1:]
            raise PlaygroundError(f"npm {step[0]} in {WEB_DIR} failed: {' '.join(tail)}")


def check_port_free(port: int) -> None:
    """The page's port, tried first: a taken one is one line naming --port."""
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as e:
            raise PlaygroundError(
                f"--port {port} is taken on 127.0.0.1 ({e.strerror}): stop what uses it, "
                "or choose another port with --port"
            ) from None


class PlaygroundServer:
    """The page and its token endpoint. Each `GET /token` opens a new room (unless
    `?room=` names one) whose token dispatches `agent_name` ('' = automatic dispatch)."""

    def __init__(
        self, livekit: Settings, agent_name: str, *, port: int = 0, worker_log: str = ""
    ) -> None:
        self.livekit = livekit.require("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
        self.agent_name = agent_name
        self.port = port
        self.worker_log = worker_log  # named on the page when no agent joins
        self.rooms: list[str] = []  # the rooms tokens were minted for, in order
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> PlaygroundServer:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/token", self._token)
        if DIST.is_dir():
            app.router.add_static("/", DIST)
        # loopback only: whoever reaches /token can join rooms with this project's keys
        self._runner, self.port = await start_site(app, port=self.port)
        return self

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _index(self, request: web.Request) -> web.StreamResponse:
        if not (DIST / "index.html").is_file():
            return web.Response(status=503, text="the page is not built: make playground-web")
        return web.FileResponse(DIST / "index.html")

    async def _token(self, request: web.Request) -> web.Response:
        room = request.query.get("room") or f"playground-{uuid.uuid4().hex[:6]}"
        identity = request.query.get("identity") or f"user-{uuid.uuid4().hex[:4]}"
        token = make_token(self.livekit, room=room, identity=identity, agent_name=self.agent_name)
        self.rooms.append(room)
        where = f" ({self.worker_log})" if self.worker_log else ""
        no_agent = (
            f"No agent has joined yet. Is the worker running and registered? See its log{where}. "
            "Then Disconnect and Connect again."
        )
        return web.json_response(
            {
                "url": self.livekit.livekit_url,
                "token": token,
                "room": room,
                "identity": identity,
                "no_agent": no_agent,
            }
        )


async def serve(args: argparse.Namespace) -> None:
    from plugin_cartesia_ws.emulator import CartesiaEmulator

    from .local_stack import echo_openai, local_agent, local_whisper

    settings = Settings.from_env()
    remote = settings.livekit_url is not None
    if remote:
        settings.require_livekit()
    elif args.no_worker:
        # the local server's secret is made per run and never printed: no other worker can join
        raise PlaygroundError("--no-worker needs LIVEKIT_URL (the server your worker uses)")
    local_tts = not settings.cartesia_api_key
    local_llm = not (settings.openai_api_key or settings.openai_base_url)
    whisper = local_whisper() if local_llm else None
    agent_name = settings.agent_name or ("" if args.no_worker else DEFAULT_AGENT)
    logs = Path(tempfile.mkdtemp(prefix="playground-"))
    # SIGTERM stops everything as Ctrl-C does (asyncio.run cancels this task on SIGINT)
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)

    print(f"LiveKit  {settings.livekit_url if remote else f'local livekit-server {VERSION}'}")
    print(f"TTS      {'Cartesia emulator (eSpeak voice)' if local_tts else 'Cartesia'}")
    if local_llm:
        stt = "Whisper tiny.en" if whisper else f"none: every transcript is {NO_STT!r}"
        print(f"LLM/STT  local stand-ins: OFFLINE ECHO LLM (repeats what it heard), STT {stt}")
    else:
        print(f"LLM/STT  {settings.openai_base_url or 'OpenAI'}")
    worker = "none (--no-worker): run your own" if args.no_worker else f"agent {agent_name!r}"
    print(f"worker   {worker}; starting (logs: {logs}) ...")
    if not remote and find_binary() is None:
        print(f"building livekit-server {VERSION} with Go (first time only: a few minutes) ...")
    async with local_agent(
        logs=logs,
        agent_name=agent_name,
        livekit=settings if remote else None,
        emulator=CartesiaEmulator(voice="espeak") if local_tts else None,
        openai=echo_openai(whisper, lambda: NO_STT) if local_llm else None,
        worker=not args.no_worker,
        max_jobs=PLAYGROUND_JOBS,
        worker_stop_timeout=5.0,
    ) as local:
        worker_log = "" if args.no_worker else str(logs / "worker.log")
        page = PlaygroundServer(local.livekit, agent_name, port=args.port, worker_log=worker_log)
        await page.start()
        try:
            print(f"\nopen {page.url}  (Ctrl-C stops everything)", flush=True)
            await asyncio.Event().wait()
        finally:
            await page.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m agent playground",
        description="Serve a local page to talk to the agent in a browser, starting what is "
        "missing (LiveKit server, Cartesia emulator, local OpenAI stand-in, worker).",
    )
    p.add_argument("--port", type=int, default=8800, help="page port on 127.0.0.1 (8800)")
    p.add_argument(
        "--no-worker", action="store_true", help="start no worker: you run `python -m agent dev`"
    )
    args = p.parse_args(argv)
    try:
        check_port_free(args.port)  # before anything starts, not after it all has
        if bundle_is_stale():
            print("building the page (npm) ...")
            build_page()
        asyncio.run(serve(args))
    except (PlaygroundError, ServerUnavailable, SettingsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # the port was taken meanwhile
        print(f"error: --port {args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("stopped")
    return 0
