"""``[venues.bybit]`` (venues.md §3, venues-wire.md §3.1).

``adlAlert.{USDT,USDC}`` and ``insurance.{USDT,USDC}`` on the linear socket,
``adlAlert.inverse``/``insurance.inverse`` on the inverse one; one
``allLiquidation.{symbol}`` and ``tickers.{symbol}`` per configured symbol (no
wildcard exists). The venue cuts a socket after 10 min without ping: an app
ping every 20 s (the venue's recommendation). REST: 600 requests / 5 s per IP;
the default 600 weight/min is a small share of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from adlmon.venues.cexconfig import CexConfig


@dataclass(frozen=True)
class BybitConfig(CexConfig):
    linear_url: str = "wss://stream.bybit.com/v5/public/linear"
    inverse_url: str = "wss://stream.bybit.com/v5/public/inverse"
    private_url: str = "wss://stream.bybit.com/v5/private"
    rest_url: str = "https://api.bybit.com"
    pools: tuple[str, ...] = ("USDT", "USDC")  # linear adlAlert / insurance topics
    inverse: bool = True  # also adlAlert.inverse / insurance.inverse
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT")  # allLiquidation + tickers, linear
    inverse_symbols: tuple[str, ...] = ("BTCUSD", "ETHUSD")  # inverse marks convert inverse pools to USD
    args_per_subscribe: int = 10
    adl_alert_silence_budget_s: float = 30.0  # adlAlert pushes every 1 s
    adl_alert_poll_interval_s: float = 60.0  # REST /v5/market/adlAlert (updated every minute)
    api_key_env: str = "ADLMON_BYBIT_API_KEY"
    api_secret_env: str = "ADLMON_BYBIT_API_SECRET"

    section = "venues.bybit"
