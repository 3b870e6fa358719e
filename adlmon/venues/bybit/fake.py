"""A fake Bybit on 127.0.0.1 (issue 11 "Fake venues"): real websocket + HTTP servers.

Rules played: ``{"op": "subscribe", "args": [...]}`` with at most 10 topics a
message (more is ``success: false``), only the known public topics; the app
ping answered ``{"success": true, "ret_msg": "pong", "op": "ping"}``; a socket
without any client frame for ``idle_close_s`` (10 min at the venue) is closed.
REST ``/v5/market/insurance`` and ``/v5/market/adlAlert`` answer what the
script set. :func:`scenario` is a scripted fund drawdown and alert sequence.
"""

from __future__ import annotations

import hashlib
import hmac

import orjson

from adlmon.venues.fakeserver import FakeConn, FakeVenue

_TOPICS = ("adlAlert.", "insurance.", "allLiquidation.", "tickers.")


_PRIVATE = ("execution", "position")


class FakeBybit(FakeVenue):
    venue = "bybit"
    idle_close_s = 600.0

    def __init__(self, *, api_key: str = "", api_secret: str = "", **kw):
        super().__init__(**kw)
        self.api_key, self.api_secret = api_key, api_secret
        self.authed: set[int] = set()
        self.auth_failures = 0

    async def on_text(self, conn: FakeConn, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return
        op = msg.get("op") if isinstance(msg, dict) else None
        if op == "ping":
            self.app_pings += 1
            await conn.ws.send_str(orjson.dumps({"success": True, "ret_msg": "pong", "conn_id": "fake",
                                                 "req_id": msg.get("req_id", ""), "op": "ping"}).decode())
        elif op == "auth":
            key, expires, sign = (msg.get("args") or [None, 0, ""])[:3]
            want = hmac.new(self.api_secret.encode(), f"GET/realtime{expires}".encode(),
                            hashlib.sha256).hexdigest()
            ok = bool(self.api_key) and key == self.api_key and sign == want
            if ok:
                self.authed.add(id(conn))
            else:
                self.auth_failures += 1
            await conn.ws.send_str(orjson.dumps({"success": ok, "ret_msg": "" if ok else "invalid signature",
                                                 "op": "auth", "conn_id": "fake"}).decode())
        elif op == "subscribe":
            args = msg.get("args") or []
            private = conn.path.endswith("/private")
            if private and id(conn) not in self.authed:
                await conn.ws.send_str(orjson.dumps({"success": False, "ret_msg": "not authenticated",
                                                     "op": "subscribe"}).decode())
                return
            bad = [a for a in args if not (a in _PRIVATE if private else str(a).startswith(_TOPICS))]
            if len(args) > 10 or bad:
                why = "args size > 10" if len(args) > 10 else f"error:handler not found,topic:{bad[0]}"
                await conn.ws.send_str(orjson.dumps({"success": False, "ret_msg": why, "conn_id": "fake",
                                                     "op": "subscribe"}).decode())
                return
            conn.topics.update(args)
            await conn.ws.send_str(orjson.dumps({"success": True, "ret_msg": "", "conn_id": "fake",
                                                 "op": "subscribe"}).decode())


def adl_alert(ts: int, rows: list[dict], coin: str = "USDT", key: str = "data") -> tuple[str, str]:
    return f"adlAlert.{coin}", orjson.dumps({"topic": f"adlAlert.{coin}", "type": "snapshot", "ts": ts,
                                             key: rows}).decode()


def alert_row(symbol: str, b, pr, tt=10000, ipr=-0.3, sr=-0.25, coin: str = "USDT") -> dict:
    return {"c": coin, "s": symbol, "b": b, "mb": "", "i_pr": ipr, "pr": pr, "adl_tt": tt, "adl_sr": sr}


def insurance(ts: int, coin: str, symbols: str, balance: str) -> tuple[str, str]:
    return f"insurance.{coin}", orjson.dumps({"topic": f"insurance.{coin}", "type": "delta", "ts": ts, "data": [
        {"coin": coin, "symbols": symbols, "balance": balance, "updateTime": str(ts)}]}).decode()


def liquidation(ts: int, symbol: str, pos_side: str, size: str, bk_px: str) -> tuple[str, str]:
    return f"allLiquidation.{symbol}", orjson.dumps({"topic": f"allLiquidation.{symbol}", "type": "snapshot",
                                                     "ts": ts, "data": [{"T": ts, "s": symbol, "S": pos_side,
                                                                         "v": size, "p": bk_px}]}).decode()


def ticker(ts: int, symbol: str, mark: str) -> tuple[str, str]:
    return f"tickers.{symbol}", orjson.dumps({"topic": f"tickers.{symbol}", "type": "snapshot", "ts": ts,
                                              "data": {"symbol": symbol, "markPrice": mark}}).decode()


def rest_insurance(ts: int, rows: list[tuple[str, str, str]]) -> str:
    return orjson.dumps({"retCode": 0, "retMsg": "OK", "result": {"updatedTime": str(ts), "list": [
        {"coin": c, "symbols": s, "balance": b, "value": b} for c, s, b in rows]}, "time": ts}).decode()


def execution(t: int, symbol: str, side: str, px: str, qty: str, mark: str, exec_id: str,
              exec_type: str = "AdlTrade") -> tuple[str, str]:
    return "execution", orjson.dumps({"topic": "execution", "creationTime": t, "data": [{
        "category": "linear", "symbol": symbol, "side": side, "execPrice": px, "execQty": qty,
        "execType": exec_type, "execTime": str(t), "execId": exec_id, "markPrice": mark, "execFee": "0",
        "closedSize": qty}]}).decode()


def position(t: int, symbol: str, side: str, size: str, avg: str, rank: int) -> tuple[str, str]:
    return "position", orjson.dumps({"topic": "position", "creationTime": t, "data": [{
        "category": "linear", "symbol": symbol, "side": side, "size": size, "avgPrice": avg,
        "adlRankIndicator": rank, "updatedTime": str(t)}]}).decode()


T0 = 1_760_000_000_000


def user_scenario(t0: int = T0) -> list[tuple[str, tuple]]:
    """Your long 2 BTC (entry 50000, rank 5) is ADL'd in two fills 1 s apart at 60000
    and 59900 while the mark is 61000 and 60500, then a third, 10 s later (a second
    wave), closes the rest. B of wave 1 = 1000·1 + 600·0.5 = 1300; of wave 2 = 500·0.5."""
    return [
        ("push", position(t0, "BTCUSDT", "Buy", "2", "50000", 5)),
        ("push", execution(t0 + 1000, "BTCUSDT", "Sell", "60000", "1", "61000", "e1")),
        ("push", execution(t0 + 2000, "BTCUSDT", "Sell", "59900", "0.5", "60500", "e2")),
        ("drop", ()),
        ("push", execution(t0 + 12000, "BTCUSDT", "Sell", "59000", "0.5", "59500", "e3")),
        ("push", position(t0 + 12000, "BTCUSDT", "", "0", "0", 0)),
    ]


def scenario(t0: int = T0) -> list[tuple[str, tuple]]:
    """ZORAUSDT's isolated pool draws down: pr crosses i_pr (armed), recovers past
    adl_sr (off); FWOGUSDT's balance goes to 0 (armed) and back (off). Strings and
    numbers mixed, as the venue sends them. Expected: tests/venues/cex/test_cex_live.py."""
    return [
        ("preset", ("/v5/market/insurance", rest_insurance(t0, [("USDT", "ZORAUSDT", "20000")]))),
        ("preset", ("/v5/market/adlAlert", orjson.dumps({"retCode": 0, "retMsg": "OK", "result": {
            "updatedTime": str(t0), "list": []}, "time": t0}).decode())),
        ("push", ticker(t0, "ZORAUSDT", "0.1")),
        ("push", insurance(t0 + 1000, "USDT", "ZORAUSDT", "20000")),
        ("push", adl_alert(t0 + 1000, [alert_row("ZORAUSDT", 20000, -0.1), alert_row("FWOGUSDT", "5", "0")])),
        ("push", adl_alert(t0 + 2000, [alert_row("ZORAUSDT", "15000", "-0.3")])),     # == i_pr: not yet
        ("push", insurance(t0 + 2500, "USDT", "ZORAUSDT", "15000")),                   # drawdown 0.25
        ("push", adl_alert(t0 + 3000, [alert_row("ZORAUSDT", 15000, -0.35)])),         # armed
        ("push", liquidation(t0 + 3100, "ZORAUSDT", "Buy", "100000", "0.12")),         # long at bk 0.12, mark 0.1: 2000
        ("drop", ()),
        ("push", adl_alert(t0 + 4000, [alert_row("ZORAUSDT", "15000", "-0.25")])),     # == adl_sr: stays
        ("push", adl_alert(t0 + 5000, [alert_row("ZORAUSDT", 15000, -0.2)])),          # off
        ("push", adl_alert(t0 + 6000, [alert_row("FWOGUSDT", 0, 0)], key="list")),     # b == 0: armed
        ("push", ("insurance.USDT", "{not json")),                                     # a fault: counted
        ("push", adl_alert(t0 + 7000, [alert_row("FWOGUSDT", "0.5", "0")])),           # off
    ]
