"""A fake Lighter: a real websocket + REST server on 127.0.0.1 playing a captured cascade.

It plays what :func:`adlmon.venues.lighter.sim.simulate` wrote (or any Lighter
capture: ``lighter-*.capture.jsonl[.lz4]``) with the venue's rules
(venues-wire.md §2.1, §2.2, §2.4, §2.5):

* ``/stream``: ``{"type":"connected","session_id"}`` on connect;
  ``{"type":"subscribe","channel":"trade/{id}"|"market_stats/all"}`` answered
  by ``subscribed/trade`` (the market's last ``snapshot_trades`` trades, both
  arrays) or ``subscribed/market_stats`` (the current marks), then the
  recorded ``update/…`` frames as their time comes, text as recorded; an app
  ``{"type":"ping"}`` gets ``{"type":"pong"}``; ``unsubscribe``;
* the rules it enforces: a socket without a client frame for ``idle_timeout_s``
  is closed (1000; the venue's 2-minute rule); more than
  ``subscriptions_per_connection`` on one socket or ``subscriptions_per_ip``
  in total, or more subscribes from one IP within a second than one per
  ``subscribe_interval_s`` (plus one), are refused with ``{"type":"error","code",...}`` and counted
  (:attr:`violations`); with ``server_ping_s`` it also pings the client and
  counts the pongs;
* REST: ``/api/v1/orderBooks``, ``/api/v1/systemConfig`` and
  ``/api/v1/account`` from the capture (the last recorded answer at or before
  the venue time); ``/api/v1/recentTrades?market_id=&limit=`` from the trades
  played so far, newest first; a weighted budget per minute (``rest_weight_per_min``,
  600 for trade lists, 300 otherwise) answered 429 with ``Retry-After`` when spent.

Time: venue time starts at the capture's first record and runs ``speed`` times
faster than the wall clock; ``paused=True`` holds it until :meth:`resume`
(:meth:`pause` holds it again).

Faults (the fault matrix): :meth:`drop_connections` (1006 without a close
frame, or a close code), :meth:`stall` (data stops, pongs go on),
:meth:`mute_pongs`, :meth:`resend` (the last update frames again),
:meth:`rate_limit_close` (close 1008 and answer the next upgrades 429 with
``Retry-After``), :meth:`reject_upgrades`, :meth:`send_raw`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from adlmon.io.capture import REST, WS, decode_line
from adlmon.venues.lighter.parse import TRADE_TYPES

log = logging.getLogger(__name__)

RATE_LIMIT_CLOSE = 1008  # the venue's close code for a rate limit is not documented (GUESS)


def read_capture(directory: str | Path) -> list:
    """Every capture record of ``directory`` in file-name (time) order."""
    import lz4.frame

    out = []
    for path in sorted(Path(directory).glob("lighter-*.capture.jsonl*")):
        raw = lz4.frame.decompress(path.read_bytes()) if path.suffix == ".lz4" else path.read_bytes()
        out += [decode_line(line) for line in raw.splitlines() if line.strip()]
    return out


class _Conn:
    _ids = itertools.count(1)

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, now: float):
        self.id = next(self._ids)
        self.ws = ws
        self.request = request
        self.ip = request.remote or ""
        self.subs: set[str] = set()
        self.last_client = now
        self.mute_data = False
        self.mute_pongs = False


class FakeLighter:
    """See the module docstring. ``await start()``, ``await stop()``; ``ws_url``, ``rest_url``."""

    def __init__(self, cascade_dir: str | Path, *, speed: float = 1.0, paused: bool = False,
                 host: str = "127.0.0.1", port: int = 0, snapshot_trades: int = 50,
                 idle_timeout_s: float = 120.0, subscriptions_per_connection: int = 100,
                 subscriptions_per_ip: int = 1000, subscribe_interval_s: float = 0.0,
                 server_ping_s: float | None = None, rest_weight_per_min: int = 24000,
                 history: int = 1000):
        records = read_capture(cascade_dir)
        if not records:
            raise ValueError(f"{cascade_dir}: no lighter capture files")
        self.t0 = records[0].t_ms
        self.timeline: list[tuple[int, str, Any]] = []  # (t, channel, frame text) | (t, "rest", (path, text))
        self.rest_static: dict[str, str] = {}
        for r in records:
            if r.kind == WS:
                obj = orjson.loads(r.frame)
                if str(obj.get("type", "")).startswith("update/"):
                    self.timeline.append((r.t_ms, obj.get("channel", ""), r.frame))
                elif obj.get("type") == "subscribed/market_stats":
                    self.timeline.append((r.t_ms, "market_stats:all", r.frame))
            elif r.kind == REST:
                path = str(r.extra.get("req", ""))
                if path.startswith("/api/v1/account"):
                    self.timeline.append((r.t_ms, "rest", (path, r.frame)))
                else:
                    self.rest_static.setdefault(path.split("?")[0], r.frame)
        self.timeline.sort(key=lambda x: x[0])  # stable: recorded order within a time
        self.speed = speed
        self.host = host
        self.port = port
        self.snapshot_trades = snapshot_trades
        self.idle_timeout_s = idle_timeout_s
        self.subscriptions_per_connection = subscriptions_per_connection
        self.subscriptions_per_ip = subscriptions_per_ip
        self.subscribe_interval_s = subscribe_interval_s
        self.server_ping_s = server_ping_s
        self.rest_weight_per_min = rest_weight_per_min
        self._paused = paused
        self._clock_base_ms = self.t0
        self._clock_wall: float | None = None
        self.conns: dict[int, _Conn] = {}
        self.trades: dict[int, deque] = defaultdict(lambda: deque(maxlen=history))
        self.accounts: dict[str, str] = {}  # account request path -> last answer played
        self.stats_frame: dict | None = None  # the last market_stats frame played
        self.sent_updates: deque[tuple[str, str]] = deque(maxlen=1000)
        self.next_item = 0
        self.done = asyncio.Event()
        self.resumed = asyncio.Event()
        # faults and counters
        self.reject: deque[tuple[int, dict]] = deque()
        self.upgrades = 0
        self.rejected = 0
        self.pings = 0
        self.pongs = 0
        self.subscribes = 0
        self.frames_sent = 0
        self.idle_closes = 0
        self.violations: dict[str, int] = defaultdict(int)
        self.rest_requests: dict[str, int] = defaultdict(int)
        self._rest_spent: deque[tuple[float, int]] = deque()
        self._subscribe_times: dict[str, deque] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._tasks: list[asyncio.Task] = []
        self._apply_rest_until(self.t0)

    # ---------------------------------------------------------------- clock
    def venue_now_ms(self) -> int:
        if self._paused or self._clock_wall is None:
            return self._clock_base_ms
        loop = asyncio.get_running_loop()
        return int(self._clock_base_ms + (loop.time() - self._clock_wall) * 1000 * self.speed)

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._clock_wall = asyncio.get_running_loop().time()
            self.resumed.set()

    def pause(self) -> None:
        if not self._paused:
            self._clock_base_ms = self.venue_now_ms()
            self._paused = True
            self.resumed.clear()

    @property
    def end_ms(self) -> int:
        return self.timeline[-1][0] if self.timeline else self.t0

    # ------------------------------------------------------------ lifecycle
    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/stream"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> "FakeLighter":
        app = web.Application()
        app.router.add_get("/stream", self._ws_handler)
        app.router.add_get("/api/v1/{name}", self._rest_handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        self.port = self._site._server.sockets[0].getsockname()[1]
        if not self._paused:
            self._clock_wall = asyncio.get_running_loop().time()
            self.resumed.set()
        self._tasks.append(asyncio.create_task(self._play(), name="fake-lighter-player"))
        self._tasks.append(asyncio.create_task(self._keepalive(), name="fake-lighter-keepalive"))
        return self

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.drop_connections(None)
        if self._runner is not None:
            await self._runner.cleanup()

    # -------------------------------------------------------------- faults
    async def drop_connections(self, code: int | None = None) -> int:
        """Close every connection: ``None`` = TCP reset without a close frame (1006)."""
        conns = list(self.conns.values())
        for c in conns:
            if code is None:
                if c.request.transport is not None:
                    c.request.transport.abort()
            else:
                await c.ws.close(code=code, message=b"fake lighter")
        return len(conns)

    def stall(self) -> int:
        """Open connections stop getting data (pongs still answered)."""
        for c in self.conns.values():
            c.mute_data = True
        return len(self.conns)

    def mute_pongs(self) -> None:
        for c in self.conns.values():
            c.mute_pongs = c.mute_data = True

    async def resend(self, n: int = 20) -> int:
        """Send the last ``n`` update frames again to their subscribers (duplicates)."""
        frames = list(self.sent_updates)[-n:]
        for channel, text in frames:
            await self._broadcast(channel, text)
        return len(frames)

    def reject_upgrades(self, n: int, status: int = 429, retry_after: str | None = "1") -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        for _ in range(n):
            self.reject.append((status, headers))

    async def rate_limit_close(self, retry_after: str = "1", upgrades: int = 1) -> int:
        """What a venue does to a client over its limits: close 1008, then 429 on reconnect."""
        self.reject_upgrades(upgrades, 429, retry_after)
        return await self.drop_connections(RATE_LIMIT_CLOSE)

    async def send_raw(self, text: str) -> None:
        for c in list(self.conns.values()):
            await self._send(c, text)

    # ------------------------------------------------------------ playback
    def _apply_rest_until(self, t: int) -> None:
        """Account answers recorded at or before ``t`` become the current ones."""
        while self.next_item < len(self.timeline) and self.timeline[self.next_item][1] == "rest" \
                and self.timeline[self.next_item][0] <= t:
            path, text = self.timeline[self.next_item][2]
            self.accounts[path] = text
            self.next_item += 1

    async def _play(self) -> None:
        while self.next_item < len(self.timeline):
            await self.resumed.wait()
            t, channel, payload = self.timeline[self.next_item]
            wait_ms = t - self.venue_now_ms()
            if wait_ms > 0:
                await asyncio.sleep(min(wait_ms / 1000 / self.speed, 0.05))
                continue
            self.next_item += 1
            if channel == "rest":
                self.accounts[payload[0]] = payload[1]
                continue
            obj = orjson.loads(payload)
            if channel.startswith("trade:"):
                for key in ("trades", "liquidation_trades"):
                    for tr in obj.get(key) or ():
                        self.trades[tr["market_id"]].append(tr)
            elif channel.startswith("market_stats"):
                self.stats_frame = obj
            self.sent_updates.append((channel, payload))
            await self._broadcast(channel, payload)
            await asyncio.sleep(0)
        self.done.set()
        log.info("fake lighter: capture played to the end (%d items)", len(self.timeline))

    async def _broadcast(self, channel: str, text: str) -> None:
        sub = channel.replace(":", "/", 1)
        for c in list(self.conns.values()):
            if sub in c.subs and not c.mute_data:
                await self._send(c, text)

    async def _keepalive(self) -> None:
        """The 2-minute idle rule, and server pings when configured."""
        loop = asyncio.get_running_loop()
        last_ping = loop.time()
        tick = max(0.01, min(self.idle_timeout_s, self.server_ping_s or 1e9) / 10)
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            for c in list(self.conns.values()):
                if now - c.last_client > self.idle_timeout_s and not c.ws.closed:
                    self.idle_closes += 1
                    await c.ws.close(code=1000, message=b"idle")
            if self.server_ping_s and now - last_ping >= self.server_ping_s:
                last_ping = now
                for c in list(self.conns.values()):
                    await self._send(c, '{"type":"ping"}')

    # ------------------------------------------------------------ websocket
    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        self.upgrades += 1
        if self.reject:
            status, headers = self.reject.popleft()
            self.rejected += 1
            return web.Response(status=status, headers=headers, text="rate limited\n")
        ws = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=0)
        await ws.prepare(request)
        conn = _Conn(ws, request, asyncio.get_running_loop().time())
        self.conns[conn.id] = conn
        try:
            await self._send(conn, orjson.dumps({"type": "connected",
                                                 "session_id": f"fake-{conn.id}"}).decode())
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                conn.last_client = asyncio.get_running_loop().time()
                await self._on_message(conn, msg.data)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.conns.pop(conn.id, None)
        return ws

    def _ip_subscriptions(self, ip: str) -> int:
        return sum(len(c.subs) for c in self.conns.values() if c.ip == ip)

    async def _error(self, c: _Conn, code: int, message: str, violation: str) -> None:
        self.violations[violation] += 1
        await self._send(c, orjson.dumps({"type": "error", "code": code, "message": message}).decode())

    async def _on_message(self, c: _Conn, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self._error(c, 30005, "invalid message", "bad_message")
            return
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "ping":
            self.pings += 1
            if not c.mute_pongs:
                await self._send(c, '{"type":"pong"}')
            return
        if kind == "pong":
            self.pongs += 1
            return
        channel = msg.get("channel") if isinstance(msg, dict) else None
        if kind == "unsubscribe" and isinstance(channel, str):
            c.subs.discard(channel)
            await self._send(c, orjson.dumps({"type": "unsubscribed",
                                              "channel": channel.replace("/", ":")}).decode())
            return
        if kind != "subscribe" or not isinstance(channel, str):
            await self._error(c, 30005, f"invalid message type {kind!r}", "bad_message")
            return
        self.subscribes += 1
        now = asyncio.get_running_loop().time()
        times = self._subscribe_times[c.ip]
        times.append(now)
        while times and now - times[0] > 1.0:
            times.popleft()
        # A rate, not a minimum gap: a client's sends and the network jitter by milliseconds.
        if self.subscribe_interval_s > 0 and len(times) > 1.0 / self.subscribe_interval_s + 1:
            await self._error(c, 23000, "Too Many Requests", "pacing")
            return
        if channel in c.subs:
            await self._error(c, 30003, f"already subscribed to {channel}", "duplicate")
            return
        if len(c.subs) >= self.subscriptions_per_connection:
            await self._error(c, 30009, "too many subscriptions on this connection", "per_connection")
            return
        if self._ip_subscriptions(c.ip) >= self.subscriptions_per_ip:
            await self._error(c, 30010, "too many subscriptions from this ip", "per_ip")
            return
        family, _, arg = channel.partition("/")
        if family == "trade" and arg.isdigit():
            c.subs.add(channel)
            recent = list(self.trades.get(int(arg), ()))[-self.snapshot_trades:]
            forced = [t for t in recent if t.get("type") != "trade" and t.get("type") in TRADE_TYPES]
            await self._send(c, orjson.dumps({
                "type": "subscribed/trade", "channel": f"trade:{arg}", "nonce": 0,
                "trades": [t for t in recent if t.get("type") == "trade"],
                "liquidation_trades": forced}).decode())
        elif family == "market_stats" and arg == "all":
            c.subs.add(channel)
            snap = dict(self.stats_frame or {"timestamp": self.venue_now_ms(), "market_stats": {}})
            snap.update(type="subscribed/market_stats", channel="market_stats:all")
            await self._send(c, orjson.dumps(snap).decode())
        else:
            await self._error(c, 30005, f"invalid channel {channel}", "bad_channel")

    async def _send(self, c: _Conn, frame: str) -> None:
        if c.ws.closed:
            return
        try:
            await c.ws.send_str(frame)
            self.frames_sent += 1
        except (ConnectionError, RuntimeError):
            pass

    # ----------------------------------------------------------------- REST
    def _rest_budget(self, weight: int) -> bool:
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._rest_spent and now - self._rest_spent[0][0] >= 60.0:
            self._rest_spent.popleft()
        if sum(w for _t, w in self._rest_spent) + weight > self.rest_weight_per_min:
            return False
        self._rest_spent.append((now, weight))
        return True

    async def _rest_handler(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.rest_requests[name] += 1
        weight = 600 if name in ("recentTrades", "trades") else 300
        if not self._rest_budget(weight):
            self.violations["rest_budget"] += 1
            return web.Response(status=429, headers={"Retry-After": "1"}, text="rate limited\n")
        if name == "recentTrades":
            try:
                market = int(request.query["market_id"])
                limit = int(request.query["limit"])
            except (KeyError, ValueError):
                return _json({"code": 20001, "message": "market_id and limit are required"}, 400)
            trades = list(self.trades.get(market, ()))[-limit:][::-1]
            return _json({"code": 200, "trades": trades})
        if name == "account":
            path = f"/api/v1/account?{request.query_string}"
            text = self.accounts.get(path)
            if text is None:
                return _json({"code": 21100, "message": "account not found"}, 400)
            return web.Response(text=text, content_type="application/json")
        text = self.rest_static.get(f"/api/v1/{name}")
        if text is None:
            return _json({"code": 20001, "message": f"unknown endpoint {name}"}, 404)
        return web.Response(text=text, content_type="application/json")


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")
