"""A real HTTP endpoint on 127.0.0.1 for tests that play a venue's REST side."""

from __future__ import annotations

import contextlib
from typing import AsyncIterator, Awaitable, Callable

from aiohttp import web


@contextlib.asynccontextmanager
async def serve_post(path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                     get: tuple[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] | None = None
                     ) -> AsyncIterator[str]:
    """Serve ``POST path`` with ``handler`` (and ``GET get[0]`` with ``get[1]``) on a free
    port; yields the URL of ``path``."""
    app = web.Application()
    app.router.add_post(path, handler)
    if get is not None:
        app.router.add_get(*get)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        await runner.cleanup()
