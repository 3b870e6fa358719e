"""``[venues.lighter]``: the Lighter venue's config section (venues-wire.md §2.1, §2.5).

Limits are the venue's documented ones (rate-limits page): 100 subscriptions
per connection and 1,000 per IP (``trade/{id}`` per market, so the markets
are sharded across ⌈N/100⌉ connections), 80 new connections a minute, about
200 client messages a minute (subscribes ≥ 300 ms apart); the socket closes
after 2 minutes without a client frame (an app ``ping`` every 30 s, as the
official client). REST: 60 requests a rolling minute for a standard account;
weighted 24,000/min with ``trades``/``recentTrades`` at 600 and the rest at
400 keeps any mix within both (≤ 40 trade lists, ≤ 60 requests a minute).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

WS_MAINNET = "wss://mainnet.zklighter.elliot.ai/stream"
REST_MAINNET = "https://mainnet.zklighter.elliot.ai"


@dataclass(frozen=True)
class LighterConfig:
    enabled: bool = False
    ws_url: str = WS_MAINNET  # append ?readonly=true from restricted regions (venues-wire §2.1)
    rest_url: str = REST_MAINNET
    markets: tuple[int, ...] = ()  # () = every market listed by /api/v1/orderBooks
    pool_index: int = -1  # the LLP account; -1 = read /api/v1/systemConfig liquidity_pool_index
    gap_ms: int = 5000  # a new wave starts after this much silence between ADL fills
    ping_interval_s: float = 30.0  # app ping; the venue closes a socket idle for 120 s
    liveness_timeout_s: float = 20.0  # no pong / no frame for this long = dead transport
    marks_silence_budget_s: float = 60.0  # market_stats/all is busy: reconnect after this silence
    subscriptions_per_connection: int = 100
    subscriptions_per_ip: int = 1000
    subscribe_interval_s: float = 0.35  # between subscribe messages of every connection (venue: >= 0.3 s per IP)
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    rest_weight_per_min: int = 24000
    rest_weight_trades: int = 600  # recentTrades, trades
    rest_weight_other: int = 400  # every other endpoint
    backfill_limit: int = 100  # recentTrades per market after a reconnect
    pool_poll_interval_s: float = 60.0  # /api/v1/account of the LLP pool (insurance fund, D)
    max_frame_bytes: int = 16 << 20  # websocket frame cap (a trade snapshot is ~50 trades, a few kB)
    merge_hold_ms: int = 1000  # events wait this long (receive time) to be put in time order across connections
    quarantine_path: str = "quarantine.jsonl"
    quarantine_max_bytes: int = 10_000_000

    def problems(self, source: str = "config.toml") -> list[str]:
        """Every value rule the types do not express, as ``file: [section] key = v: rule``."""
        where = f"{source}: [venues.lighter]"
        out = []
        for key, ok, rule in (
            ("ws_url", self.ws_url.startswith(("ws://", "wss://")), "must start with ws:// or wss://"),
            ("rest_url", self.rest_url.startswith(("http://", "https://")),
             "must start with http:// or https://"),
            ("markets", all(m >= 0 for m in self.markets) and len(set(self.markets)) == len(self.markets),
             "must be distinct non-negative market ids"),
            ("pool_index", self.pool_index >= -1, "must be an account index, or -1 (systemConfig)"),
            ("subscriptions_per_connection", 1 <= self.subscriptions_per_connection <= 100,
             "must be in 1..100 (the venue's cap per connection)"),
            ("subscriptions_per_ip", 1 <= self.subscriptions_per_ip <= 1000,
             "must be in 1..1000 (the venue's cap per IP)"),
            ("subscribe_interval_s", self.subscribe_interval_s >= 0, "must be >= 0 seconds"),
            ("backfill_limit", 1 <= self.backfill_limit <= 1000, "must be in 1..1000"),
            ("quarantine_max_bytes", self.quarantine_max_bytes >= 0, "must be >= 0"),
            ("merge_hold_ms", 0 <= self.merge_hold_ms < 60000, "must be in 0..59999 ms"),
            ("max_frame_bytes", self.max_frame_bytes > 0, "must be a positive number of bytes"),
        ):
            if not ok:
                out.append(f"{where} {key} = {getattr(self, key)!r}: {rule}")
        for f in fields(self):
            if f.name not in ("subscribe_interval_s", "merge_hold_ms") and (
                    f.name.endswith(("_s", "_ms", "_per_min")) or f.name.startswith("rest_weight")):
                v = getattr(self, f.name)
                if not v > 0:
                    out.append(f"{where} {f.name} = {v!r}: must be positive")
        if self.backoff_initial_s > self.backoff_max_s:
            out.append(f"{where} backoff_initial_s = {self.backoff_initial_s}: must not exceed "
                       f"backoff_max_s = {self.backoff_max_s}")
        return out
