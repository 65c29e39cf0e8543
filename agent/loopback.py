"""Serving an aiohttp app on 127.0.0.1: the local stand-ins and the playground page are for
this machine only (the playground's token endpoint must not be reachable from the network)."""

from __future__ import annotations

from aiohttp import web


async def serve_on_loopback(app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    """Start `app` on 127.0.0.1:`port` (0: a free one); return its runner and the port."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, int(runner.addresses[0][1])
