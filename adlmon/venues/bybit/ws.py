"""Bybit's public sources (venues.md §3, venues-wire.md §3; issue 11 "Collectors").

Two sockets: ``linear`` (``adlAlert.{pool}``, ``insurance.{pool}`` for the
configured pools, ``allLiquidation.{s}`` and ``tickers.{s}`` per symbol) and,
with ``inverse``, ``inverse`` (the same for the inverse pool and symbols).
Subscriptions go ``args_per_subscribe`` topics a message. Keepalive: the app
ping ``{"req_id": "100001", "op": "ping"}`` every 20 s; its answer
(``ret_msg: "pong"`` or ``op: "pong"``) clears it. ``adlAlert`` (1 s pushes) and
``tickers`` are busy channels; ``insurance`` (sent only on change) and
``allLiquidation`` are quiet. REST polls ``/v5/market/insurance`` per pool coin
and ``/v5/market/adlAlert`` (the same trigger inputs, each minute).

With read-only keys (:mod:`adlmon.venues.keys`), a third socket on the private
URL authenticates (``op: "auth"``, signed at each connect) and subscribes
``execution`` and ``position``: your own fills (ADL = ``AdlTrade``) and rank.
The key is sent, never received, so it is never in the capture.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from adlmon.net.session import ACK, DATA, ERROR, PONG, ChannelPolicy
from adlmon.venues import SourceContext
from adlmon.venues.bybit.config import BybitConfig
from adlmon.venues.bybit.parse import VENUE, BybitParser, channel_of
from adlmon.venues.feeds import Connection, FrameAdapter, RestPoll, VenueFeeds
from adlmon.net.quarantine import Quarantine
from adlmon.venues.keys import ApiKeys, load_keys

PING = {"req_id": "100001", "op": "ping"}
PRIVATE_TOPICS = ["execution", "position"]


def auth_message(keys: ApiKeys, now_s: float) -> dict:
    """The private socket's auth (wss-authentication.mdx): HMAC-SHA256 of
    ``GET/realtime{expires}`` with the secret, valid 10 s."""
    expires = int((now_s + 10) * 1000)
    sign = hmac.new(keys.secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
    return {"req_id": "auth", "op": "auth", "args": [keys.key, expires, sign]}


def classify(obj: Any) -> tuple[str, str]:
    if isinstance(obj, dict):
        if "topic" in obj:
            return DATA, channel_of(str(obj["topic"]))
        if obj.get("ret_msg") == "pong" or obj.get("op") in ("pong", "ping"):
            return PONG, ""
        if obj.get("success") is False:
            return ERROR, ""
        if obj.get("op") in ("subscribe", "auth"):
            return ACK, ""
    raise ValueError("not a Bybit frame")


def topics(pools: tuple[str, ...], symbols: tuple[str, ...]) -> list[str]:
    return ([f"adlAlert.{p}" for p in pools] + [f"insurance.{p}" for p in pools]
            + [f"allLiquidation.{s}" for s in symbols] + [f"tickers.{s}" for s in symbols])


def subscriptions(args: list[str], per_message: int) -> list[dict]:
    return [{"op": "subscribe", "args": args[i:i + per_message]} for i in range(0, len(args), per_message)]


def channels(cfg: BybitConfig, symbols: tuple[str, ...]) -> list[ChannelPolicy]:
    out = [ChannelPolicy("adlAlert", cfg.adl_alert_silence_budget_s), ChannelPolicy("insurance")]
    if symbols:
        out += [ChannelPolicy("allLiquidation"), ChannelPolicy("tickers", cfg.marks_silence_budget_s)]
    return out


def polls(cfg: BybitConfig) -> list[RestPoll]:
    coins = [*cfg.pools] + (["BTC", "ETH"] if cfg.inverse else [])
    return ([RestPoll("insurance", "/v5/market/insurance", (("coin", c),), cfg.insurance_poll_interval_s)
             for c in coins]
            + [RestPoll("adlAlert", "/v5/market/adlAlert", (), cfg.adl_alert_poll_interval_s)])


def feeds(ctx: SourceContext) -> VenueFeeds:
    cfg: BybitConfig = ctx.cfg
    parser = BybitParser()  # one for every socket: the inverse marks convert inverse pools
    conns = [("linear", cfg.linear_url, tuple(cfg.pools), cfg.symbols)]
    if cfg.inverse:
        conns.append(("inverse", cfg.inverse_url, ("inverse",), cfg.inverse_symbols))
    connections = [
        Connection(name, url, FrameAdapter(
            VENUE, channels(cfg, syms), subscriptions(topics(pools, syms), cfg.args_per_subscribe),
            classify, parser.parse_obj, ping=PING,
            fatal=lambda o: o.get("op") == "subscribe"))
        for name, url, pools, syms in conns]
    keys = load_keys(cfg)
    if keys is not None:  # your own ADL: execution + position on the private socket
        connections.append(Connection("private", cfg.private_url, FrameAdapter(
            VENUE, [ChannelPolicy("execution"), ChannelPolicy("position")],
            lambda: [auth_message(keys, time.time()), {"op": "subscribe", "args": PRIVATE_TOPICS}],
            classify, parser.parse_obj, ping=PING, fatal=lambda o: o.get("op") in ("subscribe", "auth"))))
    return VenueFeeds(
        VENUE, connections, rest_url=cfg.rest_url, polls=polls(cfg), parse_rest=parser.parse_rest,
        publish=ctx.publish, metrics=ctx.metrics, capture=ctx.capture,
        weight_per_min=cfg.rest_weight_per_min, ping_interval_s=cfg.ping_interval_s,
        liveness_timeout_s=cfg.liveness_timeout_s, backoff_initial_s=cfg.backoff_initial_s,
        backoff_max_s=cfg.backoff_max_s, first_timeout_s=cfg.first_timeout_s, rng=ctx.rng,
        quarantine=Quarantine(cfg.quarantine_path, cfg.quarantine_max_bytes), now_ms=ctx.now_ms)
