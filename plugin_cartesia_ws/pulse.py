"""``Pulse``: wake every waiter on each change, so each re-checks its own condition.

An ``asyncio.Event`` that is set and replaced on every ``fire()``: waiters never miss a change
and never see a stale "set". Used to wait on conditions without polling or sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Pulse:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        """Until the next ``fire()``."""
        await self._event.wait()

    async def wait_until(self, condition: Callable[[], bool], timeout: float | None = None) -> None:
        """Until ``condition()`` holds, re-checked after every ``fire()``; TimeoutError after
        ``timeout`` seconds (None: no limit)."""

        async def _loop() -> None:
            while not condition():
                await self.wait()

        await asyncio.wait_for(_loop(), timeout)
