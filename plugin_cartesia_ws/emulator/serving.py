"""Starting an aiohttp app on a host and port and learning the port it got.

The emulator serves this way, and so do the repository's local stand-ins (the OpenAI-
compatible fake, the playground page); it lives here because the wheel ships only
`plugin_cartesia_ws`.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiohttp import web

from .sniffing import SniffingSite


async def start_site(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl_context: ssl.SSLContext | None = None,
    log_requests: bool = False,
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host``:``port`` (0: a free port); return its runner (``cleanup()``
    stops it) and the port. Loopback by default: these servers are for this machine. With
    ``ssl_context`` the port serves TLS and plain HTTP both (``sniffing``)."""
    quiet: dict[str, Any] = {} if log_requests else {"access_log": None}
    runner = web.AppRunner(app, handle_signals=False, **quiet)
    await runner.setup()
    if ssl_context is not None:
        await SniffingSite(runner, host, port, ssl_context).start()
    else:
        await web.TCPSite(runner, host, port).start()
    return runner, int(runner.addresses[0][1])
