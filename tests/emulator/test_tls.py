"""The emulator over TLS: a certificate made on the fly (or given), the CA clients must trust,
and the command line printing where that CA is."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from plugin_cartesia_ws.emulator import CartesiaEmulator, EmulatorProcess
from plugin_cartesia_ws.emulator.tls import make_certificates


async def status(url: str, ssl_context: ssl.SSLContext | bool) -> dict:
    async with aiohttp.ClientSession() as http, http.get(url + "/", ssl=ssl_context) as resp:
        return await resp.json()


async def test_tls_emulator_serves_https_and_wss_to_a_client_trusting_its_ca() -> None:
    async with CartesiaEmulator(tls=True) as emu:
        assert emu.url.startswith("https://") and emu.ws_url.startswith("wss://")
        assert emu.ca_path is not None and Path(emu.ca_path).exists()
        assert (await status(emu.url, emu.client_ssl_context()))["ok"] is True
        ca_dir = Path(emu.ca_path).parent
    assert not ca_dir.exists()  # the temporary CA goes with the emulator


async def test_a_client_that_does_not_trust_the_ca_is_refused() -> None:
    async with CartesiaEmulator(tls=True) as emu:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await status(emu.url, ssl.create_default_context())


async def test_given_certificate_files_and_a_kept_ca(tmp_path: Path) -> None:
    files = make_certificates(tmp_path)
    again = make_certificates(tmp_path)
    assert again.ca.read_bytes() == files.ca.read_bytes()  # reused, so it can stay trusted
    async with CartesiaEmulator(tls_cert=str(files.cert), tls_key=str(files.key)) as emu:
        assert emu.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(files.ca))
        assert (await status(emu.url, context))["ok"] is True
    async with CartesiaEmulator(tls=True, tls_dir=str(tmp_path)) as emu:
        assert emu.ca_path == str(files.ca)
    assert files.ca.exists()  # a kept directory is not removed


def test_command_line_prints_the_ca_to_trust() -> None:
    with EmulatorProcess("--tls", "--voice", "tone") as proc:
        assert proc.url.startswith("https://") and proc.ca_path is not None
        context = ssl.create_default_context(cafile=proc.ca_path)
        with urllib.request.urlopen(proc.url + "/", context=context, timeout=10) as resp:
            assert json.load(resp)["ok"] is True
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(proc.url + "/", context=ssl.create_default_context(), timeout=10)


async def test_tls_and_plain_on_the_same_port() -> None:
    """Issue 22: clients that dial wss:// for an http:// base URL (Cartesia's JS SDK,
    LiveKit's Node plugin) and clients that dial what they are given share one emulator."""
    async with CartesiaEmulator(tls=True) as emu:
        assert emu.plain_url == "http://" + emu.url.removeprefix("https://")
        assert (await status(emu.plain_url, False))["ok"] is True
        assert (await status(emu.url, emu.client_ssl_context()))["ok"] is True
        ws_plain = emu.plain_url.replace("http", "ws", 1) + "/tts/websocket"
        headers = {"X-API-Key": emu.api_key, "Cartesia-Version": "2026-03-01"}
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(ws_plain, headers=headers) as ws:
                assert not ws.closed
            async with http.ws_connect(
                emu.ws_url, headers=headers, ssl=emu.client_ssl_context()
            ) as ws:
                assert not ws.closed
        assert emu.sockets_opened == 2
