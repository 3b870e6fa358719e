"""``[venues.dydx]``: the dYdX v4 indexer collectors (venues-wire.md §1.1, §1.8, §1.9).

Off by default. Limits are the indexer's code defaults (the deployed values
are not verified, venues-wire §1.1): 32 ``v4_trades`` per connection, 2
subscribes per second, 100 REST points per 10 s per IP.
"""

from __future__ import annotations

from dataclasses import dataclass

INSURANCE_FUND = "insurance_fund"  # the cross-market module account (venues-wire §1.9)


@dataclass(frozen=True)
class DydxConfig:
    enabled: bool = False
    ws_url: str = "wss://indexer.dydx.trade/v4/ws"
    rest_url: str = "https://indexer.dydx.trade"  # the indexer REST base (paths start /v4/)
    markets: tuple[str, ...] = ()  # tickers ("BTC-USD"); () = every market of /v4/perpetualMarkets
    subaccounts: tuple[str, ...] = ()  # "address/number" to watch (names ADL winners, §1.7 C)
    trades_per_connection: int = 32  # the indexer's v4_trades cap per connection: shard beyond it
    subscribes_per_s: float = 2.0  # subscribe pacing per connection (1008 close when exceeded)
    ping_interval_s: float = 30.0  # our control-frame ping; the server pings every 30 s itself
    liveness_timeout_s: float = 15.0  # no pong / no frame for this long = dead transport
    markets_silence_budget_s: float = 60.0  # v4_markets (oracle prices every block) reconnects after this
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    rest_points_per_10s: int = 100  # RATE_LIMIT_GET_POINTS per IP
    rest_page_limit: int = 1000  # trades per backfill page (API_LIMIT_V4)
    backfill_max_pages: int = 20  # per market and reconnect; what is left is a FeedGap
    lcd_url: str = ""  # a node's Cosmos REST for the insurance fund balance; "" = not read
    node_rest_url: str = ""  # a node's Cosmos REST for block decode (names ADL winners); "" = off
    decode_wait_ms: int = 3000  # an ADL fill waits this long (receive time) for its block, then goes unnamed
    insurance_funds: tuple[str, ...] = (INSURANCE_FUND,)  # module account names (§1.9)
    insurance_poll_interval_s: float = 60.0
    gap_ms: int = 5000  # the wave gap rule on this venue (DESIGN §4)
    merge_hold_ms: int = 2000  # events wait this long (receive time) to be put in time order across connections
    quarantine_path: str = "quarantine.jsonl"
    quarantine_max_bytes: int = 10_000_000


def _positive(v) -> bool:
    return v > 0


_URL_WS = (lambda v: v.startswith(("ws://", "wss://")), "must start with ws:// or wss://")
_URL_HTTP = (lambda v: v.startswith(("http://", "https://")), "must start with http:// or https://")
_URL_HTTP_OR_EMPTY = (lambda v: v == "" or v.startswith(("http://", "https://")),
                      'must be "" or start with http:// or https://')
_POS = (_positive, "must be positive")

# key -> (predicate, what is allowed): the value rules beyond the type (adlmon.config's style).
RULES = {
    "ws_url": _URL_WS,
    "rest_url": _URL_HTTP,
    "lcd_url": _URL_HTTP_OR_EMPTY,
    "node_rest_url": _URL_HTTP_OR_EMPTY,
    "decode_wait_ms": (lambda v: 0 <= v < 60000, "must be in 0..59999 ms"),
    "markets": (lambda v: all(0 < len(m) <= 40 for m in v), "must be market tickers like \"BTC-USD\""),
    "subaccounts": (lambda v: all(_subaccount_ok(s) for s in v),
                    'must be "address/number" with a number below 128000'),
    "trades_per_connection": (lambda v: 0 < v <= 32, "must be in 1..32 (the indexer's cap)"),
    "subscribes_per_s": _POS,
    "ping_interval_s": _POS,
    "liveness_timeout_s": _POS,
    "markets_silence_budget_s": _POS,
    "backoff_initial_s": _POS,
    "backoff_max_s": _POS,
    "rest_points_per_10s": _POS,
    "rest_page_limit": (lambda v: 0 < v <= 1000, "must be in 1..1000"),
    "backfill_max_pages": (lambda v: v >= 0, "must be >= 0"),
    "insurance_poll_interval_s": _POS,
    "gap_ms": (_positive, "must be a positive integer"),
    "merge_hold_ms": (lambda v: 0 <= v < 60000, "must be in 0..59999 ms"),
    "quarantine_max_bytes": (lambda v: v >= 0, "must be >= 0"),
}


def _subaccount_ok(s: str) -> bool:
    addr, sep, n = s.partition("/")
    return bool(sep and addr.startswith("dydx1")) and n.isdigit() and int(n) < 128000


def check(cfg: DydxConfig, source: str = "config.toml") -> list[str]:
    """Every rule broken by ``cfg``, as ``config.toml: [venues.dydx] key = value: allowed``."""
    errors = []
    for key, (ok, allowed) in RULES.items():
        value = getattr(cfg, key)
        if not ok(value):
            errors.append(f"{source}: [venues.dydx] {key} = {value!r}: {allowed}")
    if cfg.backoff_initial_s > cfg.backoff_max_s:
        errors.append(f"{source}: [venues.dydx] backoff_initial_s = {cfg.backoff_initial_s}: "
                      f"must not exceed backoff_max_s = {cfg.backoff_max_s}")
    return errors
