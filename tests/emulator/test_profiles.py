"""The emulator's profiles: plain by default, ``cartesia`` behaving like the service, chosen
in Python, on the command line or by the environment; explicit options win."""

from __future__ import annotations

import aiohttp
import pytest

from benchmarks.emulator import Emulator
from plugin_cartesia_ws.emulator import (
    CARTESIA_LATENCY,
    CARTESIA_RULES,
    PROFILE_ENV,
    CartesiaEmulator,
    ContextRules,
    EmulatorConfig,
    LatencyModel,
)
from plugin_cartesia_ws.emulator import __main__ as cli

from .test_service_orders import FAST, connect, flush_ids, gen, until_done


def test_plain_is_the_default_and_cartesia_sets_rules_and_latency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    plain = CartesiaEmulator().config
    assert plain.profile == "plain" and plain.rules == ContextRules()
    assert plain.latency == LatencyModel()
    real = CartesiaEmulator(profile="cartesia").config
    assert (real.profile, real.rules, real.latency) == (
        "cartesia",
        CARTESIA_RULES,
        CARTESIA_LATENCY,
    )
    assert real.rules.auto_flush_done and real.rules.expiry == "ignore"
    assert real.rules.done_delay_s == (0.0, 1.0) and real.rules.expiry_s == 1.0
    with pytest.raises(ValueError, match="unknown emulator profile"):
        CartesiaEmulator(profile="nope")


def test_explicit_options_win_over_the_profile_and_the_environment_chooses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PROFILE_ENV, "cartesia")
    config = CartesiaEmulator(latency=FAST).config
    assert config.profile == "cartesia" and config.latency == FAST
    assert config.rules == CARTESIA_RULES
    assert CartesiaEmulator(profile="plain").config.rules == ContextRules()
    whole = EmulatorConfig(port=1)
    assert CartesiaEmulator(whole).config == whole  # a whole config is taken as given


def test_the_cli_profile_and_the_flags_that_override_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    assert cli.config_from_args(cli.parse_args([])).latency == LatencyModel()
    config = cli.config_from_args(cli.parse_args(["--profile", "cartesia", "--rtf", "10"]))
    assert config.latency.realtime_factor == 10 and config.latency.ttfa_ms == 190
    assert config.rules == CARTESIA_RULES
    config = cli.config_from_args(
        cli.parse_args(["--expiry", "error", "--cancel-inflight", "stop"])
    )
    assert (config.rules.expiry, config.rules.cancel_inflight) == ("error", "stop")
    assert not config.rules.auto_flush_done
    monkeypatch.setenv(PROFILE_ENV, "cartesia")
    assert cli.config_from_args(cli.parse_args([])).profile == "cartesia"


async def test_a_turn_on_the_cartesia_profile() -> None:
    async with (
        CartesiaEmulator(profile="cartesia", latency=FAST) as emu,
        aiohttp.ClientSession() as http,
        await connect(http, emu, version="2025-04-16") as ws,
    ):
        for text in ("One. ", "Two. "):
            await ws.send_json(gen("c", text))
        await ws.send_json(gen("c", "", flush=True))  # the client's first flush
        await ws.send_json(gen("c", "", more=False))
        events = await until_done(ws)
        assert flush_ids(events) == [1, 2, 3]  # two unsolicited, then the client's
        assert events[-1]["type"] == "done"
        assert 0.0 <= (emu.record("c").done_delay_s or 0.0) <= 1.0
        # a context left without input expires 1 s after its last audio; input is then ignored
        await ws.send_json(gen("d", "Three. "))
        await emu.wait_for(lambda: emu.record("d").phase == "expired", timeout=10)
        await ws.send_json(gen("d", "Four. ", more=False))
        await ws.send_json(gen("e", "Five.", more=False))
        await emu.wait_for(lambda: emu.record("e").done_sent, timeout=10)
        assert not emu.record("d").done_sent and emu.spend().by_context["d"] == len("Three. ")


async def test_the_cartesia_profile_in_another_process_and_its_spend() -> None:
    async with Emulator("--profile", "cartesia") as emu, aiohttp.ClientSession() as http:
        headers = {"X-API-Key": "any", "Cartesia-Version": "2026-03-01"}
        async with http.ws_connect(
            emu.url.replace("http", "ws") + "/tts/websocket", headers=headers
        ) as ws:
            await ws.send_json(gen("c", "One. "))
            await ws.send_json(gen("c", "Two.", more=False))
            events = await until_done(ws)
        assert flush_ids(events) == [1, 2]  # unsolicited: the profile's rules
        spend = await emu.spend()
        assert spend["total"] == len("One. Two.") and spend["by_context"] == {"c": 9}
