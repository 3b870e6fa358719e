"""A fake CEX on 127.0.0.1: a real websocket and HTTP server driven by a script (issue 11).

Generic: a venue's ``fake.py`` subclasses :class:`FakeVenue` with its rules
(how a client subscribes and pings, which topic a frame belongs to) and its
scripted sequence. What every fake offers:

* ``ws_url(path)`` / ``rest_url``: the servers' addresses (one aiohttp app);
* ``push(topic, frame)``: a frame to every connection subscribed to ``topic``
  (the venue's subscription rules decide who is); ``set_rest(path, body)``:
  the answer of a REST path from now on (a query is accepted and recorded);
* faults: ``drop()`` (every socket aborted without a close frame),
  ``fail_rest(path, status, n)`` (the next ``n`` answers are that HTTP status,
  429 with ``Retry-After: 0``), garbage frames via ``push`` of any text;
* ``play(steps)``: a script of ``(kind, args)`` steps run in order; ``wait_for``
  helpers let a test move on when the client has done something (no timed
  assertion: every wait is a bounded poll of a condition).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)


@dataclass
class FakeConn:
    ws: web.WebSocketResponse
    path: str
    query: dict
    topics: set = field(default_factory=set)
    pings: int = 0
    pongs: int = 0
    received: list = field(default_factory=list)
    last_client_frame: float = 0.0


class FakeVenue:
    """Override ``on_text(conn, text)`` (subscriptions, pings) and ``accepts(path)``."""

    venue = "fake"
    idle_close_s: float | None = None  # close a connection silent (no client frame) this long

    def __init__(self, *, idle_close_s: float | None = None):
        if idle_close_s is not None:
            self.idle_close_s = idle_close_s
        self.conns: list[FakeConn] = []
        self.rest: dict[str, str] = {}
        self.rest_requests: list[str] = []
        self.rest_faults: dict[str, list[int]] = {}
        self.connections_total = 0
        self.closed_idle = 0
        self.app_pings = 0  # the venue's application pings received (venue on_text counts)
        self._runner: web.AppRunner | None = None
        self._site_port = 0
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> "FakeVenue":
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._site_port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for c in list(self.conns):
            await c.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def resume(self) -> None:  # the face's fake contract (nothing paused here)
        return None

    @property
    def port(self) -> int:
        return self._site_port

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --------------------------------------------------------------- venue hooks
    def accepts(self, path: str) -> bool:
        return True

    async def on_open(self, conn: FakeConn) -> None:
        return None

    async def on_text(self, conn: FakeConn, text: str) -> None:
        raise NotImplementedError

    async def on_pong(self, conn: FakeConn) -> None:
        conn.pongs += 1

    # ------------------------------------------------------------------ http
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._ws(request)
        path = request.path
        self.rest_requests.append(path + ("?" + request.query_string if request.query_string else ""))
        faults = self.rest_faults.get(path)
        if faults:
            status = faults.pop(0)
            headers = {"Retry-After": "0"} if status == 429 else {}
            return web.Response(status=status, text="fault", headers=headers)
        body = self.rest.get(path)
        if body is None:
            return web.Response(status=404, text="unknown path")
        return web.Response(text=body, content_type="application/json")

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        conn = FakeConn(ws, request.path, dict(request.query))
        conn.last_client_frame = asyncio.get_running_loop().time()
        self.conns.append(conn)
        self.connections_total += 1
        watchdog = asyncio.create_task(self._idle_watch(conn)) if self.idle_close_s else None
        try:
            if self.accepts(request.path):
                await self.on_open(conn)
            async for msg in ws:
                conn.last_client_frame = asyncio.get_running_loop().time()
                if msg.type == aiohttp.WSMsgType.TEXT:
                    conn.received.append(msg.data)
                    await self.on_text(conn, msg.data)
                elif msg.type == aiohttp.WSMsgType.PING:
                    conn.pings += 1
                    await ws.pong(msg.data)
                elif msg.type == aiohttp.WSMsgType.PONG:
                    await self.on_pong(conn)
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if conn in self.conns:
                self.conns.remove(conn)
        return ws

    async def _idle_watch(self, conn: FakeConn) -> None:
        loop = asyncio.get_running_loop()
        while not conn.ws.closed:
            await asyncio.sleep(self.idle_close_s / 4)
            if loop.time() - conn.last_client_frame > self.idle_close_s:
                self.closed_idle += 1
                await conn.ws.close(code=1000, message=b"idle")
                return

    # ---------------------------------------------------------------- script
    def set_rest(self, path: str, body: str) -> None:
        self.rest[path] = body

    def fail_rest(self, path: str, status: int, n: int = 1) -> None:
        self.rest_faults.setdefault(path, []).extend([status] * n)

    def _reads(self, path: str) -> int:
        return sum(r.partition("?")[0] == path for r in self.rest_requests)

    def subscribed(self, topic: str) -> list[FakeConn]:
        return [c for c in self.conns if topic in c.topics and not c.ws.closed]

    async def push(self, topic: str, frame: str) -> int:
        """Send ``frame`` to every connection subscribed to ``topic``; how many got it."""
        n = 0
        for c in self.subscribed(topic):
            try:
                await c.ws.send_str(frame)
                n += 1
            except (ConnectionResetError, RuntimeError):
                pass
        return n

    async def drop(self) -> None:
        """Abort every socket without a close frame (the client sees 1006)."""
        for c in list(self.conns):
            transport = c.ws._req.transport if c.ws._req is not None else None
            if transport is not None:
                transport.abort()
            self.conns.remove(c)

    async def wait_for(self, cond, what: str, timeout_s: float = 10.0) -> None:
        """Poll ``cond()`` until true (bounded); raises TimeoutError naming ``what``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while not cond():
            if loop.time() > end:
                raise TimeoutError(f"fake {self.venue}: {what} did not happen in {timeout_s} s")
            await asyncio.sleep(0.01)

    async def wait_subscribed(self, topic: str, n: int = 1, timeout_s: float = 10.0) -> None:
        await self.wait_for(lambda: len(self.subscribed(topic)) >= n, f"a subscription to {topic}",
                            timeout_s)

    async def play(self, steps: list[tuple[str, tuple]]) -> None:
        """Run a script: ``("push", (topic, frame))`` (once subscribed), ``("preset",
        (path, body))`` (a REST answer, no wait), ``("rest", (path, body))`` (the
        answer, then wait for the client's next read of it), ``("drop", ())``,
        ``("fail_rest", (path, status, n))``, ``("wait_subscribed", (topic,))``."""
        for kind, args in steps:
            if kind == "push":
                await self.wait_subscribed(args[0])
                await self.push(*args)
            elif kind == "preset":
                self.set_rest(*args)
            elif kind == "rest":  # the new answer, then wait until the client has read it
                path = args[0]
                seen = self._reads(path)
                self.set_rest(*args)
                await self.wait_for(lambda: self._reads(path) > seen, f"a read of {path}")
            elif kind == "drop":
                await self.drop()
            elif kind == "fail_rest":
                self.fail_rest(*args)
            elif kind == "wait_subscribed":
                await self.wait_subscribed(*args)
            else:
                raise ValueError(f"unknown script step {kind!r}")
