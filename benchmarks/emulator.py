"""The emulator as the benchmarks run it: in its own process, with a latency model like
Cartesia's, its admin API, its CPU time and memory."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import psutil

from plugin_cartesia_ws.emulator import EmulatorProcess

# A latency model like Cartesia's (docs/cartesia-protocol.md, section 7): 90 ms to first
# audio per generation, 3x faster than real time, 80 ms chunks. The tone voice is deterministic and
# cheap, so the emulator's own CPU stays small next to the client's.
EMULATOR_TTFA_S = 0.090
EMULATOR_ARGS = (
    "--ttfa-ms",
    str(EMULATOR_TTFA_S * 1000),
    "--rtf",
    "3",
    "--chunk-ms",
    "80",
    "--voice",
    "tone",
    "--accept-any-key",
    "--log-level",
    "WARNING",
)

# The emulator's own cyclic garbage collector pauses its event loop for 30-140 ms under load
# (measured: a full collection every few seconds at 100 streams), which stalls every context
# at once, whichever engine is being measured. It stands in for Cartesia's servers, so its
# pauses are not either plugin's latency: it runs with the collector off (``--no-gc``;
# reference counting still frees almost everything; its RSS is reported at the end).


class Emulator:
    """The emulator in its own process, its admin API, its CPU time and memory."""

    def __init__(self, *extra_args: str, base: tuple[str, ...] = EMULATOR_ARGS) -> None:
        """``base``: the latency model and voice (the pacing benchmark brings a profile's)."""
        self._base = base
        self._process = EmulatorProcess(*base, "--log-level", "WARNING", "--no-gc", *extra_args)
        self._http: aiohttp.ClientSession | None = None
        self._ps: psutil.Process | None = None

    @property
    def url(self) -> str:
        return self._process.url

    @property
    def args(self) -> list[str]:
        return list(self._base)

    async def __aenter__(self) -> Emulator:
        await asyncio.to_thread(self._process.__enter__)  # blocks until its URL is printed
        assert self._process.proc is not None
        self._ps = psutil.Process(self._process.proc.pid)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()
        await asyncio.to_thread(self._process.__exit__, None, None, None)

    def rss_mib(self) -> float:
        assert self._ps is not None
        return round(self._ps.memory_info().rss / 2**20, 1)

    def cpu_seconds(self) -> float:
        assert self._ps is not None
        times = self._ps.cpu_times()
        return times.user + times.system

    async def _get(self, path: str) -> Any:
        assert self._http is not None
        async with self._http.get(self.url + path) as resp:
            if resp.status == 404:
                return None
            resp.raise_for_status()
            return await resp.json()

    async def context(self, context_id: str) -> dict[str, Any] | None:
        """What the emulator received and sent for one context (None if it never saw it)."""
        return await self._get(f"/_emulator/contexts/{context_id}")

    async def stats(self) -> dict[str, Any]:
        return await self._get("/_emulator/stats")

    async def spend(self) -> dict[str, Any]:
        """Characters billed (Cartesia: ~1 credit each): total, by_socket, by_context, http."""
        return await self._get("/_emulator/spend")

    async def reset(self) -> None:
        """Forget records and counters (sockets_opened starts again from 0)."""
        assert self._http is not None
        async with self._http.post(self.url + "/_emulator/reset") as resp:
            resp.raise_for_status()
