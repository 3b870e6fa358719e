"""A fake Binance USDⓈ-M on 127.0.0.1 (issue 11 "Fake venues"): real websocket + HTTP servers.

Rules played: streams only on the ``/market`` path (``/market/stream?streams=a/b``
wraps frames ``{"stream", "data"}``, ``/market/ws/<stream>`` sends them raw); a
connection with no routed path is accepted and silently gets nothing, as the
venue's routing change does; the server sends a control ping every
``ping_every_s`` and closes a connection whose pong is not back within
``pong_timeout_s``. REST ``insuranceBalance`` and ``symbolAdlRisk`` answer
what the script set. :func:`scenario` plays a fund drawdown and a high ADL risk.
"""

from __future__ import annotations

import asyncio

import orjson

from adlmon.venues.fakeserver import FakeConn, FakeVenue


class FakeBinance(FakeVenue):
    venue = "binance"

    def __init__(self, *, ping_every_s: float = 180.0, pong_timeout_s: float = 600.0, **kw):
        super().__init__(**kw)
        self.ping_every_s = ping_every_s
        self.pong_timeout_s = pong_timeout_s
        self.closed_no_pong = 0
        self.pings_sent = 0

    def accepts(self, path: str) -> bool:
        return path.startswith("/market/")

    async def on_open(self, conn: FakeConn) -> None:
        if conn.path.startswith("/market/ws/"):
            conn.topics.add(conn.path[len("/market/ws/"):])
        elif conn.path == "/market/stream":
            conn.topics.update(s for s in conn.query.get("streams", "").split("/") if s)
        self._tasks.add(asyncio.create_task(self._pinger(conn)))

    async def _pinger(self, conn: FakeConn) -> None:
        while not conn.ws.closed:
            await asyncio.sleep(self.ping_every_s)
            before = conn.pongs
            try:
                await conn.ws.ping(b"fake")
                self.pings_sent += 1
            except (ConnectionResetError, RuntimeError):
                return
            waited = 0.0
            while conn.pongs == before and waited < self.pong_timeout_s:
                await asyncio.sleep(0.01)
                waited += 0.01
            if conn.pongs == before:
                self.closed_no_pong += 1
                await conn.ws.close(code=1008, message=b"pong timeout")
                return

    async def on_text(self, conn: FakeConn, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return
        if isinstance(msg, dict) and msg.get("method") == "SUBSCRIBE":
            conn.topics.update(msg.get("params") or [])
            await conn.ws.send_str(orjson.dumps({"result": None, "id": msg.get("id")}).decode())

    async def push_data(self, stream: str, data) -> int:
        """``data`` (a JSON-able object) on ``stream``, wrapped per connection kind."""
        n = 0
        for c in self.subscribed(stream):
            frame = data if c.path.startswith("/market/ws/") else {"stream": stream, "data": data}
            await c.ws.send_str(frame if isinstance(frame, str) else orjson.dumps(frame).decode())
            n += 1
        return n

    async def play(self, steps):
        for kind, args in steps:
            if kind == "data":
                await self.wait_subscribed(args[0])
                await self.push_data(*args)
            else:
                await super().play([(kind, args)])


def force_order(ts: int, symbol: str, side: str, qty: str, px: str, avg: str) -> tuple[str, dict]:
    return "!forceOrder@arr", {"e": "forceOrder", "E": ts, "o": {
        "s": symbol, "S": side, "o": "LIMIT", "f": "IOC", "q": qty, "p": px, "ap": avg, "X": "FILLED",
        "l": qty, "z": qty, "T": ts}}


def marks(ts: int, rows: list[tuple[str, str]]) -> tuple[str, list]:
    return "!markPrice@arr@1s", [{"e": "markPriceUpdate", "E": ts, "s": s, "p": p, "i": p, "P": p,
                                  "r": "0.0001", "T": ts + 3600_000} for s, p in rows]


def rest_insurance(ts: int, usdt: str) -> str:
    return orjson.dumps([{"symbols": ["BTCUSDT", "ETHUSDT"], "assets": [
        {"asset": "USDT", "marginBalance": usdt, "updateTime": ts},
        {"asset": "BTC", "marginBalance": "1.5", "updateTime": ts}]}]).decode()


def rest_adl_risk(ts: int, rows: list[tuple[str, str]]) -> str:
    return orjson.dumps([{"symbol": s, "adlRisk": r, "updateTime": ts} for s, r in rows]).decode()


T0 = 1_760_000_000_000
H = 3600_000


def scenario(t0: int = T0) -> list[tuple[str, tuple]]:
    """The USDT pool falls 1000 -> 900 -> 750 (drawdown 0.25: a warning) while
    ETHUSDT's ADL risk turns high then medium; two liquidations, one through
    its bankruptcy price (a 50 USD loss), one not."""
    return [
        ("preset", ("/fapi/v1/insuranceBalance", rest_insurance(t0, "1000"))),
        ("preset", ("/fapi/v1/symbolAdlRisk", rest_adl_risk(t0, [("BTCUSDT", "low"), ("ETHUSDT", "medium")]))),
        ("data", marks(t0 + 500, [("BTCUSDT", "100000"), ("ETHUSDT", "4000")])),
        ("rest", ("/fapi/v1/insuranceBalance", rest_insurance(t0 + 1 * H, "900"))),
        ("rest", ("/fapi/v1/symbolAdlRisk", rest_adl_risk(t0 + 1 * H, [("BTCUSDT", "low"), ("ETHUSDT", "high")]))),
        ("data", force_order(t0 + 1 * H + 10, "ETHUSDT", "SELL", "1", "4000", "3950")),
        ("data", force_order(t0 + 1 * H + 20, "BTCUSDT", "BUY", "1", "100000", "99000")),
        ("drop", ()),
        ("data", ("!forceOrder@arr", "[garbage")),
        ("rest", ("/fapi/v1/insuranceBalance", rest_insurance(t0 + 2 * H, "750"))),
        ("rest", ("/fapi/v1/symbolAdlRisk", rest_adl_risk(t0 + 2 * H, [("BTCUSDT", "low"), ("ETHUSDT", "medium")]))),
    ]
