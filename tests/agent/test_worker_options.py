"""Worker options for running at scale: it never gives up on its server, and the thread
executor can build either TTS plugin."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from livekit.agents.worker import ServerEnvOption

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


def test_with_job_slots_every_offer_reaches_the_slot_count() -> None:
    """LiveKit's worker refuses an offer itself when its load reaches the threshold, before
    and without calling request_fnc; a room refused there is never dispatched again (found
    in the cluster burst test: 'no worker available to handle job', no decline logged). With
    WORKER_MAX_JOBS the threshold is out of reach and JobSlots decides every offer."""
    opts = worker.server_options(Settings(worker_max_jobs=2))
    assert ServerEnvOption.getvalue(opts.load_threshold, devmode=False) == math.inf
    assert opts.load_fnc is not None and opts.request_fnc is not None
