"""A fake dYdX v4 indexer: a real websocket + REST server on 127.0.0.1 playing a capture.

For tests, demos and newcomers without network. It reads capture files (what
``simulate`` or ``adlmon run --capture`` wrote) and plays their
``channel_data`` frames at their receive times, on a venue clock that starts
``lead_ms`` before the first frame and runs ``speed`` times faster than the
wall clock (``paused`` holds it until :meth:`resume`). Frames keep the
capture's contents; the envelope (``connection_id``, ``message_id``) is the
fake's own per connection.

Venue rules enforced (venues-wire.md §1.1, §1.2):

* a ``connected`` frame on connect; ``subscribed`` with the snapshot
  (``v4_trades``: the market's last ``snapshot_trades`` trades, newest first,
  with ``createdAtHeight``; ``v4_markets``: every market as now);
* control-frame heartbeat: a ping every ``heartbeat_s``, no pong within
  ``heartbeat_timeout_s`` -> close 1011; a client's JSON ``{"type":"ping"}``
  is ignored (no reply), a client's control ping is answered;
* at most ``max_trades_per_connection`` (32) ``v4_trades`` per connection
  (the indexer's error text beyond it); a duplicate subscribe is an error;
* subscribe attempts: 2 per 1000 ms per (connection, channel+id), and
  optionally ``subscribes_per_s`` per connection: beyond it an error frame,
  then close 1008 ``{"message":"Rate limited"}``; invalid messages likewise;
* REST: ``/v4/perpetualMarkets``, ``/v4/trades/perpetualMarket/{ticker}``
  (``limit``, ``createdBeforeOrAtHeight``; newest first), ``/v4/height``, and
  a node's ``/cosmos/bank/v1beta1/balances/{addr}`` (``bank_balances``) and
  ``/cosmos/tx/v1beta1/txs/block/{h}`` (``node_blocks.json`` of the simulator).

Scripted faults: :meth:`drop` (every connection, without a close frame or with
a code: 1001, 1012, ...), :meth:`stall` (no data frames sent, the venue plays on and the heartbeat too),
:meth:`mute_heartbeat` (no pings sent and client pings unanswered),
:meth:`resend` (the last frames again), :meth:`inject` (any frame, e.g. malformed), :meth:`rate_limit_close` (close 1008),
:meth:`reject_upgrades` (HTTP 429 with Retry-After).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from adlmon.io.capture import SUFFIX, WS, decode_line
from adlmon.sim import open_lines
from adlmon.venues.dydx.parse import USDC_DENOM, decode_trade_id, ms_iso
from adlmon.venues.dydx.sim import NODE_BLOCKS

log = logging.getLogger(__name__)

RATE_LIMITED = '{"message":"Rate limited"}'


def load_capture(path: str | Path) -> tuple[dict, list[tuple[int, dict]]]:
    """(markets of the first v4_markets snapshot, [(t, channel_data frame)] in order) of the
    capture files in ``path`` (a directory or one file)."""
    path = Path(path)
    files = sorted(path.glob(f"*{SUFFIX}*")) if path.is_dir() else [path]
    markets: dict = {}
    timeline: list[tuple[int, dict]] = []
    for f in files:
        for line in open_lines(f):
            rec = decode_line(line)
            if rec.kind != WS:
                continue
            obj = orjson.loads(rec.frame)
            if obj.get("type") == "subscribed" and obj.get("channel") == "v4_markets" and not markets:
                markets = obj["contents"]["markets"]
            elif obj.get("type") in ("channel_data", "channel_batch_data"):
                timeline.append((rec.t_ms, obj))
    timeline.sort(key=lambda x: x[0])
    return markets, timeline


class _Conn:
    _ids = itertools.count(1)

    def __init__(self, ws: web.WebSocketResponse):
        self.n = next(self._ids)
        self.id = str(uuid.UUID(int=self.n))
        self.ws = ws
        self.message_id = 0
        self.subs: set[tuple[str, str]] = set()
        self.attempts: dict[str, deque] = defaultdict(deque)
        self.all_attempts: deque = deque()
        self.invalid: deque = deque()
        self.ping_at: float | None = None
        self.unanswered_since: float | None = None  # the first ping not yet ponged

    def envelope(self, obj: dict) -> str:
        out = {"type": obj["type"], "connection_id": self.id, "message_id": self.message_id}
        out.update({k: v for k, v in obj.items() if k not in ("type", "connection_id", "message_id")})
        self.message_id += 1
        return orjson.dumps(out).decode()


class FakeDydx:
    """See the module docstring. ``await start()``, ``await stop()``; ``ws_url``, ``rest_url``."""

    def __init__(self, capture: str | Path, *, speed: float = 1.0, paused: bool = False,
                 host: str = "127.0.0.1", port: int = 0, lead_ms: int = 1000,
                 snapshot_trades: int = 100, heartbeat_s: float = 30.0,
                 heartbeat_timeout_s: float = 10.0, max_trades_per_connection: int = 32,
                 subscribes_per_s: float | None = None, rest_points_per_10s: int | None = None,
                 bank_balances: dict[str, int] | None = None):
        self.markets, self.timeline = load_capture(capture)
        blocks = Path(capture) / NODE_BLOCKS if Path(capture).is_dir() else None
        self.node_blocks = orjson.loads(blocks.read_bytes()) if blocks and blocks.exists() else {}
        for m in self.markets.values():
            m.setdefault("status", "ACTIVE")
        self.speed = speed
        self.host = host
        self.port = port
        self.snapshot_trades = snapshot_trades
        self.heartbeat_s = heartbeat_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.max_trades = max_trades_per_connection
        self.subscribes_per_s = subscribes_per_s
        self.rest_points_per_10s = rest_points_per_10s
        self.bank_balances = dict(bank_balances or {})
        first = self.timeline[0][0] if self.timeline else int(time.time() * 1000)
        self.start_ms = first - lead_ms
        self.end_ms = self.timeline[-1][0] if self.timeline else first
        self._paused = paused
        self._base_ms = self.start_ms
        self._wall0: float | None = None
        self.trades: dict[str, list[dict]] = defaultdict(list)  # played, oldest first
        self.height = 0
        self.next = 0
        self.sent: deque = deque(maxlen=200)  # (channel, id, frame obj) of recent data frames
        self.conns: dict[int, _Conn] = {}
        self.done = asyncio.Event()
        # fault switches and counters
        self.stalled = False
        self.heartbeat_muted = False
        self.reject_left = 0
        self.retry_after_s = 1
        self.rate_limited = 0
        self.heartbeat_closes = 0
        self.json_pings = 0
        self.subscribe_log: list[tuple[int, str, str]] = []  # (conn, channel, id)
        self.rest_log: list[str] = []
        self._rest_hits: deque = deque()
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []

    # ------------------------------------------------------------------ clock
    def now_ms(self) -> int:
        if self._wall0 is None or self._paused:
            return self._base_ms
        return self._base_ms + int((time.monotonic() - self._wall0) * 1000 * self.speed)

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._wall0 = time.monotonic()

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v4/ws"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> "FakeDydx":
        app = web.Application()
        app.router.add_get("/v4/ws", self._ws)
        app.router.add_get("/v4/perpetualMarkets", self._rest_markets)
        app.router.add_get("/v4/trades/perpetualMarket/{ticker}", self._rest_trades)
        app.router.add_get("/v4/height", self._rest_height)
        app.router.add_get("/cosmos/bank/v1beta1/balances/{addr}", self._rest_bank)
        app.router.add_get("/cosmos/tx/v1beta1/txs/block/{height}", self._rest_block)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        if not self._paused:
            self._wall0 = time.monotonic()
        self._tasks = [asyncio.create_task(self._play()), asyncio.create_task(self._heartbeat())]
        return self

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for c in list(self.conns.values()):
            await c.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ faults
    async def drop(self, code: int | None = None) -> None:
        """Every connection: without a close frame (``code`` None: TCP reset) or closed with ``code``."""
        for c in list(self.conns.values()):
            if code is None:
                transport = c.ws._req.transport if c.ws._req is not None else None
                if transport is not None:
                    transport.abort()
            else:
                await c.ws.close(code=code)

    async def rate_limit_close(self) -> None:
        for c in list(self.conns.values()):
            self.rate_limited += 1
            await c.ws.close(code=1008, message=RATE_LIMITED.encode())

    def stall(self, on: bool = True) -> None:
        self.stalled = on

    def mute_heartbeat(self, on: bool = True) -> None:
        self.heartbeat_muted = on

    def reject_upgrades(self, n: int, retry_after_s: int = 1) -> None:
        self.reject_left = n
        self.retry_after_s = retry_after_s

    async def inject(self, obj: dict | str) -> None:
        """Send one frame (a dict is enveloped; a str goes as is) to every subscriber of its
        channel and id, e.g. a malformed one."""
        for c in list(self.conns.values()):
            if isinstance(obj, str):
                await c.ws.send_str(obj)
            elif (obj.get("channel"), obj.get("id") or "") in c.subs:
                await self._send(c, obj)

    async def resend(self, n: int = 10) -> None:
        """Send the last ``n`` data frames again to their subscribers (a venue re-send)."""
        for channel, ident, obj in list(self.sent)[-n:]:
            await self._send_data(channel, ident, obj, remember=False)

    # ------------------------------------------------------------------ play
    async def _play(self) -> None:
        while self.next < len(self.timeline):
            now = self.now_ms()
            while self.next < len(self.timeline) and self.timeline[self.next][0] <= now:
                _t, obj = self.timeline[self.next]
                self.next += 1
                self._apply(obj)  # the venue goes on: REST and snapshots have it
                if not self.stalled:
                    await self._send_data(obj["channel"], obj.get("id"), obj)
            await asyncio.sleep(0.005)
        self.done.set()

    def _apply(self, obj: dict) -> None:
        parts = obj["contents"] if obj["type"] == "channel_batch_data" else [obj["contents"]]
        for c in parts:
            if obj["channel"] == "v4_trades":
                for tr in c.get("trades", ()):
                    h = decode_trade_id(tr["id"])[0]
                    self.height = max(self.height, h)
                    self.trades[obj["id"]].append({**tr, "createdAtHeight": str(h)})
            elif obj["channel"] == "v4_markets":
                for tk, p in (c.get("oraclePrices") or {}).items():
                    if tk in self.markets:
                        self.markets[tk]["oraclePrice"] = p["oraclePrice"]
                    self.height = max(self.height, int(p.get("effectiveAtHeight", 0)))
                for tk, m in (c.get("trading") or {}).items():
                    self.markets.setdefault(tk, {"ticker": tk}).update(m)

    async def _send_data(self, channel: str, ident: str | None, obj: dict, remember: bool = True) -> None:
        if remember:
            self.sent.append((channel, ident, obj))
        for c in list(self.conns.values()):
            if (channel, ident or "") in c.subs:
                await self._send(c, obj)

    async def _send(self, c: _Conn, obj: dict) -> None:
        try:
            await c.ws.send_str(c.envelope(obj))
        except (ConnectionError, RuntimeError):
            pass

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(min(self.heartbeat_s, self.heartbeat_timeout_s) / 4)
            now = time.monotonic()
            for c in list(self.conns.values()):
                if self.heartbeat_muted:
                    continue
                if c.unanswered_since is not None and now - c.unanswered_since > self.heartbeat_timeout_s:
                    self.heartbeat_closes += 1
                    await c.ws.close(code=1011)
                    continue
                if c.ping_at is None or now - c.ping_at >= self.heartbeat_s:
                    c.ping_at = now
                    if c.unanswered_since is None:
                        c.unanswered_since = now
                    try:
                        await c.ws.ping()
                    except (ConnectionError, RuntimeError):
                        pass

    # ------------------------------------------------------------------ websocket
    async def _ws(self, request: web.Request):
        if self.reject_left > 0:
            self.reject_left -= 1
            return web.Response(status=429, headers={"Retry-After": str(self.retry_after_s)})
        ws = web.WebSocketResponse(autoping=False, heartbeat=None)
        await ws.prepare(request)
        c = _Conn(ws)
        self.conns[c.n] = c
        try:
            await self._send(c, {"type": "connected"})
            async for msg in ws:
                if msg.type == WSMsgType.PING:
                    if not self.heartbeat_muted:
                        await ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    c.unanswered_since = None
                elif msg.type == WSMsgType.TEXT:
                    if not await self._on_message(c, msg.data):
                        break
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        finally:
            self.conns.pop(c.n, None)
        return ws

    async def _error(self, c: _Conn, message: str, **where) -> None:
        await self._send(c, {"type": "error", "message": message, **where})

    async def _close_rate_limited(self, c: _Conn) -> bool:
        self.rate_limited += 1
        await c.ws.close(code=1008, message=RATE_LIMITED.encode())
        return False

    @staticmethod
    def _over(window: deque, limit: float, now: float) -> bool:
        window.append(now)
        while window and now - window[0] >= 1.0:
            window.popleft()
        return len(window) > limit

    async def _on_message(self, c: _Conn, text: str) -> bool:
        now = time.monotonic()
        try:
            msg = orjson.loads(text)
            if not isinstance(msg, dict):
                raise ValueError
        except ValueError:
            await self._error(c, "Invalid message: could not parse")
            return not self._over(c.invalid, 2, now) or await self._close_rate_limited(c)
        mtype = msg.get("type")
        if mtype == "ping":
            self.json_pings += 1  # accepted and ignored, as the indexer does
            return True
        if mtype not in ("subscribe", "unsubscribe"):
            await self._error(c, f"Invalid message type: {mtype}")
            return not self._over(c.invalid, 2, now) or await self._close_rate_limited(c)
        channel = msg.get("channel")
        ident = msg.get("id") or ""
        key = f"{channel}-{ident}" if ident else str(channel)
        if mtype == "unsubscribe":
            c.subs.discard((channel, ident))
            await self._send(c, {"type": "unsubscribed", "channel": channel, **({"id": ident} if ident else {})})
            return True
        if self._over(c.attempts[key], 2, now) or (
                self.subscribes_per_s is not None and self._over(c.all_attempts, self.subscribes_per_s, now)):
            await self._error(c, f"Too many subscribe attempts for channel {key}")
            return await self._close_rate_limited(c)
        self.subscribe_log.append((c.n, str(channel), ident))
        if channel == "v4_trades":
            if not isinstance(ident, str) or ident not in self.markets:
                await self._error(c, f"Invalid subscription id for channel: ({key})", channel=channel, id=ident)
                return True
            if sum(1 for ch, _ in c.subs if ch == "v4_trades") >= self.max_trades:
                await self._error(c, "Per-connection subscription limit reached for v4_trades "
                                     f"(limit={self.max_trades}).", channel=channel, id=ident)
                return True
            contents = {"trades": self._recent(ident, self.snapshot_trades)}
        elif channel == "v4_markets":
            contents = {"markets": self.markets}
        elif channel == "v4_block_height":
            contents = {"height": str(self.height), "time": ms_iso(self.now_ms())}
        else:
            await self._error(c, f"Invalid channel: {channel}")
            return True
        if (channel, ident) in c.subs:
            await self._error(c, f"Invalid subscribe message: already subscribed ({key})",
                              channel=channel, **({"id": ident} if ident else {}))
            return True
        c.subs.add((channel, ident))
        await self._send(c, {"type": "subscribed", "channel": channel, **({"id": ident} if ident else {}),
                             "contents": contents})
        return True

    def _recent(self, ticker: str, limit: int, before_height: int | None = None) -> list[dict]:
        rows = self.trades.get(ticker, [])
        out = []
        for tr in reversed(rows):
            if before_height is not None and int(tr["createdAtHeight"]) > before_height:
                continue
            out.append(tr)
            if len(out) >= limit:
                break
        return out

    # ------------------------------------------------------------------ REST
    def _rest_limited(self, request: web.Request) -> web.Response | None:
        self.rest_log.append(request.path_qs)
        if self.rest_points_per_10s is None:
            return None
        now = time.monotonic()
        self._rest_hits.append(now)
        while self._rest_hits and now - self._rest_hits[0] >= 10.0:
            self._rest_hits.popleft()
        if len(self._rest_hits) > self.rest_points_per_10s:
            return web.Response(status=429, headers={"Retry-After": "1"})
        return None

    async def _rest_markets(self, request: web.Request):
        return self._rest_limited(request) or web.json_response({"markets": self.markets}, dumps=_dumps)

    async def _rest_trades(self, request: web.Request):
        limited = self._rest_limited(request)
        if limited:
            return limited
        ticker = request.match_info["ticker"]
        if ticker not in self.markets:
            return web.json_response({"errors": [{"msg": "ticker is invalid"}]}, status=400)
        try:
            limit = min(int(request.query.get("limit", 1000)), 1000)
            before = request.query.get("createdBeforeOrAtHeight")
            before = int(before) if before is not None else None
        except ValueError:
            return web.json_response({"errors": [{"msg": "bad query"}]}, status=400)
        return web.json_response({"trades": self._recent(ticker, limit, before)}, dumps=_dumps)

    async def _rest_height(self, request: web.Request):
        return self._rest_limited(request) or web.json_response(
            {"height": str(self.height), "time": ms_iso(self.now_ms())}, dumps=_dumps)

    async def _rest_block(self, request: web.Request):
        """A node's decoded block, only once the venue has played past its height."""
        self.rest_log.append(request.path_qs)
        h = request.match_info["height"]
        if h not in self.node_blocks or not h.isdigit() or int(h) > self.height:
            return web.json_response({"code": 5, "message": f"block {h} not found"}, status=404)
        return web.json_response(self.node_blocks[h], dumps=_dumps)

    async def _rest_bank(self, request: web.Request):
        addr = request.match_info["addr"]
        bal = self.bank_balances.get(addr)
        balances = [] if bal is None else [{"denom": USDC_DENOM, "amount": str(bal)}]
        return web.json_response({"balances": balances, "pagination": {"next_key": None,
                                                                       "total": str(len(balances))}})


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


async def start_fake(cascade_dir: str | Path, speed: float = 1.0, **kw) -> FakeDydx:
    """The face's ``fake``: a started fake playing the capture in ``cascade_dir``."""
    return await FakeDydx(cascade_dir, speed=speed, **kw).start()
