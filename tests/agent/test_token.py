"""`python -m agent token`: the printed token verifies and carries room, identity, dispatch.
Also the CLI's error handling (one line, exit 2) and the `simulate` placeholder."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from livekit import api

from agent.cli import main

REPO = Path(__file__).resolve().parents[2]
KEY, SECRET, URL = (
    "APItestkey",
    "a-test-secret-that-is-at-least-32-characters",
    "ws://127.0.0.1:7880",
)


def _parse(stdout: str) -> tuple[str, str]:
    lines = dict(line.split(": ", 1) for line in stdout.strip().splitlines())
    assert set(lines) == {"url", "token"}
    return lines["url"], lines["token"]


def _run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "AGENT_"))}
    full_env.update(env, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_token_command_output_verifies(tmp_path: Path) -> None:
    env = {"LIVEKIT_URL": URL, "LIVEKIT_API_KEY": KEY, "LIVEKIT_API_SECRET": SECRET}
    proc = _run_cli(
        [
            "token",
            "--room",
            "demo-room",
            "--identity",
            "alice",
            "--agent",
            "helper",
            "--ttl",
            "600",
        ],
        env,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    url, token = _parse(proc.stdout)
    assert url == URL
    claims = api.TokenVerifier(KEY, SECRET).verify(token)
    assert claims.identity == "alice"
    assert claims.video is not None
    assert claims.video.room_join is True
    assert claims.video.room == "demo-room"
    assert claims.room_config is not None
    assert [a.agent_name for a in claims.room_config.agents] == ["helper"]
    assert "helper" in proc.stderr  # the hint names the dispatched agent


def test_token_settings_come_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"LIVEKIT_URL={URL}\nLIVEKIT_API_KEY={KEY}\nLIVEKIT_API_SECRET='{SECRET}'\nAGENT_NAME=from-env-file\n"
    )
    proc = _run_cli(["token", "--room", "r1", "--identity", "bob"], {}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    _, token = _parse(proc.stdout)
    claims = api.TokenVerifier(KEY, SECRET).verify(token)
    assert claims.identity == "bob" and claims.video is not None and claims.video.room == "r1"
    # AGENT_NAME is the default --agent: the token dispatches the worker's agent
    assert claims.room_config is not None
    assert [a.agent_name for a in claims.room_config.agents] == ["from-env-file"]


def test_token_does_not_verify_with_another_secret(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "LIVEKIT_URL": URL,
        "LIVEKIT_API_KEY": KEY,
        "LIVEKIT_API_SECRET": SECRET,
    }.items():
        clean_env.setenv(name, value)
    assert main(["token", "--room", "r", "--identity", "i"]) == 0
    _, token = _parse(capsys.readouterr().out)
    with pytest.raises(Exception, match="Signature"):
        api.TokenVerifier(KEY, SECRET + "x").verify(token)


def test_token_without_agent_has_no_dispatch_and_honours_ttl(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "LIVEKIT_URL": URL,
        "LIVEKIT_API_KEY": KEY,
        "LIVEKIT_API_SECRET": SECRET,
        "AGENT_NAME": "helper",
    }.items():
        clean_env.setenv(name, value)
    before = datetime.datetime.now(datetime.UTC).timestamp()
    assert main(["token", "--room", "r", "--identity", "i", "--agent", "", "--ttl", "120"]) == 0
    _, token = _parse(capsys.readouterr().out)
    claims = api.TokenVerifier(KEY, SECRET).verify(token)
    assert claims.room_config is None  # --agent '' overrides AGENT_NAME
    import jwt

    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert before + 110 <= exp <= before + 130


def test_token_with_missing_settings_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    proc = _run_cli(["token", "--room", "r", "--identity", "i"], {"LIVEKIT_API_KEY": KEY}, tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == (
        "error: LIVEKIT_URL, LIVEKIT_API_SECRET are not set: "
        "export them or put them in .env (see .env.example)"
    )
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["start", "dev", "connect"])
def test_worker_commands_check_settings_first(
    command: str, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET are not set")
    assert "\n" not in err


def test_invalid_setting_is_one_line_too(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("TTS_CHUNKING", "paragraph")
    assert main(["start"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == "error: TTS_CHUNKING='paragraph' is not valid: use one of clause, sentence, tokens"
    )


def test_worker_commands_delegate_to_livekit_cli(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "LIVEKIT_URL": URL,
        "LIVEKIT_API_KEY": KEY,
        "LIVEKIT_API_SECRET": SECRET,
        "CARTESIA_API_KEY": "ck",
        "OPENAI_API_KEY": "ok",
        "AGENT_NAME": "helper",
    }.items():
        clean_env.setenv(name, value)
    calls: list[tuple[list[str], object]] = []

    def fake_run_app(options: object) -> None:
        calls.append((list(sys.argv), options))

    from livekit.agents import cli

    clean_env.setattr(cli, "run_app", fake_run_app)
    checked: list[object] = []  # the pre-flight server check (tests/rooms runs it for real)
    clean_env.setattr("agent.preflight.check_livekit_sync", checked.append)
    clean_env.setattr("agent.preflight.check_cartesia_sync", checked.append)
    clean_env.setattr(sys, "argv", ["/path/agent/__main__.py"])
    assert main(["start", "--log-level", "info"]) == 0
    # the LiveKit check, then the Cartesia check (tests/agent/test_startup_checks.py)
    assert [getattr(s, "livekit_url", None) for s in checked] == [URL, URL]
    ((argv, options),) = calls
    # LiveKit's CLI reads sys.argv[1:]: exactly the command and its own options
    assert argv == ["/path/agent/__main__.py", "start", "--log-level", "info"]
    assert options.agent_name == "helper"  # type: ignore[attr-defined]
    assert options.ws_url == URL  # type: ignore[attr-defined]


def test_console_needs_no_livekit_server(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    assert main(["console"]) == 2  # still needs the Cartesia key, and says so
    assert capsys.readouterr().err.strip() == (
        "error: CARTESIA_API_KEY is not set: export it or put it in .env (see .env.example)"
    )
    from livekit.agents import cli

    ran: list[object] = []
    clean_env.setattr(cli, "run_app", ran.append)
    clean_env.setenv("CARTESIA_API_KEY", "ck")
    clean_env.setenv("CARTESIA_CHECK", "off")  # no Cartesia here either
    assert main(["console", "--text"]) == 0
    assert len(ran) == 1


def test_simulate_missing_module_is_a_clear_error(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setitem(sys.modules, "agent.simulate", None)  # as if agent/simulate/ were absent
    assert main(["simulate", "--in", "x.wav"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: `simulate` is not available in this version (agent.simulate is missing)"


def test_simulate_delegates_its_arguments(clean_env: pytest.MonkeyPatch) -> None:
    got: list[list[str]] = []
    module = types.ModuleType("agent.simulate")
    module.main = lambda argv: got.append(argv) or 3  # type: ignore[attr-defined]
    clean_env.setitem(sys.modules, "agent.simulate", module)
    assert main(["simulate", "--in", "x.wav", "--help"]) == 3
    assert got == [["--in", "x.wav", "--help"]]


def test_no_command_prints_usage(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    for command in ("dev", "start", "console", "connect", "token", "simulate"):
        assert command in err


@pytest.mark.parametrize(
    ("key", "secret", "warned"),
    [
        ("devkey", "secret", False),  # livekit-server --dev's public pair: no noise
        ("APIrealkey", "short-real-secret", True),  # a real short secret: keep PyJWT's warning
    ],
)
def test_token_warns_about_short_secrets_except_the_dev_pair(
    tmp_path: Path, key: str, secret: str, warned: bool
) -> None:
    env = {"LIVEKIT_URL": URL, "LIVEKIT_API_KEY": key, "LIVEKIT_API_SECRET": secret}
    proc = _run_cli(["token", "--room", "r", "--identity", "me"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    _parse(proc.stdout)
    assert ("InsecureKeyLengthWarning" in proc.stderr) is warned, proc.stderr
    assert secret not in proc.stderr
