"""Venue-neutral events (DESIGN §3).

Every source (socket, node file, replay file, simulator) is turned into these by
a pure ``venues/<venue>/parse.py``; the engine only ever sees these. Amounts are
USD where the venue allows, sizes in coins, times in exchange milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

# Fill.kind values. Hyperliquid: adl iff dir == "Auto-Deleveraging"; liquidation
# iff dir starts with "Liquidated" and user == liquidation.liquidated_user.
OPEN = "open"
CLOSE = "close"
LIQUIDATION = "liquidation"
ADL = "adl"
OTHER = "other"
FILL_KINDS = (OPEN, CLOSE, LIQUIDATION, ADL, OTHER)

BUY = "buy"
SELL = "sell"


@dataclass(frozen=True, slots=True)
class Liquidation:
    """The ``liquidation`` object a fill carries (both sides of the trade carry it)."""

    liquidated_user: str | None
    mark_px: float
    method: str  # "market" | "backstop" | "" when unknown
    # The entry price of the position this fill closes, when the venue publishes it
    # (Lighter's maker_entry_quote_before / |maker_position_size_before|): the ADL
    # winner's capacity is then its unrealized PnL at mark_px (issue 10). None = unknown.
    entry_px: float | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    venue: str
    coin: str
    user: str
    side: str  # BUY | SELL
    px: float
    sz: float  # > 0, coins
    time_ms: int
    start_position: float  # signed size before this fill
    kind: str  # one of FILL_KINDS
    closed_pnl: float  # realized on the closed part, gross of fee
    fee: float  # negative = rebate
    tid: int
    hash: str
    liquidation: Liquidation | None = None
    dir: str = ""  # the venue's raw label, kept for audit

    @property
    def signed_sz(self) -> float:
        return self.sz if self.side == BUY else -self.sz

    @property
    def end_position(self) -> float:
        return self.start_position + self.signed_sz


@dataclass(frozen=True, slots=True)
class Mark:
    venue: str
    coin: str
    mark_px: float
    oracle_px: float | None
    time_ms: int


@dataclass(frozen=True, slots=True)
class Funding:
    """A funding payment of one account on one coin; ``amount_usd`` > 0 is received."""

    venue: str
    user: str
    coin: str
    amount_usd: float
    time_ms: int


@dataclass(frozen=True, slots=True)
class LedgerUpdate:
    """A non-trade cash movement.

    ``kind`` is the venue's delta type (deposit, withdraw, internalTransfer,
    liquidation, ...). ``delta_usd`` is the signed cash change of ``user``.
    ``account_value`` is set for liquidations (the pre-liquidation account value,
    the only public per-account shortfall input, venues.md §1.3) and for
    account-value overrides.
    """

    venue: str
    user: str
    kind: str
    delta_usd: float
    time_ms: int
    account_value: float | None = None
    known: bool = True  # False for a type the parser does not model (kept as other)


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    coin: str
    size: float  # signed
    entry_px: float
    # The venue's mark when the snapshot was taken (notional/|size|); the ledger
    # derives cash from it (paper §4.4 "cash-only baseline"). None = unknown.
    mark_px: float | None = None


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    venue: str
    user: str
    account_value: float | None
    positions: tuple[PositionSnapshot, ...]
    time_ms: int


@dataclass(frozen=True, slots=True)
class LiquidationOrder:
    """A CEX public liquidation order (a sample, never a complete record)."""

    venue: str
    symbol: str
    side: str
    qty: float
    bankruptcy_px: float
    avg_px: float | None
    time_ms: int
    bankruptcy_loss_usd: float | None = None
    pool: str | None = None  # the insurance pool the venue names for it (OKX instFamily)


@dataclass(frozen=True, slots=True)
class InsuranceFund:
    venue: str
    pool: str
    balance_usd: float
    time_ms: int
    symbols: tuple[str, ...] = ()  # the contracts the pool backs, when the venue says


@dataclass(frozen=True, slots=True)
class AdlSignal:
    """Venue-native ADL state (Bybit adlAlert, OKX adl-warning, Binance symbolAdlRisk)."""

    venue: str
    symbol: str
    state: str
    time_ms: int
    details: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class FeedGap:
    """Emitted after every reconnect: data between from_ms and to_ms may be missing."""

    venue: str
    channel: str
    from_ms: int
    to_ms: int
    reason: str = ""


Event = Union[
    Fill, Mark, Funding, LedgerUpdate, AccountSnapshot, LiquidationOrder,
    InsuranceFund, AdlSignal, FeedGap,
]


def event_time_ms(event: Event) -> int:
    """The exchange time of any event (FeedGap: the end of the gap)."""
    return event.to_ms if isinstance(event, FeedGap) else event.time_ms


class ParseError(ValueError):
    """A frame or line that cannot be turned into events. ``reason`` is short and
    stable (used as a metric label); the message says what was wrong."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class PartialParseError(ParseError):
    """Some parts of a frame were bad, others good: ``events`` are the good parts'
    events. The caller publishes them and counts the frame as an error (bad input
    never loses accepted data)."""

    def __init__(self, reason: str, message: str, events: list):
        super().__init__(reason, message)
        self.events = list(events)
