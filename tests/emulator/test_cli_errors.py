"""`python -m plugin_cartesia_ws.emulator` without an optional package: one line naming
the install command that works from a checkout, exit status 2, no traceback."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from plugin_cartesia_ws.emulator import __main__ as cli

REPO = Path(__file__).resolve().parents[2]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_voice_espeak_without_espeak(tmp_path: Path) -> None:
    """In a child process: libespeak-ng, once loaded into this one by other tests, stays
    loaded (dlopen finds it by name), and initialising it again breaks its global state."""
    if ctypes.util.find_library("espeak-ng"):
        pytest.skip("this machine has a system libespeak-ng: espeak cannot be missing here")
    script = (
        "import sys; sys.modules['espeakng_loader'] = None\n"  # as if the extra were missing
        "from plugin_cartesia_ws.emulator.__main__ import main\n"
        "main(['--voice', 'espeak', '--port', '0'])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESPEAK_NG_")}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("error: --voice espeak: libespeak-ng could not be loaded")
    assert 'pip install -e ".[espeak]"' in err and "plugin-cartesia-ws[" not in err


def test_tls_without_cryptography(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)  # as if the extra were missing
    err = _run(["--voice", "tone", "--tls", "--port", "0"], capsys)
    assert err.startswith("error: --tls without --cert/--key needs the 'cryptography' package")
    assert 'pip install -e ".[tls]"' in err and "plugin-cartesia-ws[" not in err


def test_a_taken_port_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = _run(["--voice", "tone", "--port", str(port)], capsys)
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}:")


def test_voices_limits_the_accepted_voice_ids() -> None:
    """--voices sets the voice ids accepted (more cases: tests/emulator/test_voices.py)."""
    catalogue = cli.config_from_args(cli.parse_args(["--voices", "a, b"])).catalogue
    assert catalogue.voices == frozenset({"a", "b"})
