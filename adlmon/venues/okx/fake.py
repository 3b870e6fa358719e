"""A fake OKX on 127.0.0.1 (issue 11 "Fake venues"): real websocket + HTTP servers.

Rules played: ``{"op": "subscribe", "args": [{channel, instType|instId}]}``
acknowledged per arg (``event: subscribe``), an unknown channel is ``event:
error`` code 60018; the text ``ping`` is answered ``pong``; a socket without a
client frame for ``idle_close_s`` (30 s at the venue) is closed. REST
instruments and insurance-fund answer what the script set. :func:`scenario`
plays the current ``adl-warning`` shape (pushes only in warning/adl, then silence).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson

from adlmon.venues.fakeserver import FakeConn, FakeVenue

_CHANNELS = ("adl-warning", "liquidation-orders", "mark-price")
_PRIVATE = ("orders", "positions")


def topic_of(arg: dict) -> str:
    ch = arg.get("channel")
    return f"{ch}:{arg.get('instId')}" if ch == "mark-price" else f"{ch}:{arg.get('instType')}"


class FakeOkx(FakeVenue):
    venue = "okx"
    idle_close_s = 30.0

    def __init__(self, *, api_key: str = "", api_secret: str = "", passphrase: str = "", **kw):
        super().__init__(**kw)
        self.api_key, self.api_secret, self.passphrase = api_key, api_secret, passphrase
        self.authed: set[int] = set()
        self.auth_failures = 0

    async def on_text(self, conn: FakeConn, text: str) -> None:
        if text == "ping":
            self.app_pings += 1
            await conn.ws.send_str("pong")
            return
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            await conn.ws.send_str(orjson.dumps({"event": "error", "code": "60012",
                                                 "msg": f"Illegal request: {text[:40]}"}).decode())
            return
        if msg.get("op") == "login":
            a = (msg.get("args") or [{}])[0]
            want = base64.b64encode(hmac.new(self.api_secret.encode(),
                                             f"{a.get('timestamp')}GET/users/self/verify".encode(),
                                             hashlib.sha256).digest()).decode()
            ok = bool(self.api_key) and a.get("apiKey") == self.api_key and a.get("sign") == want \
                and a.get("passphrase") == self.passphrase
            if ok:
                self.authed.add(id(conn))
            else:
                self.auth_failures += 1
            await conn.ws.send_str(orjson.dumps({"event": "login", "code": "0" if ok else "60009",
                                                 "msg": "" if ok else "Login failed.", "connId": "fake"}).decode())
            return
        if msg.get("op") != "subscribe":
            return
        private = conn.path.endswith("/private")
        for arg in msg.get("args") or []:
            if private and (id(conn) not in self.authed or arg.get("channel") not in _PRIVATE):
                await conn.ws.send_str(orjson.dumps({"id": msg.get("id"), "event": "error", "code": "60011",
                                                     "msg": "Please log in", "connId": "fake"}).decode())
                continue
            if private:
                conn.topics.add(arg["channel"])
                await conn.ws.send_str(orjson.dumps({"id": msg.get("id"), "event": "subscribe", "arg": arg,
                                                     "connId": "fake"}).decode())
                continue
            if arg.get("channel") not in _CHANNELS:
                await conn.ws.send_str(orjson.dumps({"id": msg.get("id"), "event": "error", "code": "60018",
                                                     "msg": f"Wrong URL or channel:{arg.get('channel')}",
                                                     "connId": "fake"}).decode())
                continue
            conn.topics.add(topic_of(arg))
            await conn.ws.send_str(orjson.dumps({"id": msg.get("id"), "event": "subscribe", "arg": arg,
                                                 "connId": "fake"}).decode())


def adl_warning(ts: int, fam: str, state: str, bal: str, inst_type: str = "SWAP") -> tuple[str, str]:
    retired = {k: "" for k in ("ccy", "maxBal", "maxBalTs", "adlType", "adlBal", "adlRecBal", "decRate",
                               "adlRate", "adlRecRate")}
    return f"adl-warning:{inst_type}", orjson.dumps({
        "arg": {"channel": "adl-warning", "instType": inst_type},
        "data": [{"instType": inst_type, "instFamily": fam, "state": state, "bal": bal, "ts": str(ts),
                  **retired}]}).decode()


def liquidation(ts: int, inst: str, side: str, sz: str, bk_px: str, bk_loss: str,
                inst_type: str = "SWAP") -> tuple[str, str]:
    fam = inst.rsplit("-", 1)[0]
    return f"liquidation-orders:{inst_type}", orjson.dumps({
        "arg": {"channel": "liquidation-orders", "instType": inst_type},
        "data": [{"instId": inst, "instFamily": fam, "uly": fam, "instType": inst_type,
                  "details": [{"side": side, "posSide": "long" if side == "sell" else "short", "bkPx": bk_px,
                               "sz": sz, "bkLoss": bk_loss, "ccy": "", "ts": str(ts)}]}]}).decode()


def mark(ts: int, inst: str, px: str) -> tuple[str, str]:
    return f"mark-price:{inst}", orjson.dumps({"arg": {"channel": "mark-price", "instId": inst}, "data": [
        {"instType": "SWAP", "instId": inst, "markPx": px, "ts": str(ts)}]}).decode()


def rest_instruments(rows: list[tuple[str, str]]) -> str:
    return orjson.dumps({"code": "0", "msg": "", "data": [
        {"instId": i, "instFamily": i.rsplit("-", 1)[0], "instType": "SWAP", "ctVal": c} for i, c in rows]}).decode()


def rest_insurance(ts: int, fam: str, total: str) -> str:
    return orjson.dumps({"code": "0", "msg": "", "data": [{"total": total, "instFamily": fam, "instType": "SWAP",
                                                            "details": [{"balance": total, "amt": "", "ccy": "USDT",
                                                                         "type": "regular_update", "ts": str(ts)}]}]}).decode()


def order_fill(t: int, inst: str, side: str, px: str, sz: str, mark: str, trade_id: str,
               category: str = "adl") -> tuple[str, str]:
    return "orders", orjson.dumps({"arg": {"channel": "orders", "instType": "SWAP"}, "data": [{
        "instId": inst, "side": side, "fillPx": px, "fillSz": sz, "fillTime": str(t), "tradeId": trade_id,
        "category": category, "fillMarkPx": mark, "fillFee": "0", "state": "filled"}]}).decode()


def position(t: int, inst: str, pos: str, avg: str, adl: str) -> tuple[str, str]:
    return "positions", orjson.dumps({"arg": {"channel": "positions", "instType": "SWAP"}, "data": [{
        "instId": inst, "pos": pos, "avgPx": avg, "adl": adl, "posSide": "net", "uTime": str(t)}]}).decode()


T0 = 1_782_000_000_000  # after 2026-06-09: the current adl-warning shape


def scenario(t0: int = T0) -> list[tuple[str, tuple]]:
    """BTC-USDT goes warning, adl, warning, adl, then silence (normal after the
    silence timeout, seen on the marks' clock); its fund falls from 1000000 to 500000,
    and a liquidation's bkLoss of 600000 projects a shortfall."""
    return [
        ("preset", ("/api/v5/public/instruments", rest_instruments([("BTC-USDT-SWAP", "0.01")]))),
        ("preset", ("/api/v5/public/insurance-fund", rest_insurance(t0, "BTC-USDT", "1000000"))),
        ("push", mark(t0, "BTC-USDT-SWAP", "100000")),
        ("push", adl_warning(t0 + 1000, "BTC-USDT", "warning", "900000")),
        ("push", adl_warning(t0 + 2000, "BTC-USDT", "adl", "700000")),
        ("push", ("adl-warning:SWAP", '{"arg":{"channel":"adl-warning"},"data":[{"state":"adl"}]}')),  # fault
        ("push", adl_warning(t0 + 3000, "BTC-USDT", "warning", "600000")),
        ("drop", ()),
        ("push", adl_warning(t0 + 4000, "BTC-USDT", "adl", "500000")),
        ("push", liquidation(t0 + 4500, "BTC-USDT-SWAP", "sell", "300", "99000", "600000")),
        ("push", mark(t0 + 19000, "BTC-USDT-SWAP", "99500")),   # 15 000 ms after 4000: not yet
        ("push", mark(t0 + 19001, "BTC-USDT-SWAP", "99600")),   # past: normal at t0 + 19000
    ]
