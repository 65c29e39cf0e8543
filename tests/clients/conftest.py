"""Third-party Cartesia clients, installed from their registries by `make clients`, driven
against the emulator. Where a client's runtime is missing (no Node, no pipecat venv) its
tests skip with one line saying what is missing; with CI set they fail instead, so CI
never passes without them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from plugin_cartesia_ws.emulator import CartesiaEmulator, LatencyModel
from plugin_cartesia_ws.models import TTSDefaultVoiceId

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = Path(__file__).parent / "js"
PIPECAT_PYTHON = ROOT / ".venv-pipecat" / "bin" / "python"
VOICE_ID = TTSDefaultVoiceId


def require(ok: bool, missing: str) -> None:
    """Skip (on a developer's machine) or fail (in CI) when a client cannot run here."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{missing}; CI must run the third-party client tests")
    pytest.skip(missing)


def node_major() -> int | None:
    node = shutil.which("node")
    if node is None:
        return None
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    try:
        return int(out.stdout.strip().lstrip("v").split(".")[0])
    except ValueError:
        return None


@pytest.fixture
def js_clients() -> Path:
    major = node_major()
    require(major is not None and major >= 20, "Node.js 20+ not found (JS client tests)")
    require(
        (JS_DIR / "node_modules" / ".installed").exists(),
        "npm packages of tests/clients/js not installed: run `make clients-js`",
    )
    return JS_DIR


@pytest.fixture
def pipecat_python() -> Path:
    require(PIPECAT_PYTHON.exists(), "pipecat not installed: run `make clients-pipecat`")
    return PIPECAT_PYTHON


@pytest.fixture
async def tls_emulator() -> AsyncIterator[CartesiaEmulator]:
    """The emulator as real clients meet it: TLS, tone voice (byte-exact audio), fast."""
    latency = LatencyModel(ttfa_ms=5, realtime_factor=20.0)
    async with CartesiaEmulator(voice="tone", tls=True, record_audio=True, latency=latency) as emu:
        yield emu


def client_env(emu: CartesiaEmulator, **extra: str) -> dict[str, str]:
    """The environment a user would set: key, the http:// base URL (the JS clients dial
    wss:// anyway: the emulator's port serves both) and the CA to trust; nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTESIA_")}
    assert emu.ca_path is not None
    env.update(
        CARTESIA_API_KEY=emu.api_key,
        CARTESIA_BASE_URL=emu.plain_url,
        NODE_EXTRA_CA_CERTS=emu.ca_path,
        SSL_CERT_FILE=emu.ca_path,
        **extra,
    )
    return env


async def run_client(cmd: list[str], env: dict[str, str], timeout: float = 60.0) -> Any:
    """Runs one client scenario in its own process (the emulator keeps serving on this
    loop meanwhile) and returns the JSON line it printed."""
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT)
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    assert lines, f"{cmd[1]} printed no result (exit {proc.returncode}):\n{err.decode()[-3000:]}"
    result = json.loads(lines[-1])
    assert "failed" not in result, f"{result['failed']}\n{err.decode()[-3000:]}"
    return result


def run_node(
    script: str, args: dict[str, Any], env: dict[str, str], node_args: tuple[str, ...] = ()
) -> Any:
    node = shutil.which("node") or "node"
    return run_client([node, *node_args, str(JS_DIR / script), json.dumps(args)], env)


def run_pipecat(args: dict[str, Any], env: dict[str, str]) -> Any:
    script = Path(__file__).parent / "pipecat" / "scenarios.py"
    return run_client([str(PIPECAT_PYTHON), str(script), json.dumps(args)], env)
