"""Worker options for running at scale: it never gives up on its server, and the thread
executor can build either TTS plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agent import worker
from agent.settings import Settings

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_worker_keeps_reconnecting_when_its_server_is_gone() -> None:
    """LiveKit gives up after max_retry tries (16, ~2 minutes) and then exits with status
    0, so a supervisor that restarts failed processes never brings it back."""
    opts = worker.server_options(Settings())
    assert opts.max_retry == worker.RECONNECT_FOREVER
    # at LiveKit's longest pause between tries (10 s), that is longer than any outage
    assert opts.max_retry * 10 > 100 * 365 * 24 * 3600


def test_the_official_plugin_works_in_a_job_thread() -> None:
    """WORKER_JOB_EXECUTOR=thread with TTS_PLUGIN=livekit: a job's thread builds the TTS, and
    LiveKit plugins may only register on the main thread. Found by the density benchmark
    (every room failed: "Plugins must be registered on the main thread"). In a fresh
    interpreter, where nothing has imported the plugin yet."""
    code = """
import threading
from agent import worker
from agent.settings import Settings
settings = Settings(tts_plugin="livekit", cartesia_api_key="k", worker_job_executor="thread")
worker.server_options(settings)
errors = []
def job():
    try:
        worker.build_tts(settings)
    except Exception as e:
        errors.append(repr(e))
thread = threading.Thread(target=job)
thread.start()
thread.join()
print(errors)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip() == "[]", out.stdout
