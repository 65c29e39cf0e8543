"""Issue 22, item 2: loopback by default. The repository's livekit.yaml binds loopback only
(its key pair is public); the worker and `python -m agent token` warn when that pair is
used against any other address; and the worker's process stays quiet about PyJWT's
short-key warning for the dev pair, which it used to print as raw lines into the JSON log."""

from __future__ import annotations

import ipaddress
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from livekit import api

from agent.cli import main
from agent.preflight import dev_key_exposure
from agent.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_livekit_yaml_binds_loopback_only() -> None:
    config = yaml.safe_load((REPO / "livekit.yaml").read_text())
    addresses = config["bind_addresses"]
    assert addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses)
    assert config["keys"] == {"devkey": "secret"}  # public: which is why loopback


@pytest.mark.parametrize(
    ("url", "exposed"),
    [
        ("ws://127.0.0.1:7880", False),
        ("ws://localhost:7880", False),
        ("ws://[::1]:7880", False),
        ("ws://192.168.1.20:7880", True),
        ("wss://voice.example.com", True),
    ],
)
def test_the_dev_pair_on_a_non_loopback_url_is_a_warning(url: str, exposed: bool) -> None:
    dev = Settings(livekit_url=url, livekit_api_key="devkey", livekit_api_secret="secret")
    assert (dev_key_exposure(dev) is not None) is exposed
    real = Settings(livekit_url=url, livekit_api_key="APIkey", livekit_api_secret="x" * 40)
    assert dev_key_exposure(real) is None


def _dev_pair_at(env: pytest.MonkeyPatch, url: str, **more: str) -> None:
    settings = {"LIVEKIT_URL": url, "LIVEKIT_API_KEY": "devkey", "LIVEKIT_API_SECRET": "secret"}
    for name, value in {**settings, **more}.items():
        env.setenv(name, value)


def test_token_command_warns_about_the_dev_pair_on_the_lan(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _dev_pair_at(clean_env, "ws://192.168.1.20:7880")
    assert main(["token", "--room", "r", "--identity", "me"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: LIVEKIT_URL=ws://192.168.1.20:7880 is not a loopback")
    assert "secret" not in err.replace("devkey/secret pair", "").replace("a generated secret", "")


def test_worker_warns_and_keeps_pyjwt_quiet_for_the_dev_pair(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _dev_pair_at(clean_env, "ws://10.0.0.5:7880", CARTESIA_API_KEY="ck", OPENAI_API_KEY="ok")
    from livekit.agents import cli

    minted: list[list[warnings.WarningMessage]] = []

    def run_app(options: object) -> None:  # what LiveKit's worker does at each connection
        with warnings.catch_warnings(record=True) as seen:
            api.AccessToken("devkey", "secret").with_identity("worker").to_jwt()
        minted.append(seen)

    clean_env.setattr(cli, "run_app", run_app)
    clean_env.setattr("agent.preflight.check_livekit_sync", lambda settings: None)
    clean_env.setattr("agent.preflight.check_cartesia_sync", lambda settings: None)
    clean_env.setattr(sys, "argv", ["agent"])
    with warnings.catch_warnings():  # the filter the worker installs ends with this test
        assert main(["start"]) == 0
        assert minted == [[]]  # no InsecureKeyLengthWarning
    assert capsys.readouterr().err.startswith("warning: LIVEKIT_URL=ws://10.0.0.5:7880 is not")
