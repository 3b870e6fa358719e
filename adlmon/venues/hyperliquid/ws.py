"""Hyperliquid's public websocket sources (venues.md §1.1, §1.2, §1.7, §1.9).

Sources (``[venues.hyperliquid] sources``):

* ``trades``: ``trades`` per coin; each frame's new trades give one ``Mark``
  per coin (last trade price at the trade time, the paper's mark rule).
  Deduplicated on (coin, tid) across reconnect backfills (bounded memory).
* ``marks``: ``activeAssetCtx`` per coin (venue mark and oracle; the frame has
  no time, so it is stamped with the local estimate of venue time), or
  ``allMids`` (one subscription for every coin) with ``marks_feed = "allMids"``.
* ``vault_fills`` / ``vault_events``: ``userFills`` / ``userEvents`` (channel
  ``user``) of each liquidator vault, one connection per vault because a
  ``user`` frame does not name its user. Deduplicated on (user, coin, tid)
  across both channels and across the ``isSnapshot`` backfill sent after
  every reconnect, so a fill the venue re-sends is counted once; a fill of the
  older shape without ``tid`` (the SDK's recorded userFills) on (user, coin,
  hash, oid, time, px, sz, side) instead (:func:`fill_key`).
* ``vault_state`` (REST, ``rest.py``): the vaults' ``clearinghouseState``.

What the public websocket shows of an ADL (venues.md §1.7, §1.9): only the
*vault's* side, a fill of the vault whose ``liquidation.liquidatedUser`` is
the vault itself (dir "Liquidated Cross …"; the vault is never market-
liquidated, it is ADL'd). The winner's side is inferred from it: same coin,
px, sz, time, tid and liquidation object, the opposite side, and as user the
vault's counterparty from the ``trades`` frame of the same (coin, tid)
(``users = [buyer, seller]``). Without ``trades`` the winner is unknown and
recorded as ``unknown-winner``: needed budget B is exact, the production
haircut is then taken over all winners together (a lower bound of
Σ_users(…)+) and ``accounts`` counts 1. The winner's ``startPosition`` and
``closedPnl`` are not public: the inferred fill closes ``sz`` of a position of
exactly ``sz`` with closedPnl 0, unless the ledger knows the winner
(:func:`complete_inferred_fill`).

Ordering: the engine groups events by timestamp and takes each loser's equity
before the block of its ADL fills (engine.py), but the vault and the market
streams arrive on different connections. :class:`VaultTradeJoin` merges them:
vault events wait until the released market stream has passed their time, and
a ``trades`` frame naming a watched vault waits for that vault's fills (each
at most ``join_hold_ms`` of venue time). A live run then feeds the engine what
a replay of the node files would, for everything the public feeds carry.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict, deque
from dataclasses import replace
from typing import Any, Awaitable, Callable, Iterable

from adlmon.config import HyperliquidConfig
from adlmon.events import (
    ADL, BUY, LIQUIDATION, SELL, AccountSnapshot, Event, Fill, ParseError,
)
from adlmon.metrics import SourceMetrics
from adlmon.net.backoff import Backoff, RepeatedFailure
from adlmon.net.quarantine import Quarantine
from adlmon.net.rest import RestClient, WeightLimiter
from adlmon.net.session import ACK, DATA, ERROR, PONG, ChannelPolicy, NullMetrics, WsSession
from adlmon.supervise import Supervisor
from adlmon.venues.dedupe import SeenSet
from adlmon.venues.hyperliquid.parse import VENUE, parse_ws_message
from adlmon.venues.hyperliquid.rest import (
    InfoClient, Vault, VaultStatePoller, discover_coins, discover_liquidators, known_liquidators,
    slug,
)

log = logging.getLogger(__name__)

PING = {"method": "ping"}
MAX_SUBSCRIPTIONS = 1000  # per IP, across connections (venues.md §1.1)
MAX_USERS = 10  # distinct users in user subscriptions per IP
UNKNOWN_WINNER = "unknown-winner"
# ``source`` label values (adlmon.metrics); a vault session's is its pool name (slug).
MARKET_SOURCE = "market"
NODE_SOURCE = "node"
INFERRED_ADL_DIR = "Auto-Deleveraging (inferred from the vault fill)"
_CHANNEL_RE = re.compile(rb'"channel"\s*:\s*"([A-Za-z0-9_]{1,40})"')
_GREETING = b"Websocket connection established."


def subscribe(sub: dict) -> dict:
    return {"method": "subscribe", "subscription": sub}


def fill_key(user: str, f: Any) -> tuple:
    """Dedupe key of one raw WsFill of ``user``: (user, coin, tid), or, for the older shape
    without ``tid``, (user, coin, hash, oid, time, px, sz, side): every such fill would
    otherwise share tid 0 and all but the first of a coin be dropped."""
    tid = f.get("tid")
    if tid is not None:
        return (user, f.get("coin"), tid)
    return (user, f.get("coin"), f.get("hash"), f.get("oid"), f.get("time"), f.get("px"),
            f.get("sz"), f.get("side"))


class _HyperliquidFrames:
    """What every Hyperliquid connection shares: ping, pong, acks, errors, greeting."""

    venue = VENUE

    def ping_message(self) -> dict:
        return PING

    def classify(self, obj: Any) -> tuple[str, str]:
        channel = obj.get("channel") if isinstance(obj, dict) else None
        if channel == "pong":
            return PONG, channel
        if channel == "subscriptionResponse":
            return ACK, channel
        if channel == "error":
            return ERROR, channel
        if not isinstance(channel, str):
            raise ParseError("missing_field", "frame has no 'channel'")
        return DATA, channel

    def error_is_fatal(self, obj: Any) -> bool:
        # A duplicate subscribe is harmless; anything else means a subscription is missing.
        data = obj.get("data") if isinstance(obj, dict) else None
        return not (isinstance(data, str) and data.startswith("Already subscribed"))

    def ignore_text(self, raw: bytes) -> bool:
        return raw.strip() == _GREETING

    def guess_channel(self, raw: bytes) -> str | None:
        m = _CHANNEL_RE.search(raw)
        return m.group(1).decode() if m else None


class VaultTradeJoin:
    """Merges the vault connections into the market stream in time order; infers ADL winners.

    Two queues (module docstring, "Ordering"):

    * market outputs (a ``trades`` frame's marks, an ``activeAssetCtx`` mark)
      are released in arrival order; a ``trades`` frame that contains trades of
      a watched vault waits until the vault's fills of those (coin, tid) have
      arrived on the vault connection, and every frame waits while a vault
      connection is down and has not yet delivered its ``isSnapshot`` backfill
      (else the market stream would run past fills that are on their way);
    * vault events are released once the released market stream has reached
      their time; a fill at exactly that time also waits for its trade (for the
      winner), a fill the stream has passed does not (its trade was lost).

    So the engine sees a block's vault fills and inferred winners before the
    marks of that block, whichever connection was faster. Nothing waits longer
    than ``hold_ms`` of venue time (``now_ms``, the daemon's estimate; well under
    ``gap_ms`` so a late fill still joins its wave): after that it is released as
    is (counted in ``released_late``; a vault ADL fill without its trade gets
    ``unknown-winner``). ``enabled`` False (no trades source): nothing is held.
    """

    def __init__(self, vaults: Iterable[str], enabled: bool, hold_ms: int = 2000,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 max_trades: int = 100_000):
        self.vaults = {v.lower() for v in vaults}
        self.enabled = enabled
        self.hold_ms = hold_ms
        self.wall = now_ms
        self.watermark_ms: int | None = None  # time of the latest released market frame
        self._trades: OrderedDict[tuple[str, int], tuple[str, str]] = OrderedDict()
        self.max_trades = max_trades
        self._arrived = SeenSet(max_trades)  # (coin, tid) of vault fills received
        self._vault: list[tuple[float, Event]] = []
        self._market: deque[tuple[float, int | None, set, list[Event]]] = deque()
        self.lost: set[str] = set()  # vaults whose connection is down or not yet backfilled
        self.inferred = 0
        self.unknown_winners = 0
        self.released_late = 0

    def vault_lost(self, vault: str) -> None:
        if self.enabled:
            self.lost.add(vault.lower())

    def vault_synced(self, vault: str) -> list[Event]:
        """The vault's connection is back and its backfill is in: held frames may go."""
        self.lost.discard(vault.lower())
        return self._drain(expire=False) if self._market or self._vault else []

    def drop_vault_events(self, vault: str, until_ms: int | None) -> int:
        """Forget held events of ``vault`` at or before ``until_ms`` (a bootstrap
        snapshot of that time already contains them); returns how many."""
        if until_ms is None or not self._vault:
            return 0
        vault = vault.lower()
        keep = [(since, e) for since, e in self._vault
                if not (getattr(e, "user", "").lower() == vault and e.time_ms <= until_ms)]
        dropped = len(self._vault) - len(keep)
        self._vault = keep
        return dropped

    @property
    def held(self) -> int:
        return len(self._vault) + sum(len(m[3]) for m in self._market)

    def on_market(self, trades: list[dict], events: list[Event]) -> list[Event]:
        """One market frame: its new (deduplicated) trades and the events parsed from it."""
        if not self.enabled:
            return events
        t_frame = None
        expected = set()
        for tr in trades:
            t = tr.get("time")
            if isinstance(t, int) and (t_frame is None or t > t_frame):
                t_frame = t
            users = tr.get("users")
            if isinstance(users, list) and len(users) == 2:
                buyer, seller = str(users[0]).lower(), str(users[1]).lower()
                if buyer in self.vaults or seller in self.vaults:
                    key = (tr.get("coin"), tr.get("tid"))
                    self._trades[key] = (buyer, seller)
                    if len(self._trades) > self.max_trades:
                        self._trades.popitem(last=False)
                    if key not in self._arrived:
                        expected.add(key)
        if t_frame is None and events:
            t_frame = max(e.time_ms for e in events)
        self._market.append((self.wall(), t_frame, expected, events))
        return self._drain(expire=False)

    def add_vault_events(self, events: list[Event], fill_keys: Iterable[tuple[str, int]] = ()) -> list[Event]:
        """Events of a vault connection; ``fill_keys``: (coin, tid) of every fill the
        frame carried, including duplicates and history not applied (the market
        stream waits for their arrival, not for their application)."""
        if not self.enabled:
            return self._expand(events, with_trades=False)
        for key in fill_keys:
            self._arrived.add(key)
        now = self.wall()
        self._vault.extend((now, e) for e in events)
        return self._drain(expire=False)

    def expire(self) -> list[Event]:
        """Release what waited longer than ``hold_ms``."""
        if not self._market and not self._vault:
            return []
        return self._drain(expire=True)

    def flush(self) -> list[Event]:
        """Everything still held, in order (shutdown: nothing received is dropped)."""
        out: list[Event] = []
        while self._market:
            _since, t, _expected, events = self._market.popleft()
            if t is not None and (self.watermark_ms is None or t > self.watermark_ms):
                self.watermark_ms = t
            out += self._release_vault(self.wall(), expire=False) + events
        held, self._vault = self._vault, []
        return out + self._expand([e for _s, e in held], with_trades=True)

    def _drain(self, expire: bool) -> list[Event]:
        now = self.wall()
        out: list[Event] = []
        arrived = self._arrived
        while self._market:
            since, t, expected, events = self._market[0]
            if expected:
                expected.difference_update([k for k in expected if k in arrived])
            if expected or self.lost:
                if not (expire and now - since >= self.hold_ms):
                    break
                self.released_late += 1
            self._market.popleft()
            if t is not None and (self.watermark_ms is None or t > self.watermark_ms):
                self.watermark_ms = t
            if self._vault:
                out += self._release_vault(now, expire=False)
            out += events
        if self._vault:
            out += self._release_vault(now, expire)
        return out

    def _release_vault(self, now: float, expire: bool) -> list[Event]:
        wm = self.watermark_ms
        ready, keep = [], []
        for since, e in self._vault:
            # A fill waits for its trade only while the market stream is still at its
            # time (the trades of its other coins may follow); once the stream is past
            # it, a trade not seen was lost in a reconnect and will not come.
            ok = wm is not None and (e.time_ms < wm or e.time_ms == wm and (
                e.__class__ is not Fill or (e.coin, e.tid) in self._trades))
            if ok:
                ready.append(e)
            elif expire and now - since >= self.hold_ms:
                ready.append(e)
                self.released_late += 1
            else:
                keep.append((since, e))
        self._vault = keep
        return self._expand(ready, with_trades=True) if ready else []

    def _expand(self, events: list[Event], with_trades: bool) -> list[Event]:
        """Each vault fill that is the vault's side of an ADL gets its winner fill before it."""
        out: list[Event] = []
        for e in events:
            if e.__class__ is Fill and e.kind == LIQUIDATION and e.liquidation is not None \
                    and e.user.lower() in self.vaults:
                out.append(self._winner(e, self._trades.get((e.coin, e.tid)) if with_trades else None))
            out.append(e)
        return out

    def _winner(self, vault_fill: Fill, users: tuple[str, str] | None) -> Fill:
        """The inferred winner side of an ADL against ``vault_fill.user`` (module docstring)."""
        vault = vault_fill.user.lower()
        winner = None
        if users is not None:
            buyer, seller = users
            winner = seller if buyer == vault else buyer if seller == vault else None
        if winner is None:
            winner = UNKNOWN_WINNER
            self.unknown_winners += 1
        self.inferred += 1
        side = SELL if vault_fill.side == BUY else BUY
        # The winner closes: a long (start +sz) when it sells, a short when it buys.
        start = vault_fill.sz if side == SELL else -vault_fill.sz
        return Fill(VENUE, vault_fill.coin, winner, side, vault_fill.px, vault_fill.sz,
                    vault_fill.time_ms, start, ADL, 0.0, 0.0, vault_fill.tid, vault_fill.hash,
                    vault_fill.liquidation, INFERRED_ADL_DIR)


def complete_inferred_fill(fill: Fill, ledger) -> Fill:
    """An inferred winner fill with the ledger's start position and realized PnL, when the
    ledger holds the winner on the closed side (else unchanged)."""
    if fill.dir != INFERRED_ADL_DIR or fill.user == UNKNOWN_WINNER:
        return fill
    size, entry = ledger.position(fill.user, fill.coin)
    closing_long = fill.side == SELL
    if size == 0.0 or (size > 0.0) != closing_long:
        return fill
    q = min(fill.sz, abs(size))
    pnl = q * (fill.px - entry) * (1.0 if size > 0 else -1.0)
    return replace(fill, start_position=size, closed_pnl=pnl)


class MarketAdapter(_HyperliquidFrames):
    """``trades`` and mark subscriptions of one connection."""

    def __init__(self, coins: list[str], *, trades: bool, marks: str | None, silence_budget_s: float,
                 join: VaultTradeJoin, now_ms: Callable[[], int], seen: SeenSet | None = None):
        self.coins = list(coins)
        self.trades = trades
        self.marks = marks  # "activeAssetCtx" | "allMids" | None
        self.join = join
        self.now_ms = now_ms
        self.seen = seen or SeenSet()
        self.channels = []
        if trades:
            self.channels.append(ChannelPolicy("trades", silence_budget_s))
        if marks:
            self.channels.append(ChannelPolicy(marks, silence_budget_s))

    def subscriptions(self) -> list[dict]:
        subs = []
        if self.trades:
            subs += [subscribe({"type": "trades", "coin": c}) for c in self.coins]
        if self.marks == "activeAssetCtx":
            subs += [subscribe({"type": "activeAssetCtx", "coin": c}) for c in self.coins]
        elif self.marks == "allMids":
            subs.append(subscribe({"type": "allMids"}))
        return subs

    def parse(self, channel: str, obj: Any) -> list[Event]:
        if channel == "trades":
            data = obj.get("data")
            if not isinstance(data, list):
                raise ParseError("missing_field", "trades frame: 'data' is not a list")
            fresh = [tr for tr in data if isinstance(tr, dict)
                     and self.seen.add((tr.get("coin"), tr.get("tid")))]
            if not fresh:
                return []
            return self.join.on_market(fresh, parse_ws_message({"channel": "trades", "data": fresh}))
        return self.join.on_market([], parse_ws_message(obj, recv_ms=self.now_ms()))


class VaultAdapter(_HyperliquidFrames):
    """``userFills`` and ``userEvents`` of one vault (one connection: ``user`` frames are anonymous)."""

    def __init__(self, vault: str, *, fills: bool, events: bool, join: VaultTradeJoin,
                 seen: SeenSet, now_ms: Callable[[], int]):
        self.vault = vault.lower()
        self.fills = fills
        self.events = events
        self.join = join
        self.seen = seen
        self.now_ms = now_ms
        self.watermark_ms: int | None = None  # fills at or before it are in the bootstrap snapshot
        self.snapshots = 0  # isSnapshot frames seen (the first is history before our start)
        self.backfilled = 0  # fills a snapshot frame added after a reconnect
        self.channels = []
        if fills:
            self.channels.append(ChannelPolicy("userFills", None))
        if events:
            self.channels.append(ChannelPolicy("user", None))

    def subscriptions(self) -> list[dict]:
        subs = []
        if self.fills:
            subs.append(subscribe({"type": "userFills", "user": self.vault}))
        if self.events:
            subs.append(subscribe({"type": "userEvents", "user": self.vault}))
        return subs

    def bootstrapped(self, snapshot: AccountSnapshot) -> None:
        self.watermark_ms = snapshot.time_ms

    def on_connection(self, up: bool) -> list[Event]:
        """Session hook. Down: the join holds the market stream for this vault. Up:
        with userFills, the isSnapshot backfill (the next frame) releases it."""
        if not up:
            self.join.vault_lost(self.vault)
            return []
        return [] if self.fills else self.join.vault_synced(self.vault)

    def parse(self, channel: str, obj: Any) -> list[Event]:
        data = obj.get("data")
        snapshot = channel == "userFills" and isinstance(data, dict) and bool(data.get("isSnapshot"))
        if snapshot:
            self.snapshots += 1
        # Duplicates go before parsing: the raw fill has the fields of its key (fill_key).
        fills = data.get("fills") if isinstance(data, dict) else None
        keys = []
        if isinstance(fills, list):
            user = self.vault.lower()
            keys = [(f.get("coin"), f.get("tid")) for f in fills if isinstance(f, dict)]
            new = [f for f in fills if not isinstance(f, dict) or self.seen.add(fill_key(user, f))]
            if len(new) != len(fills):
                obj = {**obj, "data": {**data, "fills": new}}
        events = parse_ws_message(obj, user=self.vault, recv_ms=self.now_ms())
        out = []
        wm = self.watermark_ms
        for e in events:
            if e.__class__ is Fill:
                # History the bootstrap snapshot already contains (or, with no snapshot,
                # what happened before our first connection) is not ours to apply.
                if (wm is not None and e.time_ms <= wm) or (
                        snapshot and self.snapshots == 1 and wm is None):
                    continue
                if snapshot:
                    self.backfilled += 1
            out.append(e)
        released = self.join.add_vault_events(out, keys) if out or keys else []
        if snapshot:
            released += self.join.vault_synced(self.vault)
        return released


COVERAGE = {
    "market": ("Public trades (and venue marks if enabled) of the subscribed coins: the mark "
               "path for production haircuts, and the counterparty (winner) of every trade "
               "of a watched vault. Cannot see who holds what: no positions, no account "
               "values, no ADL between ordinary users."),
    "vault": ("userFills/userEvents of one liquidator vault: every backstop takeover and every "
              "ADL where this vault is the liquidated user (the vault's side; the winner is "
              "inferred from trades). Cannot see ADL whose loser is not a watched vault "
              "(user-vs-user, isolated positions), market liquidations that do not touch "
              "the vault, or the winners' start position and realized PnL."),
    "vault_state": ("clearinghouseState of the liquidator vaults: account value, positions, "
                    "shortfall (−accountValue)+; the first answer bootstraps the ledger, so "
                    "the deficit of waves whose losers are these vaults is observable. "
                    "Winners' capacities only by polling them after a wave (rate-limited)."),
    "node": ("A local non-validating node's node_fills_by_block and misc_events: every fill "
             "of every account with startPosition, every liquidation and ADL with winner and "
             "loser, funding and ledger updates. Complete; losers' deficits are observable "
             "for accounts the ledger knows (a snapshot, or from the start of the node's "
             "history)."),
}


class HyperliquidFeeds:
    """Builds and runs every configured Hyperliquid source (websocket, REST, node).

    ``publish(events)`` is the bus. ``now_ms()`` is the local estimate of venue
    time (stamps frames without a time and FeedGaps). ``start()`` runs the
    discovery and the vault bootstrap, then starts one task per source;
    ``stop()`` cancels them and closes every socket.
    """

    def __init__(self, cfg: HyperliquidConfig, publish: Callable[[list[Event]], Awaitable[None]], *,
                 metrics=None, now_ms: Callable[[], int] | None = None,
                 state_dir: str = "", rng=None, join_hold_ms: int = 2000,
                 discovery_timeout_s: float = 10.0, market_waits_s: float = 2.0,
                 supervisor: Supervisor | None = None):
        self.cfg = cfg
        self.publish = publish
        self.metrics = metrics or NullMetrics()
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.state_dir = state_dir
        self.rng = rng
        self.discovery_timeout_s = discovery_timeout_s
        self.market_waits_s = market_waits_s
        self.sources = set(cfg.sources)
        self.quarantine = Quarantine(cfg.quarantine_path, cfg.quarantine_max_bytes)
        limiter = WeightLimiter(cfg.rest_weight_per_min)
        self.info = InfoClient(RestClient(cfg.info_url, limiter, timeout_s=min(10.0, discovery_timeout_s),
                                          backoff=self._backoff()))
        self.vaults: list[Vault] = []
        self.vault_discovery = ""
        self.coins: list[str] = list(cfg.coins)
        self.coin_discovery = "config" if cfg.coins else "pending"
        self.coin_discovery_error = ""
        self.seen_fills = SeenSet()
        self.join = VaultTradeJoin((), enabled="trades" in self.sources, hold_ms=join_hold_ms,
                                   now_ms=self.now_ms)
        self.sessions: dict[str, WsSession] = {}
        self.vault_adapters: dict[str, VaultAdapter] = {}
        self.poller: VaultStatePoller | None = None
        self.node = None
        # Every source runs supervised (adlmon/supervise.py): the daemon's, or a private one.
        self.supervisor = supervisor or Supervisor(self.metrics, rng=rng)
        self._tasks: list[str] = []  # names of the supervised tasks of this venue
        self.resume_from: dict[str, dict] = {}  # source -> its position in a state snapshot
        self._pending_watermarks: dict[str, AccountSnapshot] = {}
        self.started = False
        self.stage = ""  # what the background start-up is doing ("" = done)

    def positions(self) -> dict[str, dict]:
        """Per source, where it stands (what a state snapshot keeps and ``resume_from``
        takes back): the node tailer's file offsets."""
        return {NODE_SOURCE: self.node.position()} if self.node is not None else {}

    def _backoff(self) -> Backoff:
        return Backoff(self.cfg.backoff_initial_s, self.cfg.backoff_max_s, rng=self.rng)

    @property
    def websocket_sources(self) -> bool:
        return bool(self.sources & {"trades", "marks", "vault_fills", "vault_events"})

    # ------------------------------------------------------------------ start
    async def start(self) -> None:
        """Start every source. Discovery and the vault bootstrap run in the background
        (a venue outage must not hold the daemon's start); the node tailer needs neither."""
        if "node" in self.sources:
            self._start_node()
        if self.sources & {"trades", "marks"}:
            # Series from the start: the market channels (busy, as MarketAdapter declares
            # them) are known before any discovery.
            metrics = self._declare(MARKET_SOURCE, self._market_channels())
            for channel in self._market_channels():
                metrics.silence_budget(VENUE, channel, self.cfg.silence_budget_s)
        if self.sources - {"node"}:
            self.stage = "starting"
            # Restartable: every step below is idempotent (a rerun starts only what is missing).
            self._spawn(self._startup, "hyperliquid.startup", once=True)
        self.started = True

    async def _startup(self) -> None:
        """Discovery, then every websocket at once, then the bootstrap (issue 8 §2: a
        failing REST endpoint never holds a websocket back). The market session waits
        at most ``market_waits_s`` for the vault discovery (it joins trades to the
        vaults' fills), the vault sessions only for the discovery, itself bounded by
        ``discovery_timeout_s`` with the known addresses as fallback; fills that arrive
        before the bootstrap snapshot are handled by its watermark (:meth:`_bootstrapped`)."""
        cfg = self.cfg
        market = bool(self.sources & {"trades", "marks"})
        if self.sources & {"vault_fills", "vault_events", "vault_state", "trades"}:
            self.stage = "discovering the liquidator vaults (vaultDetails)"
            discovery = asyncio.ensure_future(self._discover_vaults())
            done, _ = await asyncio.wait({discovery}, timeout=self.market_waits_s)
            if not done and market:
                market = False
                self._spawn(self._market, "hyperliquid.market")
            await discovery
        self.join.vaults = {v.address for v in self.vaults}
        # Restartable: a rerun (after a failure) starts only what is not running yet.
        if market:
            self._spawn(self._market, "hyperliquid.market")
        if self.sources & {"vault_fills", "vault_events"}:
            for v in self.vaults:
                if v.address not in self.vault_adapters:
                    self._start_vault_session(v)
        if self.join.enabled:
            self._spawn(self._expire_held, "hyperliquid.join")
        if "vault_state" in self.sources and self.vaults and self.poller is None:
            declare_pool = getattr(self.metrics, "declare_pool", None)  # NullMetrics has none
            for v in self.vaults:
                if declare_pool is not None:
                    declare_pool(VENUE, slug(v.name))
            self.poller = VaultStatePoller(self.info, self.vaults, self.publish,
                                           interval_s=cfg.vault_poll_interval_s, now_ms=self.now_ms,
                                           metrics=self.metrics, on_bootstrap=self._bootstrapped)
            self.stage = "bootstrapping the vaults (clearinghouseState)"
            try:
                await asyncio.wait_for(self.poller.poll_once(), self.discovery_timeout_s)
            except asyncio.TimeoutError:
                log.warning("vault bootstrap: no clearinghouseState in %.0f s; continuing, the "
                            "poller keeps trying", self.discovery_timeout_s)
            self._spawn(self._poll_forever, "hyperliquid.vault_state")
        self.stage = ""

    async def _discover_vaults(self) -> None:
        if self.cfg.vaults:
            known = {v.address: v.name for v in known_liquidators()}
            self.vaults = [Vault(a.lower(), known.get(a.lower(), f"vault {a[:10]}"))
                           for a in self.cfg.vaults][:MAX_USERS]
            self.vault_discovery = "config"
            return
        try:
            self.vaults, self.vault_discovery = await asyncio.wait_for(
                discover_liquidators(self.info, self.cfg.hlp_vault, max_users=MAX_USERS),
                self.discovery_timeout_s)
        except asyncio.TimeoutError:
            self.vaults = known_liquidators()
            self.vault_discovery = "known addresses (discovery timed out)"
        log.info("hyperliquid: watching %d liquidator vaults (%s): %s", len(self.vaults),
                 self.vault_discovery, ", ".join(f"{v.name} {v.address}" for v in self.vaults))

    def _bootstrapped(self, snapshot: AccountSnapshot) -> None:
        adapter = self.vault_adapters.get(snapshot.user.lower())
        if adapter is not None:
            adapter.bootstrapped(snapshot)
            # The session ran before the snapshot: what the join still holds of this
            # vault up to the snapshot's time is inside the snapshot.
            self.join.drop_vault_events(snapshot.user, snapshot.time_ms)
        else:
            self._pending_watermarks[snapshot.user.lower()] = snapshot

    def _start_vault_session(self, vault: Vault) -> None:
        adapter = VaultAdapter(vault.address, fills="vault_fills" in self.sources,
                               events="vault_events" in self.sources, join=self.join,
                               seen=self.seen_fills, now_ms=self.now_ms)
        snap = self._pending_watermarks.pop(vault.address, None)
        if snap is not None:
            adapter.bootstrapped(snap)
        self.vault_adapters[vault.address] = adapter
        name = f"hyperliquid.vault.{vault.address[:10]}"
        self._start_session(name, adapter, self._declare(slug(vault.name), adapter.channels))

    def _declare(self, source: str, channels) -> Any:
        """The source's metrics view, its channels' series created (offline too)."""
        metrics = SourceMetrics(self.metrics, source)
        for ch in channels:
            metrics.declare_feed(VENUE, ch if isinstance(ch, str) else ch.name)
        return metrics

    def _market_channels(self) -> list[str]:
        return ((["trades"] if "trades" in self.sources else [])
                + ([self.cfg.marks_feed] if "marks" in self.sources else []))

    def _start_session(self, name: str, adapter, metrics, spawn: bool = True) -> WsSession:
        cfg = self.cfg
        session = WsSession(name, cfg.ws_url, adapter, self.publish,
                            ping_interval_s=cfg.ping_interval_s,
                            liveness_timeout_s=cfg.liveness_timeout_s, backoff=self._backoff(),
                            metrics=metrics, quarantine=self.quarantine, now_ms=self.now_ms,
                            max_frame_bytes=cfg.max_frame_bytes)
        self.sessions[name] = session
        if spawn:
            self._spawn(session.run, name)
        return session

    async def _market(self) -> None:
        """Discover the coins (when not configured) with backoff, then run the market session."""
        backoff = self._backoff()
        failures = RepeatedFailure(log)
        if not self.coins:
            while True:
                try:
                    coins, marks = await discover_coins(self.info, self.now_ms)
                    self.coins = coins
                    self.coin_discovery = "metaAndAssetCtxs"
                    if "marks" in self.sources and marks:
                        await self.publish(marks)
                    break
                except Exception as exc:  # RestError, ParseError, shapes: retry, never die
                    delay = backoff.next_delay()
                    n = failures.failed("hyperliquid: coin discovery (metaAndAssetCtxs)",
                                        "failed", str(exc), delay)
                    self.coin_discovery = f"pending: failed ×{n}" if n > 1 else "pending: failed"
                    self.coin_discovery_error = str(exc)
                    await asyncio.sleep(delay)
        marks_feed = None
        if "marks" in self.sources:
            marks_feed = self.cfg.marks_feed
        trades = "trades" in self.sources
        per_coin = (1 if trades else 0) + (1 if marks_feed == "activeAssetCtx" else 0)
        user_subs = MAX_USERS * 2  # the vault sessions may start after this one
        room = MAX_SUBSCRIPTIONS - user_subs - (1 if marks_feed == "allMids" else 0)
        if per_coin and len(self.coins) * per_coin > room:
            keep = room // per_coin
            log.warning("hyperliquid: %d coins x %d channels exceed the %d-subscription cap; "
                        "watching the first %d coins", len(self.coins), per_coin,
                        MAX_SUBSCRIPTIONS, keep)
            self.coins = self.coins[:keep]
        adapter = MarketAdapter(self.coins, trades=trades, marks=marks_feed,
                                silence_budget_s=self.cfg.silence_budget_s, join=self.join,
                                now_ms=self.now_ms)
        metrics = self._declare(MARKET_SOURCE, adapter.channels)
        await self._start_session("hyperliquid.market", adapter, metrics, spawn=False).run()

    async def _expire_held(self) -> None:
        while True:
            await asyncio.sleep(0.02)
            late = self.join.expire()
            if late:
                await self.publish(late)

    async def _poll_forever(self) -> None:
        await asyncio.sleep(self.cfg.vault_poll_interval_s)
        await self.poller.run()

    def _start_node(self) -> None:
        from adlmon.venues.hyperliquid.node import NodeTailer
        if not self.cfg.node_data_dir:
            log.error("source 'node' needs [venues.hyperliquid] node_data_dir; node tailer not started")
            return
        self.node = NodeTailer(self.cfg.node_data_dir, self.publish, state_dir=self.state_dir or None,
                               metrics=SourceMetrics(self.metrics, NODE_SOURCE),
                               quarantine=self.quarantine,
                               resume_from=(self.resume_from or {}).get(NODE_SOURCE))
        self._declare(NODE_SOURCE, self.node.tails)  # stream names: the node's channels
        self._spawn(self.node.run, "hyperliquid.node")

    def _spawn(self, factory, name: str, once: bool = False) -> None:
        """Run ``factory()`` supervised: logged, counted and restarted if it raises."""
        self.supervisor.spawn(name, factory, once=once)
        if name not in self._tasks:
            self._tasks.append(name)

    async def stop(self) -> None:
        """Cancel every source (sockets closed), then publish what the join still holds."""
        await self.supervisor.stop(self._tasks)
        self._tasks = []
        await self.info.close()
        held = self.join.flush()
        if held:
            await self.publish(held)

    # ----------------------------------------------------------------- status
    def status(self) -> dict[str, dict]:
        """Per source: healthy, connected, last_message_ts, coverage, detail (ServerState.sources)."""
        out: dict[str, dict] = {}
        for name, s in self.sessions.items():
            st = s.status()
            kind = "market" if name.endswith(".market") else "vault"
            last = max((c["last_message_age_s"] for c in st["channels"].values()
                        if c["last_message_age_s"] is not None), default=None)
            # One short line per source (its reason, how often in a row); the error text
            # itself is in ``last_error`` and, once, in the log.
            repeats = s.failures.count
            detail = "" if s.connected else (
                f"disconnected: {s.last_reason or 'connecting'}"
                f"{f' ×{repeats}' if repeats > 1 else ''}")
            extra = {}
            if kind == "vault":
                a = s.adapter
                extra = {"vault": a.vault, "watermark_ms": a.watermark_ms,
                         "backfilled_fills": a.backfilled}
            else:
                extra = {"coins": len(self.coins), "coin_discovery": self.coin_discovery,
                         "duplicate_trades": s.adapter.seen.duplicates}
            out[name] = {**st, **extra, "healthy": s.connected, "coverage": COVERAGE[kind],
                         "last_message_ts": None if last is None else time.time() - last,
                         "detail": detail}
        if self.stage:
            out["hyperliquid.startup"] = {"kind": "startup", "healthy": False, "connected": False,
                                          "coverage": "", "detail": self.stage,
                                          "last_message_ts": None}
        if "hyperliquid.market" not in self.sessions and self.sources & {"trades", "marks"}:
            out["hyperliquid.market"] = {"kind": "websocket", "healthy": False, "connected": False,
                                         "coverage": COVERAGE["market"],
                                         "detail": f"coin discovery {self.coin_discovery}",
                                         "last_error": self.coin_discovery_error}
        if self.poller is not None:
            st = self.poller.status()
            out["hyperliquid.vault_state"] = {
                **st, "connected": st["healthy"], "coverage": COVERAGE["vault_state"],
                "last_message_ts": self.poller.last_success_wall,
                "detail": "" if st["healthy"] else "no recent clearinghouseState",
                "vault_discovery": self.vault_discovery}
        if self.node is not None:
            st = self.node.status()
            out["hyperliquid.node"] = {**st, "healthy": self.node.started,
                                       "coverage": COVERAGE["node"],
                                       "last_message_ts": self.node.last_message_wall}
        if self.join.enabled or self.join.inferred:
            for name, s in out.items():
                if name.startswith("hyperliquid.vault."):
                    s["inferred_adl_winners"] = self.join.inferred
                    s["unknown_winners"] = self.join.unknown_winners
        return out
