"""``[venues.binance]`` (venues.md §2, venues-wire.md §5).

One combined stream on the ``/market`` path (``!forceOrder@arr`` and
``!markPrice@arr@1s``; a connection with no routed path silently receives
nothing of these). The server pings every 3 min and drops a client without a
pong for 10 min (answered by the websocket layer; our own control ping every
``ping_interval_s``). REST weight 2400/min per IP; ``insuranceBalance`` and
``symbolAdlRisk`` cost 1 each, polled every minute and every 5 min (the rating
changes every 30 min).
"""

from __future__ import annotations

from dataclasses import dataclass

from adlmon.venues.cexconfig import CexConfig


@dataclass(frozen=True)
class BinanceConfig(CexConfig):
    ws_url: str = "wss://fstream.binance.com/market/stream?streams=!forceOrder@arr/!markPrice@arr@1s"
    private_url: str = "wss://fstream.binance.com/private/ws"
    rest_url: str = "https://fapi.binance.com"
    ping_interval_s: float = 60.0
    liveness_timeout_s: float = 30.0
    adl_risk_poll_interval_s: float = 300.0
    rest_weight_per_min: float = 240.0  # a tenth of the 2400/min IP budget
    api_key_env: str = "ADLMON_BINANCE_API_KEY"
    api_secret_env: str = "ADLMON_BINANCE_API_SECRET"

    section = "venues.binance"
