"""Per-venue account ledger: cash, positions, marks, equity (paper §1.1, §4.4 step 4).

Accounting (CONTRACT "Engine accounting"; the simulator uses the same rules):

- Position per (account, coin): signed size ``s`` and entry price. A fill of
  signed size ``d`` (+sz buy, −sz sell) at ``px``:
  increasing (``s`` = 0 or same sign) -> entry = (|s|·entry + |d|·px)/(|s|+|d|);
  reducing -> entry unchanged; flipping -> the remainder opens at ``px``.
- cash += closedPnl − fee (the venue's realized number; fee < 0 is a rebate).
- ``startPosition`` is authoritative: when the ledger disagrees, the fill's
  start position is taken and a divergence is counted (a "learned" position
  instead when the account was never fully known, e.g. no snapshot). A resynced
  position whose entry is unknown gets it from the fill itself when the fill
  reduces it (closedPnl = q·(px − entry)·sign(s), solved for entry), else px.
- Funding: cash += amount (> 0 received). Ledger deltas: cash += delta. A
  ledger ``liquidation`` records its pre-liquidation account value, no cash change.
- Mark of a coin: the price of its last fill (ADL fills included); once a Mark
  event has been seen for a coin, Mark events take precedence for that coin. A
  coin never traded since the snapshot is marked at the snapshot's mark.
- equity = cash + Σ size·(mark − entry); unrealized PnL = Σ size·(mark − entry);
  PnL capacity u = (uPnL)+ (paper §5.2 correction: capacity is PnL, not equity).
- Snapshot bootstrap: cash = account_value − Σ size·(snapshot_mark − entry)
  (paper §4.4 "cash-only baseline").

An account is *known* (its equity is a number, not a guess) once it was seen in
an AccountSnapshot with an account value or in a cash-moving ledger event; with
``new_accounts_empty`` (set after a full snapshot) an account first seen later
is known from zero.

Fills arrive either as ``Fill`` events or, on the replay hot path, as rows:
tuples in ``Fill``'s field order (see ``venues/hyperliquid/parse.py``). Both go
through :meth:`Ledger.apply_fill_rows`, the one implementation of the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from adlmon.events import (
    BUY, AccountSnapshot, Fill, Funding, LedgerUpdate, Mark,
)

# Sizes within this relative distance are the same size (float sums of decimal sizes).
_REL_TOL = 1e-9
_ABS_TOL = 1e-12
if (_REL_TOL, _ABS_TOL, 1.0 + _REL_TOL) != (1e-9, 1e-12, 1.000000001):  # pragma: no cover
    raise ImportError("apply_fill_rows writes the tolerances out; update it with them")


class Position:
    __slots__ = ("size", "entry", "account")

    def __init__(self, size: float, entry: float, account: Account):
        self.size = size
        self.entry = entry
        self.account = account  # its holder: a fill finds both through the coin's book

    def __repr__(self) -> str:
        return f"Position(size={self.size!r}, entry={self.entry!r})"


class Account:
    __slots__ = ("cash", "positions", "known", "complete", "user")

    def __init__(self, known: bool = False, user: str = ""):
        self.user = user  # the ledger's key object for this account (books use the same one)
        self.cash = 0.0
        self.positions: dict[str, Position] = {}
        self.known = known  # cash is a fact (snapshot / ledger event), not a guess
        self.complete = known  # the position set is known: a start mismatch is a divergence


@dataclass(frozen=True, eq=False)
class HoldersView:
    """Accounts holding ``coin`` (on one side when ``sign`` ≠ 0) at one moment.

    ``equity`` and ``upnl`` are of the whole account (all coins) at the marks
    of that moment; ``mark_px`` is the coin's mark.
    """

    coin: str
    sign: int
    mark_px: float | None
    users: tuple[str, ...]
    size: np.ndarray
    entry_px: np.ndarray
    equity: np.ndarray
    upnl: np.ndarray

    def __len__(self) -> int:
        return len(self.users)


def fill_row(f: Fill) -> tuple:
    """A Fill as a row (its fields in order)."""
    return (f.venue, f.coin, f.user, f.side, f.px, f.sz, f.time_ms, f.start_position,
            f.kind, f.closed_pnl, f.fee, f.tid, f.hash, f.liquidation, f.dir)


def _inferred_entry(start: float, d: float, px: float, closed_pnl: float, sz: float) -> float:
    """Entry price of a position whose history we lack, from the fill that reduces it."""
    if start != 0.0 and (start > 0.0) != (d > 0.0):
        q = min(sz, abs(start))
        if q > 0.0:
            return px - closed_pnl / (q if start > 0.0 else -q)
    return px


class Ledger:
    """Accounts of one venue. ``apply(event)`` for any event; ``apply_fill_rows``
    for a batch of fill rows."""

    def __init__(self, new_accounts_empty: bool = False):
        self._accounts: dict[str, Account] = {}
        self._books: dict[str, dict[str, Position]] = {}  # coin -> user -> position
        self._fill_marks: dict[str, float] = {}
        self._event_marks: dict[str, float] = {}
        self.new_accounts_empty = new_accounts_empty
        self.liquidation_account_values: dict[str, tuple[int, float]] = {}
        self.divergences = 0
        self.positions_learned = 0
        self.unknown_ledger = 0
        self.__setstate__({})  # the dispatch table

    def __getstate__(self) -> dict:
        """Pickled without the dispatch table of bound methods (engine/persist.py)."""
        state = dict(self.__dict__)
        del state["_dispatch"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._dispatch = {
            Fill: self._apply_fill, Mark: self._apply_mark, Funding: self._apply_funding,
            LedgerUpdate: self._apply_ledger_update, AccountSnapshot: self._apply_snapshot,
        }

    # ------------------------------------------------------------------ apply

    def apply(self, event) -> bool:
        """Apply one event; False when the ledger does not use its type."""
        handler = self._dispatch.get(event.__class__)
        if handler is None:
            return False
        handler(event)
        return True

    def _apply_fill(self, f: Fill) -> None:
        self.apply_fill_rows((fill_row(f),))

    def _account(self, user: str) -> Account:
        acct = self._accounts.get(user)
        if acct is None:
            acct = self._accounts[user] = Account(self.new_accounts_empty, user)
        return acct

    def apply_fill_rows(self, rows: Iterable[tuple]) -> None:
        """Apply fill rows in order (the accounting rules of the module docstring)."""
        # The hot loop of a replay. Tolerances are written out (_ABS_TOL = 1e-12,
        # _REL_TOL = 1e-9: checked at import) and signs are compared in branches,
        # where CPython specialises float comparisons.
        accounts = self._accounts
        books = self._books
        fill_marks = self._fill_marks
        empty = self.new_accounts_empty
        buy = BUY
        for _v, coin, user, side, px, sz, _t, start, _k, pnl, fee, _i, _h, _l, _d in rows:
            fill_marks[coin] = px
            d = sz if side == buy else -sz
            # The position (and through it the account) from the coin's book: one
            # lookup in a large dict per fill instead of two.
            book = books.get(coin)
            if book is None:
                book = books[coin] = {}
            pos = book.get(user)
            if pos is None:
                try:
                    acct = accounts[user]
                except KeyError:
                    acct = accounts[user] = Account(empty, user)
                acct.cash += pnl - fee
                if -1e-12 <= start <= 1e-12:
                    acct.positions[coin] = book[acct.user] = Position(d, px, acct)
                    continue
                # The venue says the account held a position we never saw.
                if acct.complete:
                    self.divergences += 1
                else:
                    self.positions_learned += 1
                s = start
                entry = _inferred_entry(start, d, px, pnl, sz)
                pos = acct.positions[coin] = book[acct.user] = Position(s, entry, acct)
            else:
                acct = pos.account
                acct.cash += pnl - fee
                s = pos.size
                entry = pos.entry
                if s != start:  # usually float dust of s + d against the venue's decimal
                    diff = s - start
                    tol = 1e-12 + 1e-9 * (start if start > 0.0 else -start)
                    if diff > tol or diff < -tol:
                        self.divergences += 1
                        # A resynced position keeps its entry unless it changed side.
                        if start == 0.0:
                            entry = _inferred_entry(start, d, px, pnl, sz)
                        elif start > 0.0:
                            if not s > 0.0:
                                entry = _inferred_entry(start, d, px, pnl, sz)
                        elif s > 0.0:
                            entry = _inferred_entry(start, d, px, pnl, sz)
                    s = start
            new = s + d
            if s == 0.0:
                pos.entry = px
                pos.size = new
                continue
            if s > 0.0:
                if d > 0.0:  # increasing a long
                    pos.entry = (s * entry + sz * px) / (s + sz)
                    pos.size = new
                    continue
                a = s
            else:
                a = -s
                if not d > 0.0:  # increasing a short
                    pos.entry = (a * entry + sz * px) / (a + sz)
                    pos.size = new
                    continue
            # Reducing, closing or flipping.
            if sz > a * 1.000000001:  # a * (1 + _REL_TOL)
                pos.entry = px  # flip: the remainder opens at px
            else:
                pos.entry = entry
                if new <= 1e-12 + 1e-9 * a and -new <= 1e-12 + 1e-9 * a:
                    del acct.positions[coin]
                    del book[user]
                    continue
            pos.size = new

    def _apply_mark(self, m: Mark) -> None:
        self._event_marks[m.coin] = m.mark_px

    def _apply_funding(self, f: Funding) -> None:
        self._account(f.user).cash += f.amount_usd

    def _apply_ledger_update(self, u: LedgerUpdate) -> None:
        acct = self._account(u.user)
        acct.cash += u.delta_usd
        if not u.known:
            self.unknown_ledger += 1
        elif u.kind == "liquidation":
            if u.account_value is not None:
                self.liquidation_account_values[u.user] = (u.time_ms, u.account_value)
        elif u.delta_usd != 0.0:
            acct.known = True

    def _apply_snapshot(self, s: AccountSnapshot) -> None:
        acct = self._account(s.user)
        for coin in acct.positions:
            self._books[coin].pop(s.user, None)
        acct.positions = {}
        upnl = 0.0
        for p in s.positions:
            if p.size == 0.0:
                continue
            mark = p.mark_px
            if mark is None:
                mark = self.mark(p.coin)
                if mark is None:
                    mark = p.entry_px
            elif p.coin not in self._fill_marks:
                self._fill_marks[p.coin] = mark
            upnl += p.size * (mark - p.entry_px)
            pos = acct.positions.get(p.coin)
            if pos is None:
                pos = acct.positions[p.coin] = Position(p.size, p.entry_px, acct)
            else:  # the same coin twice (cross + isolated): one net position
                total = pos.size + p.size
                if (pos.size > 0) == (p.size > 0):
                    pos.entry = (abs(pos.size) * pos.entry + abs(p.size) * p.entry_px) / abs(total)
                pos.size = total
            self._books.setdefault(p.coin, {})[acct.user] = pos
        if s.account_value is not None:
            acct.cash = s.account_value - upnl
            acct.known = True
        else:
            acct.cash = 0.0
            acct.known = False
        acct.complete = True

    # ------------------------------------------------------------------ queries

    def mark(self, coin: str) -> float | None:
        """The coin's current mark (None if the coin was never seen)."""
        m = self._event_marks.get(coin)
        return m if m is not None else self._fill_marks.get(coin)

    def marks(self) -> dict[str, float]:
        """Every known mark (Mark events over fill prices)."""
        return {**self._fill_marks, **self._event_marks}

    def known(self, user: str) -> bool:
        acct = self._accounts.get(user)
        return acct is not None and acct.known

    def seen(self, user: str) -> bool:
        return user in self._accounts

    def cash(self, user: str) -> float:
        acct = self._accounts.get(user)
        return acct.cash if acct is not None else 0.0

    def position(self, user: str, coin: str) -> tuple[float, float]:
        """(signed size, entry price); (0.0, 0.0) when flat."""
        acct = self._accounts.get(user)
        pos = acct.positions.get(coin) if acct is not None else None
        return (pos.size, pos.entry) if pos is not None else (0.0, 0.0)

    def positions(self, user: str) -> dict[str, tuple[float, float]]:
        acct = self._accounts.get(user)
        if acct is None:
            return {}
        return {c: (p.size, p.entry) for c, p in acct.positions.items()}

    def unrealized_pnl(self, user: str) -> float:
        acct = self._accounts.get(user)
        return 0.0 if acct is None else self._upnl(acct, self.marks())

    def equity(self, user: str) -> float:
        """cash + Σ size·(mark − entry); 0.0 for an account never seen (see ``known``)."""
        acct = self._accounts.get(user)
        return 0.0 if acct is None else acct.cash + self._upnl(acct, self.marks())

    def pnl_capacity(self, user: str) -> float:
        """u = (uPnL)+ : what a haircut on PnL can take from the account."""
        return max(self.unrealized_pnl(user), 0.0)

    @staticmethod
    def _upnl(acct: Account, marks: dict[str, float]) -> float:
        u = 0.0
        for coin, pos in acct.positions.items():
            m = marks.get(coin)
            if m is not None:
                u += pos.size * (m - pos.entry)
        return u

    def equities(self, users: Iterable[str], cache: dict | None = None,
                 marks: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(equity, uPnL) arrays for ``users`` at the current marks. ``cache``
        (user -> (equity, upnl)) is valid while the ledger does not change."""
        marks = self.marks() if marks is None else marks
        cache = {} if cache is None else cache
        eq, up = [], []
        accounts = self._accounts
        upnl_of = self._upnl
        for user in users:
            v = cache.get(user)
            if v is None:
                acct = accounts.get(user)
                if acct is None:
                    v = (0.0, 0.0)
                else:
                    u = upnl_of(acct, marks)
                    v = (acct.cash + u, u)
                cache[user] = v
            eq.append(v[0])
            up.append(v[1])
        return np.asarray(eq, dtype=float), np.asarray(up, dtype=float)

    def holders(self, coin: str, sign: int = 0, cache: dict | None = None) -> HoldersView:
        """Accounts holding ``coin`` (longs if sign > 0, shorts if < 0, all if 0).

        O(holders of the coin · their positions), never O(accounts).
        """
        book = self._books.get(coin, {})
        if sign > 0:
            items = [(u, p) for u, p in book.items() if p.size > 0.0]
        elif sign < 0:
            items = [(u, p) for u, p in book.items() if p.size < 0.0]
        else:
            items = list(book.items())
        users = tuple(u for u, _ in items)
        size = np.fromiter((p.size for _, p in items), dtype=float, count=len(items))
        entry = np.fromiter((p.entry for _, p in items), dtype=float, count=len(items))
        equity, upnl = self.equities(users, cache)
        return HoldersView(coin, sign, self.mark(coin), users, size, entry, equity, upnl)

    def holder_count(self, coin: str) -> int:
        """Open positions in ``coin`` (both sides), O(1)."""
        return len(self._books.get(coin, ()))

    def users(self) -> list[str]:
        return list(self._accounts)

    def coins(self) -> list[str]:
        return [c for c, book in self._books.items() if book]

    def __len__(self) -> int:
        return len(self._accounts)
