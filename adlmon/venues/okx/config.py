"""``[venues.okx]`` (venues.md §4, venues-wire.md §4.1, §4.3).

One public socket: ``adl-warning`` and ``liquidation-orders`` per instType (one
subscription covers every family), ``mark-price`` per instrument. The venue
drops a socket after 30 s without data: the text ``ping`` every 20 s. 480
subscribes an hour per connection. REST: instruments (contract sizes, read
before the socket starts and then hourly) and ``/api/v5/public/insurance-fund``
per family (10 requests / 2 s per IP; a daily snapshot since 2026-06-09).
"""

from __future__ import annotations

from dataclasses import dataclass

from adlmon.venues.cexconfig import CexConfig
from adlmon.venues.okx.rules import SILENCE_MS


@dataclass(frozen=True)
class OkxConfig(CexConfig):
    ws_url: str = "wss://ws.okx.com:8443/ws/v5/public"
    private_url: str = "wss://ws.okx.com:8443/ws/v5/private"
    rest_url: str = "https://www.okx.com"
    inst_type: str = "SWAP"
    families: tuple[str, ...] = ("BTC-USDT", "ETH-USDT", "SOL-USDT")  # insurance-fund polls
    mark_symbols: tuple[str, ...] = ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP")
    adl_silence_ms: int = SILENCE_MS  # current adl-warning: no push this long = normal
    instruments_poll_interval_s: float = 3600.0
    insurance_poll_interval_s: float = 300.0
    rest_weight_per_min: float = 120.0  # a fifth of 10 requests / 2 s
    api_key_env: str = "ADLMON_OKX_API_KEY"
    api_secret_env: str = "ADLMON_OKX_API_SECRET"
    api_passphrase_env: str = "ADLMON_OKX_API_PASSPHRASE"

    section = "venues.okx"
