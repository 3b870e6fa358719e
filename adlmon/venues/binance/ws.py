"""Binance's public sources (venues.md §2, venues-wire.md §5; issue 11 "Collectors").

One combined stream (the streams are in the URL: nothing to subscribe);
``markPrice`` (every second) is busy, ``forceOrder`` (silent when nobody is
liquidated) quiet. Liveness is websocket control frames: the server's pings are
answered and count as frames, and our control ping every ``ping_interval_s``
must be ponged. REST polls ``/fapi/v1/insuranceBalance`` and
``/fapi/v1/symbolAdlRisk`` (weight 1 each) within ``rest_weight_per_min``.
"""

from __future__ import annotations

from typing import Any

from adlmon.net.quarantine import Quarantine
from adlmon.net.session import ACK, DATA, ERROR, ChannelPolicy
from adlmon.venues import SourceContext
from adlmon.venues.binance.config import BinanceConfig
from adlmon.venues.binance.parse import VENUE, BinanceParser, channel_of
from adlmon.venues.feeds import Connection, FrameAdapter, RestPoll, VenueFeeds


def classify(obj: Any) -> tuple[str, str]:
    if isinstance(obj, dict) and "result" in obj and "id" in obj:
        return ACK, ""
    if isinstance(obj, dict) and "code" in obj and "msg" in obj:
        return ERROR, ""
    ch = channel_of(obj)
    if ch:
        return DATA, ch
    raise ValueError("not a Binance market frame")


def polls(cfg: BinanceConfig) -> list[RestPoll]:
    return [RestPoll("insurance", "/fapi/v1/insuranceBalance", (), cfg.insurance_poll_interval_s),
            RestPoll("adlRisk", "/fapi/v1/symbolAdlRisk", (), cfg.adl_risk_poll_interval_s)]


def feeds(ctx: SourceContext) -> VenueFeeds:
    cfg: BinanceConfig = ctx.cfg
    parser = BinanceParser()
    conn = Connection("market", cfg.ws_url, FrameAdapter(
        VENUE, [ChannelPolicy("forceOrder"), ChannelPolicy("markPrice", cfg.marks_silence_budget_s)],
        [], classify, parser.parse_obj, control_pings=True))
    return VenueFeeds(
        VENUE, [conn], rest_url=cfg.rest_url, polls=polls(cfg), parse_rest=parser.parse_rest,
        publish=ctx.publish, metrics=ctx.metrics, capture=ctx.capture,
        weight_per_min=cfg.rest_weight_per_min, ping_interval_s=cfg.ping_interval_s,
        liveness_timeout_s=cfg.liveness_timeout_s, backoff_initial_s=cfg.backoff_initial_s,
        backoff_max_s=cfg.backoff_max_s, first_timeout_s=cfg.first_timeout_s, rng=ctx.rng,
        quarantine=Quarantine(cfg.quarantine_path, cfg.quarantine_max_bytes), now_ms=ctx.now_ms)
