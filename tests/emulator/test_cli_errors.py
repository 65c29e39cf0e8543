"""`python -m plugin_cartesia_ws.emulator` without an optional package: one line naming
the install command that works from a checkout, exit status 2, no traceback."""

from __future__ import annotations

import ctypes.util
import sys

import pytest

from plugin_cartesia_ws.emulator import __main__ as cli
from plugin_cartesia_ws.emulator import espeak


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_voice_espeak_without_espeak(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if ctypes.util.find_library("espeak-ng"):
        pytest.skip("this machine has a system libespeak-ng: espeak cannot be missing here")
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # as if the extra were missing
    monkeypatch.delenv("ESPEAK_NG_LIBRARY", raising=False)
    monkeypatch.setattr(espeak._Espeak, "_instance", None)  # loaded by an earlier test
    err = _run(["--voice", "espeak", "--port", "0"], capsys)
    assert err.startswith("error: --voice espeak: libespeak-ng could not be loaded")
    assert 'pip install -e ".[espeak]"' in err and "plugin-cartesia-ws[" not in err


def test_tls_without_cryptography(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)  # as if the extra were missing
    err = _run(["--voice", "tone", "--tls", "--port", "0"], capsys)
    assert err.startswith("error: --tls without --cert/--key needs the 'cryptography' package")
    assert 'pip install -e ".[tls]"' in err and "plugin-cartesia-ws[" not in err
