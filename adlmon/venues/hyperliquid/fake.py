"""A fake Hyperliquid: a real websocket + info server on 127.0.0.1 playing a simulated cascade.

For tests, demos and newcomers without network. It reads what ``adlmon
simulate`` wrote (snapshot files, ``node_fills_by_block``, ``misc_events``) and
plays it block by block with the venue's real message shapes (venues.md §1.1,
§1.2, §1.5):

* ``trades`` per coin (``{coin, side, px, sz, hash, time, tid, users:[buyer,
  seller]}``; the last ``trades_backfill`` trades on subscribe);
* ``userFills`` (``{isSnapshot: true, user, fills}`` with the user's last
  ``fills_backfill`` fills on every subscribe, then ``{user, fills}``);
* ``userEvents`` on channel ``user``: ``{fills}``, ``{funding}``, and
  ``{liquidation}`` (WsLiquidation) to the vault that took a position over;
* ``activeAssetCtx`` per coin and ``allMids`` (mark = last trade price);
* ``{"channel":"pong"}``, ``subscriptionResponse``, ``error`` on a duplicate
  subscription; the legacy greeting text frame on connect;
* ``/info``: ``metaAndAssetCtxs``, ``vaultDetails`` (HLP with its children,
  the liquidators by name), ``clearinghouseState`` (from the fake's own ledger,
  the engine's rules, at the last block played), ``allMids``.

Time: venue time starts at the snapshot and runs ``speed`` times faster than
the wall clock; every frame carries the simulator's own times (time
compression keeps event times). ``paused=True`` holds the clock at the start
until :meth:`resume`.

Misbehaviour, scriptable while it plays (the fault matrix of issue 5): drop
every connection without a close frame (1006) or with a close code
(1000/1001), stop sending data but answer pings, stop answering pings, send
malformed JSON or an error payload, answer the next upgrades with 429 and
``Retry-After``, re-send already-sent fills, restart (stop listening, drop
everything, come back on the same port).

Hostility (issue 9): scripted ``/info`` answers of any shape
(:meth:`script_info`), raw frames to the connections of one subscription type,
floods of frames, oversized frames, and an endless frame whose header
announces 2^40 bytes and whose payload never ends (:meth:`send_endless_frame`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from adlmon.config import HLP_LIQUIDATORS, HLP_VAULT
from adlmon.engine.ledger import Ledger
from adlmon.events import Funding, LedgerUpdate
from adlmon.io.archive import read_lines
from adlmon.sim import num
from adlmon.venues.hyperliquid.parse import fill_rows, parse_node_line
from adlmon.venues.hyperliquid.snapshot import find_snapshot_files, load_snapshot

log = logging.getLogger(__name__)

GREETING = "Websocket connection established."
# vaultDetails(HLP).relationship.data.childAddresses (venues.md §1.6)
HLP_CHILDREN = {
    "0x010461c14e146ac35fe42271bdc1134ee31c703a": "HLP Strategy A",
    HLP_LIQUIDATORS[0]: "HLP Liquidator",
    "0x31ca8395cf837de08b24da3f660e77761dfb974b": "HLP Strategy B",
    HLP_LIQUIDATORS[1]: "HLP Liquidator 2",
}


@dataclass
class Block:
    """Everything that happened at one venue time."""

    time_ms: int
    fills: list = field(default_factory=list)  # [user, WsFill dict] as the node wrote them
    misc: list = field(default_factory=list)  # Funding / LedgerUpdate events


def load_timeline(sim_dir: str | Path) -> tuple[list, int, list[Block]]:
    """(snapshot events, snapshot time, blocks in time order) of a simulator output dir."""
    sim_dir = Path(sim_dir)
    snaps, t0 = load_snapshot(find_snapshot_files(sim_dir))
    blocks: dict[int, Block] = {}
    for path in sorted(sim_dir.glob("node_fills_by_block*")):
        for line in read_lines(path):
            obj = orjson.loads(line)
            for pair in obj.get("events") or ():
                t = pair[1]["time"]
                blocks.setdefault(t, Block(t)).fills.append(pair)
    for path in sorted(sim_dir.glob("misc_events*")):
        for line in read_lines(path):
            for e in parse_node_line(line):
                if isinstance(e, (Funding, LedgerUpdate)):
                    blocks.setdefault(e.time_ms, Block(e.time_ms)).misc.append(e)
    return snaps, t0, [blocks[t] for t in sorted(blocks)]


class _Conn:
    _ids = itertools.count(1)

    def __init__(self, ws: web.WebSocketResponse, request: web.Request):
        self.id = next(self._ids)
        self.ws = ws
        self.request = request
        self.subs: set[bytes] = set()
        self.trades: set[str] = set()
        self.ctx: set[str] = set()
        self.mids = False
        self.user_fills: set[str] = set()
        self.user_events: set[str] = set()
        self.mute_data = False
        self.mute_pongs = False


class FakeHyperliquid:
    """See the module docstring. ``await start()``, ``await stop()``; ``ws_url``/``info_url``."""

    def __init__(self, sim_dir: str | Path, *, speed: float = 1.0, paused: bool = False,
                 host: str = "127.0.0.1", port: int = 0, trades_backfill: int = 30,
                 fills_backfill: int = 2000, lead_ms: int = 0):
        self.snapshot_events, self.t0, self.blocks = load_timeline(sim_dir)
        self.ledger = Ledger(new_accounts_empty=True)
        for e in self.snapshot_events:
            self.ledger.apply(e)
        self.coins = sorted({f["coin"] for b in self.blocks for _u, f in b.fills}
                            | {p.coin for s in self.snapshot_events for p in s.positions})
        self.speed = speed
        self.host = host
        self.port = port
        self.trades_backfill = trades_backfill
        self.fills_backfill = fills_backfill
        self.start_ms = self.t0 - lead_ms
        self.state_ms = self.t0  # venue time of the last block applied
        self._paused = paused
        self._clock_base_ms = self.start_ms
        self._clock_wall: float | None = None
        self.conns: dict[int, _Conn] = {}
        self.recent_trades: dict[str, deque] = defaultdict(lambda: deque(maxlen=trades_backfill))
        self.user_fill_history: dict[str, deque] = defaultdict(lambda: deque(maxlen=fills_backfill))
        self.last_px: dict[str, float] = {}
        self.next_block = 0
        self.done = asyncio.Event()
        self.resumed = asyncio.Event()
        # faults and counters
        self.reject: deque[tuple[int, dict]] = deque()
        self.upgrades = 0
        self.rejected = 0
        self.pings = 0
        self.frames_sent = 0
        self.info_requests: dict[str, int] = defaultdict(int)
        self.info_script: list[list] = []  # [kind, user, answer, times left (None = always)]
        self.scripted_answers = 0
        self._lid = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._player: asyncio.Task | None = None
        self.listening = False

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

    @property
    def end_ms(self) -> int:
        return self.blocks[-1].time_ms if self.blocks else self.t0

    # ------------------------------------------------------------ lifecycle
    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def info_url(self) -> str:
        return f"http://{self.host}:{self.port}/info"

    async def start(self) -> "FakeHyperliquid":
        app = web.Application()
        app.router.add_get("/ws", self._ws_handler)
        app.router.add_post("/info", self._info_handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        await self._listen()
        if not self._paused:
            self._clock_wall = asyncio.get_running_loop().time()
            self.resumed.set()
        self._player = asyncio.create_task(self._play(), name="fake-hyperliquid-player")
        return self

    async def _listen(self) -> None:
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        self.port = self._site._server.sockets[0].getsockname()[1]
        self.listening = True

    async def stop(self) -> None:
        if self._player is not None:
            self._player.cancel()
            await asyncio.gather(self._player, return_exceptions=True)
        await self.drop_connections(None)
        if self._runner is not None:
            await self._runner.cleanup()
        self.listening = False

    # -------------------------------------------------------------- faults
    async def drop_connections(self, code: int | None = None) -> int:
        """Close every connection: ``None`` = TCP reset without a close frame (1006)."""
        conns = list(self.conns.values())
        for c in conns:
            if code is None:
                transport = c.request.transport
                if transport is not None:
                    transport.abort()
            else:
                await c.ws.close(code=code, message=b"fake venue")
        return len(conns)

    def mute_data(self, channel: str | None = None) -> int:
        """Open connections (those subscribed to ``channel``'s type, e.g. "trades", if
        given) stop getting data; pongs are still answered; new connections are fine."""
        conns = self._subscribed(channel)
        for c in conns:
            c.mute_data = True
        return len(conns)

    def mute_pongs(self) -> None:
        """Open connections stop getting anything: no pong, no data (a hung peer)."""
        for c in self.conns.values():
            c.mute_pongs = True
            c.mute_data = True

    def _subscribed(self, channel: str | None) -> list[_Conn]:
        """Open connections (those with a subscription of type ``channel``, if given)."""
        return [c for c in list(self.conns.values()) if channel is None
                or any(orjson.loads(k).get("type") == channel for k in c.subs)]

    async def send_raw(self, text: str, channel: str | None = None) -> int:
        """One raw text frame to every connection (subscribed to ``channel``'s type)."""
        conns = self._subscribed(channel)
        for c in conns:
            await self._send(c, text)
        return len(conns)

    async def flood(self, text: str, n: int, channel: str | None = None) -> int:
        """``n`` copies of a frame back to back (the writes are buffered: the peer
        receives them as one burst)."""
        sent = 0
        for c in self._subscribed(channel):
            for i in range(n):
                if c.ws.closed:
                    break
                await c.ws.send_str(text)
                sent += 1
                if i % 1000 == 999:
                    await asyncio.sleep(0)  # the fake's own loop keeps playing
        self.frames_sent += sent
        return sent

    async def send_endless_frame(self, channel: str | None = None, announce: int = 1 << 40,
                                 max_bytes: int = 256 << 20, chunk: int = 1 << 16) -> int:
        """A text frame header announcing ``announce`` bytes, then payload at line rate
        until the peer closes the connection (or ``max_bytes`` were written). Returns
        the payload bytes written."""
        written = 0
        conns = self._subscribed(channel)
        header = bytes([0x81, 127]) + announce.to_bytes(8, "big")  # FIN|TEXT, 64-bit length
        block = b"x" * chunk
        for c in conns:
            transport = c.request.transport
            if transport is None or transport.is_closing():
                continue
            transport.write(header)
            while written < max_bytes and not transport.is_closing():
                transport.write(block)
                written += chunk
                await asyncio.sleep(0)
                if transport.get_write_buffer_size() > 4 * chunk:
                    await asyncio.sleep(0.01)
        return written

    def script_info(self, kind: str, answer: Any, user: str | None = None,
                    times: int | None = 1) -> None:
        """Answer the next ``times`` (None: every) ``/info`` requests of ``kind`` (for
        ``user``, or for every user with None) with ``answer``, whatever its shape."""
        self.info_script.append([kind, user.lower() if user else None, answer, times])

    def _scripted(self, kind: str, body: dict) -> tuple[bool, Any]:
        who = str(body.get("user") or body.get("vaultAddress") or "").lower()
        for entry in self.info_script:
            k, user, answer, times = entry
            if k == kind and (user is None or user == who) and (times is None or times > 0):
                if times is not None:
                    entry[3] -= 1
                self.scripted_answers += 1
                return True, answer
        return False, None

    async def send_error(self, text: str = "Internal error: subscription lost") -> None:
        await self.send_raw(orjson.dumps({"channel": "error", "data": text}).decode())

    def reject_upgrades(self, n: int, status: int = 429, retry_after: str | None = "1") -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        for _ in range(n):
            self.reject.append((status, headers))

    async def resend_fills(self, user: str, n: int = 10) -> int:
        """Send the user's last ``n`` fills again as a live (non-snapshot) frame."""
        fills = list(self.user_fill_history[user.lower()])[-n:]
        if fills:
            await self._broadcast_user(user.lower(), fills, [])
        return len(fills)

    async def restart(self, down_s: float) -> None:
        """Stop listening and drop every connection; listen again after ``down_s``
        (the cascade keeps playing meanwhile, as a venue's would)."""
        if self._site is not None:
            await self._site.stop()
        self.listening = False
        await self.drop_connections(None)
        await asyncio.sleep(down_s)
        await self._listen()

    # ------------------------------------------------------------ playback
    async def _play(self) -> None:
        await self.resumed.wait()
        loop = asyncio.get_running_loop()
        while self.next_block < len(self.blocks):
            block = self.blocks[self.next_block]
            wait_ms = block.time_ms - self.venue_now_ms()
            if wait_ms > 0:
                await asyncio.sleep(wait_ms / 1000 / self.speed)
                continue
            self.next_block += 1
            self._apply(block)
            await self._broadcast(block)
            await asyncio.sleep(0)
        self.done.set()
        log.info("fake hyperliquid: cascade played to the end (%d blocks)", len(self.blocks))

    def _apply(self, block: Block) -> None:
        self.ledger.apply_fill_rows(fill_rows(block.fills))
        for e in block.misc:
            self.ledger.apply(e)
        self.state_ms = block.time_ms
        for _u, f in block.fills:
            self.last_px[f["coin"]] = float(f["px"])

    async def _broadcast(self, block: Block) -> None:
        by_user: dict[str, list] = defaultdict(list)
        for user, f in block.fills:
            by_user[user.lower()].append(f)
        funding: dict[str, list] = defaultdict(list)
        liquidations: dict[str, list] = defaultdict(list)
        takeover = {}
        for user, f in block.fills:
            lq = f.get("liquidation")
            if lq and lq.get("liquidatedUser") and lq["liquidatedUser"].lower() != user.lower():
                takeover[lq["liquidatedUser"].lower()] = user.lower()
        for e in block.misc:
            if isinstance(e, Funding):
                funding[e.user.lower()].append(e)
            elif e.kind == "liquidation" and e.account_value is not None:
                liquidator = takeover.get(e.user.lower())
                if liquidator is not None:
                    liquidations[liquidator].append(e)
        for user, fills in by_user.items():
            self.user_fill_history[user].extend(fills)
        watched = set()
        for c in self.conns.values():
            watched |= c.user_fills | c.user_events
        for user in watched:
            fills = by_user.get(user, [])
            if fills or funding.get(user) or liquidations.get(user):
                await self._broadcast_user(user, fills, funding.get(user, []),
                                           liquidations.get(user, []))
        # trades: one entry per (coin, tid), both sides present in the block
        trades: dict[str, list] = defaultdict(list)
        pairs: dict[tuple, dict] = {}
        for user, f in block.fills:
            key = (f["coin"], f["tid"])
            tr = pairs.get(key)
            if tr is None:
                tr = pairs[key] = {"coin": f["coin"], "side": f["side"], "px": f["px"], "sz": f["sz"],
                                   "hash": f["hash"], "time": f["time"], "tid": f["tid"],
                                   "users": [None, None]}
                trades[f["coin"]].append(tr)
            tr["users"][0 if f["side"] == "B" else 1] = user
        for coin, trs in trades.items():
            self.recent_trades[coin].extend(trs)
            frame = _frame("trades", trs)
            for c in list(self.conns.values()):
                if coin in c.trades:
                    await self._send_data(c, frame)
        for coin in trades:
            frame = _frame("activeAssetCtx", self._ctx(coin))
            for c in list(self.conns.values()):
                if coin in c.ctx:
                    await self._send_data(c, frame)
        if trades:
            frame = _frame("allMids", {"mids": self._mids()})
            for c in list(self.conns.values()):
                if c.mids:
                    await self._send_data(c, frame)

    async def _broadcast_user(self, user: str, fills: list, funding: list,
                              liquidations: list = ()) -> None:
        fills_frame = _frame("userFills", {"user": user, "fills": fills}) if fills else None
        events = []
        if fills:
            events.append(_frame("user", {"fills": fills}))
        for e in funding:
            size = self.ledger.position(user, e.coin)[0]
            events.append(_frame("user", {"funding": {
                "time": e.time_ms, "coin": e.coin, "usdc": num(e.amount_usd), "szi": num(size),
                "fundingRate": "0.0", "nSamples": None}}))
        for e in liquidations:
            events.append(_frame("user", {"liquidation": {
                "lid": next(self._lid), "liquidator": user, "liquidated_user": e.user,
                "liquidated_ntl_pos": "0.0", "liquidated_account_value": num(e.account_value)}}))
        for c in list(self.conns.values()):
            if fills_frame is not None and user in c.user_fills:
                await self._send_data(c, fills_frame)
            if user in c.user_events:
                for frame in events:
                    await self._send_data(c, frame)

    def _ctx(self, coin: str) -> dict:
        px = self.last_px.get(coin) or self.ledger.mark(coin) or 0.0
        return {"coin": coin, "ctx": {"markPx": num(px), "oraclePx": num(px), "midPx": num(px),
                                      "funding": "0.0", "openInterest": "0.0",
                                      "dayNtlVlm": "0.0", "prevDayPx": num(px)}}

    def _mids(self) -> dict:
        out = {}
        for coin in self.coins:
            px = self.last_px.get(coin) or self.ledger.mark(coin)
            if px:
                out[coin] = num(px)
        return out

    # ------------------------------------------------------------ websocket
    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        self.upgrades += 1
        if self.reject:
            status, headers = self.reject.popleft()
            self.rejected += 1
            return web.Response(status=status, headers=headers, text="rate limited\n")
        ws = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=0)
        await ws.prepare(request)
        conn = _Conn(ws, request)
        self.conns[conn.id] = conn
        try:
            await ws.send_str(GREETING)
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                await self._on_message(conn, msg.data)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.conns.pop(conn.id, None)
        return ws

    async def _on_message(self, c: _Conn, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self._send(c, _frame("error", f"Invalid message: {text[:100]}"))
            return
        method = msg.get("method")
        if method == "ping":
            self.pings += 1
            if not c.mute_pongs:
                await self._send(c, '{"channel":"pong"}')
            return
        if method != "subscribe":
            await self._send(c, _frame("error", f"Unknown method: {method}"))
            return
        sub = msg.get("subscription") or {}
        key = orjson.dumps(sub, option=orjson.OPT_SORT_KEYS)
        if key in c.subs:
            await self._send(c, _frame("error", f"Already subscribed: {text}"))
            return
        kind = sub.get("type")
        user = str(sub.get("user") or "").lower()
        coin = sub.get("coin")
        if kind == "trades" and coin:
            c.trades.add(coin)
        elif kind == "activeAssetCtx" and coin:
            c.ctx.add(coin)
        elif kind == "allMids":
            c.mids = True
        elif kind == "userFills" and user:
            c.user_fills.add(user)
        elif kind == "userEvents" and user:
            c.user_events.add(user)
        else:
            await self._send(c, _frame("error", f"Invalid subscription: {text}"))
            return
        c.subs.add(key)
        await self._send(c, _frame("subscriptionResponse", {"method": "subscribe", "subscription": sub}))
        # what the venue sends right after a subscription
        if kind == "trades" and self.recent_trades.get(coin):
            await self._send_data(c, _frame("trades", list(self.recent_trades[coin])))
        elif kind == "activeAssetCtx" and (coin in self.last_px or self.ledger.mark(coin)):
            await self._send_data(c, _frame("activeAssetCtx", self._ctx(coin)))
        elif kind == "allMids":
            await self._send_data(c, _frame("allMids", {"mids": self._mids()}))
        elif kind == "userFills":
            await self._send_data(c, _frame("userFills", {
                "isSnapshot": True, "user": user, "fills": list(self.user_fill_history[user])}))

    async def _send_data(self, c: _Conn, frame: str) -> None:
        if not c.mute_data:
            await self._send(c, frame)

    async def _send(self, c: _Conn, frame: str) -> None:
        if c.ws.closed:
            return
        try:
            await c.ws.send_str(frame)
            self.frames_sent += 1
        except (ConnectionError, RuntimeError):
            pass

    # ----------------------------------------------------------------- info
    async def _info_handler(self, request: web.Request) -> web.Response:
        try:
            body = await request.json(loads=orjson.loads)
        except (ValueError, orjson.JSONDecodeError):
            return web.Response(status=400, text="body must be JSON")
        kind = body.get("type") if isinstance(body, dict) else None
        self.info_requests[str(kind)] += 1
        if self.info_script:
            hit, answer = self._scripted(str(kind), body)
            if hit:
                return _json(answer)
        if kind == "clearinghouseState":
            return _json(self.clearinghouse_state(str(body.get("user", "")).lower()))
        if kind == "vaultDetails":
            return _json(self._vault_details(str(body.get("vaultAddress", "")).lower()))
        if kind == "metaAndAssetCtxs":
            universe = [{"name": c, "szDecimals": 2, "maxLeverage": 10} for c in self.coins]
            ctxs = [self._ctx(c)["ctx"] for c in self.coins]
            return _json([{"universe": universe, "marginTables": [], "collateralToken": 0}, ctxs])
        if kind == "allMids":
            return _json(self._mids())
        return web.Response(status=422, text=f"Failed to deserialize the JSON body: {kind!r}")

    def clearinghouse_state(self, user: str) -> dict:
        """The user's state at the last block played (the engine's accounting)."""
        ledger = self.ledger
        positions = []
        ntl = 0.0
        for coin, (size, entry) in sorted(ledger.positions(user).items()):
            mark = ledger.mark(coin) or entry
            value = abs(size) * mark
            ntl += value
            positions.append({"type": "oneWay", "position": {
                "coin": coin, "szi": num(size), "entryPx": num(entry),
                "positionValue": num(value), "unrealizedPnl": num(size * (mark - entry)),
                "returnOnEquity": "0.0", "liquidationPx": None, "marginUsed": "0.0",
                "maxLeverage": 10, "leverage": {"type": "cross", "value": 10},
                "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"}}})
        av = ledger.equity(user)
        summary = {"accountValue": num(av), "totalNtlPos": num(ntl),
                   "totalRawUsd": num(ledger.cash(user)), "totalMarginUsed": "0.0"}
        return {"assetPositions": positions, "marginSummary": summary,
                "crossMarginSummary": dict(summary), "crossMaintenanceMarginUsed": "0.0",
                "withdrawable": num(max(av, 0.0)), "time": self.state_ms}

    def _vault_details(self, vault: str) -> dict | None:
        if vault == HLP_VAULT:
            return {"name": "Hyperliquidity Provider (HLP)", "vaultAddress": HLP_VAULT,
                    "leader": "0x677d831aef5328190852e24f13c46cac05f984e7", "description": "",
                    "portfolio": [], "apr": 0.0, "followers": [], "maxDistributable": 0.0,
                    "relationship": {"type": "parent",
                                     "data": {"childAddresses": list(HLP_CHILDREN)}}}
        if vault in HLP_CHILDREN:
            return {"name": HLP_CHILDREN[vault], "vaultAddress": vault, "leader": HLP_VAULT,
                    "relationship": {"type": "child"}, "portfolio": [], "followers": []}
        return None


def _frame(channel: str, data: Any) -> str:
    return orjson.dumps({"channel": channel, "data": data}).decode()


def _json(obj: Any) -> web.Response:
    return web.Response(body=orjson.dumps(obj), content_type="application/json")
