"""OKX's public sources (venues.md §4, venues-wire.md §4; issue 11 "Collectors").

One socket: ``{"op": "subscribe", "args": [...]}`` with ``adl-warning`` and
``liquidation-orders`` for ``inst_type`` and ``mark-price`` per instrument.
Keepalive: the literal text ``ping`` every ``ping_interval_s`` (< 30 s), answered
by the text ``pong``. ``mark-price`` is busy; ``adl-warning`` (silent in the
normal state since 2026-06-09) and ``liquidation-orders`` are quiet. REST: the
instrument list first (liquidation sizes are contracts × ``ctVal``), then
hourly; ``insurance-fund`` per configured family. With read-only keys a private
socket logs in (signed at each connect) and, 0.5 s later, subscribes ``orders``
and ``positions`` (your own ADL fills and adl rank).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from adlmon.net.quarantine import Quarantine
from adlmon.net.session import ACK, DATA, ERROR, ChannelPolicy
from adlmon.venues import SourceContext
from adlmon.venues.feeds import Connection, FrameAdapter, RestPoll, VenueFeeds
from adlmon.venues.keys import ApiKeys, load_keys
from adlmon.venues.okx.config import OkxConfig
from adlmon.venues.okx.parse import VENUE, OkxParser

PING, PONG_TEXT = b"ping", b"pong"


def login_message(keys: ApiKeys, now_s: float) -> dict:
    """The private socket's login (OKX docs "Login"): base64 HMAC-SHA256 of
    ``timestamp + "GET" + "/users/self/verify"`` with the secret."""
    ts = str(int(now_s))
    sign = base64.b64encode(hmac.new(keys.secret.encode(), f"{ts}GET/users/self/verify".encode(),
                                     hashlib.sha256).digest()).decode()
    return {"op": "login", "args": [{"apiKey": keys.key, "passphrase": keys.passphrase,
                                     "timestamp": ts, "sign": sign}]}


def classify(obj: Any) -> tuple[str, str]:
    if isinstance(obj, dict):
        if obj.get("event") == "error" or (obj.get("event") == "login" and obj.get("code") not in ("0", 0)):
            return ERROR, ""
        if "event" in obj:
            return ACK, ""
        arg = obj.get("arg")
        if isinstance(arg, dict) and "data" in obj:
            return DATA, str(arg.get("channel"))
    raise ValueError("not an OKX frame")


def subscriptions(cfg: OkxConfig) -> list[dict]:
    args = [{"channel": "adl-warning", "instType": cfg.inst_type},
            {"channel": "liquidation-orders", "instType": cfg.inst_type}]
    args += [{"channel": "mark-price", "instId": s} for s in cfg.mark_symbols]
    return [{"id": "1", "op": "subscribe", "args": args}]


def instruments(cfg: OkxConfig) -> RestPoll:
    return RestPoll("instruments", "/api/v5/public/instruments", (("instType", cfg.inst_type),),
                    cfg.instruments_poll_interval_s)


def feeds(ctx: SourceContext) -> VenueFeeds:
    cfg: OkxConfig = ctx.cfg
    parser = OkxParser()
    chans = [ChannelPolicy("adl-warning"), ChannelPolicy("liquidation-orders")]
    if cfg.mark_symbols:
        chans.append(ChannelPolicy("mark-price", cfg.marks_silence_budget_s))
    conn = Connection("public", cfg.ws_url, FrameAdapter(
        VENUE, chans, subscriptions(cfg), classify, parser.parse_obj, ping=PING, pong_text=PONG_TEXT))
    connections = [conn]
    keys = load_keys(cfg)
    if keys is not None:  # your own ADL: orders + positions after the login's answer
        private_args = [{"channel": "orders", "instType": cfg.inst_type},
                        {"channel": "positions", "instType": cfg.inst_type}]
        connections.append(Connection("private", cfg.private_url, FrameAdapter(
            VENUE, [ChannelPolicy("orders"), ChannelPolicy("positions")],
            lambda: [login_message(keys, time.time()), {"id": "2", "op": "subscribe", "args": private_args}],
            classify, parser.parse_obj, ping=PING, pong_text=PONG_TEXT, subscribe_interval_s=0.5)))
    polls = [instruments(cfg)] + [
        RestPoll("insurance", "/api/v5/public/insurance-fund",
                 (("instType", cfg.inst_type), ("instFamily", f), ("type", "regular_update"), ("limit", "1")),
                 cfg.insurance_poll_interval_s) for f in cfg.families]
    return VenueFeeds(
        VENUE, connections, rest_url=cfg.rest_url, polls=polls, first=[instruments(cfg)],
        parse_rest=parser.parse_rest, publish=ctx.publish, metrics=ctx.metrics, capture=ctx.capture,
        weight_per_min=cfg.rest_weight_per_min, weight_burst=10, ping_interval_s=cfg.ping_interval_s,
        liveness_timeout_s=cfg.liveness_timeout_s, backoff_initial_s=cfg.backoff_initial_s,
        backoff_max_s=cfg.backoff_max_s, first_timeout_s=cfg.first_timeout_s, rng=ctx.rng,
        quarantine=Quarantine(cfg.quarantine_path, cfg.quarantine_max_bytes), now_ms=ctx.now_ms)
