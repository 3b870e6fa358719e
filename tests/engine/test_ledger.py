"""Ledger accounting (CONTRACT "Engine accounting"), hand-computed."""

from __future__ import annotations

import numpy as np
import pytest

from adlmon.engine.ledger import Ledger, fill_row
from adlmon.events import (
    ADL, BUY, CLOSE, OPEN, SELL,
    AccountSnapshot, Fill, Funding, LedgerUpdate, Liquidation, Mark, PositionSnapshot,
)

V = "hyperliquid"
A = "0x" + "a" * 40
B = "0x" + "b" * 40
C = "0x" + "c" * 40


def fill(user, coin, side, px, sz, start, pnl=0.0, fee=0.0, t=1000, kind=OPEN, liq=None):
    return Fill(V, coin, user, side, px, sz, t, start, kind, pnl, fee, 1, "0x", liq, "")


def snap(user, av, *positions, t=0):
    return AccountSnapshot(V, user, av, tuple(PositionSnapshot(*p) for p in positions), t)


def test_opening_and_increasing_averages_the_entry():
    led = Ledger()
    led.apply(fill(A, "ETH", BUY, 100.0, 2.0, 0.0))
    led.apply(fill(A, "ETH", BUY, 130.0, 1.0, 2.0))
    assert led.position(A, "ETH") == pytest.approx((3.0, 110.0))  # (2·100 + 1·130)/3


def test_short_entry_averages_on_magnitudes():
    led = Ledger()
    led.apply(fill(A, "ETH", SELL, 100.0, 1.0, 0.0))
    led.apply(fill(A, "ETH", SELL, 70.0, 2.0, -1.0))
    assert led.position(A, "ETH") == pytest.approx((-3.0, 80.0))


def test_reducing_keeps_the_entry_and_cash_takes_closed_pnl_minus_fee():
    led = Ledger()
    led.apply(fill(A, "ETH", BUY, 100.0, 3.0, 0.0, fee=0.3))
    led.apply(fill(A, "ETH", SELL, 120.0, 1.0, 3.0, pnl=20.0, fee=0.12, kind=CLOSE))
    assert led.position(A, "ETH") == pytest.approx((2.0, 100.0))
    assert led.cash(A) == pytest.approx(-0.3 + 20.0 - 0.12)
    # mark = last fill price 120: equity = cash + 2·(120 − 100)
    assert led.equity(A) == pytest.approx(19.58 + 40.0)
    assert led.unrealized_pnl(A) == pytest.approx(40.0)
    assert led.pnl_capacity(A) == pytest.approx(40.0)


def test_a_negative_fee_is_a_rebate():
    led = Ledger()
    led.apply(fill(A, "ETH", BUY, 100.0, 1.0, 0.0, fee=-0.5))
    assert led.cash(A) == pytest.approx(0.5)


def test_flip_closes_everything_and_reopens_the_remainder_at_px():
    led = Ledger()
    led.apply(fill(A, "BTC", BUY, 100.0, 2.0, 0.0))
    led.apply(fill(A, "BTC", SELL, 90.0, 5.0, 2.0, pnl=-20.0))  # realized 2·(90−100)
    assert led.position(A, "BTC") == pytest.approx((-3.0, 90.0))
    assert led.cash(A) == pytest.approx(-20.0)


def test_closing_to_zero_removes_the_position_and_its_holder_entry():
    led = Ledger()
    led.apply(fill(A, "BTC", BUY, 100.0, 0.1, 0.0))
    led.apply(fill(A, "BTC", BUY, 100.0, 0.2, 0.1))
    led.apply(fill(A, "BTC", SELL, 101.0, 0.3, 0.30000000000000004, pnl=0.3, kind=CLOSE))
    assert led.position(A, "BTC") == (0.0, 0.0)
    assert len(led.holders("BTC")) == 0
    assert led.divergences == 0


def test_start_position_divergence_is_counted_and_resynced():
    led = Ledger()
    led.apply(snap(A, 1000.0, ("ETH", 2.0, 100.0, 100.0)))
    # the venue says A held 5 before this fill (we missed 3): take 5, keep the entry
    led.apply(fill(A, "ETH", SELL, 110.0, 1.0, 5.0, pnl=10.0, kind=CLOSE))
    assert led.divergences == 1
    assert led.position(A, "ETH") == pytest.approx((4.0, 100.0))


def test_divergence_with_unknown_entry_takes_it_from_closed_pnl():
    led = Ledger()
    led.apply(snap(A, 1000.0))  # complete: flat in every coin
    # venue: short 4 before; closing 1 at 50 realized (50 − entry)·(−1)·1 = 6 -> entry 56
    led.apply(fill(A, "SOL", BUY, 50.0, 1.0, -4.0, pnl=6.0, kind=CLOSE))
    assert led.divergences == 1
    assert led.position(A, "SOL") == pytest.approx((-3.0, 56.0))


def test_position_of_an_account_never_seen_is_learned_not_a_divergence():
    led = Ledger()
    led.apply(fill(A, "AVAX", BUY, 22.075, 28.53, -28.53, pnl=194.275035, kind=ADL))
    assert led.divergences == 0 and led.positions_learned == 1
    assert led.position(A, "AVAX") == (0.0, 0.0)
    assert not led.known(A)


def test_funding_and_ledger_deltas_move_cash_and_liquidation_records_account_value():
    led = Ledger()
    led.apply(Funding(V, A, "ETH", -1.5, 1))
    led.apply(LedgerUpdate(V, A, "deposit", 100.0, 2))
    led.apply(LedgerUpdate(V, A, "withdraw", -30.0, 3))
    led.apply(LedgerUpdate(V, A, "liquidation", 0.0, 4, account_value=-12.0))
    led.apply(LedgerUpdate(V, A, "mystery", 0.0, 5, known=False))
    assert led.cash(A) == pytest.approx(68.5)
    assert led.liquidation_account_values[A] == (4, -12.0)
    assert led.unknown_ledger == 1
    assert led.known(A)


def test_snapshot_bootstrap_uses_the_cash_only_baseline():
    led = Ledger()
    # av 500; AVAX short 4 @ 23 (mark 22), ETH long 1 @ 4000 (mark 4100)
    led.apply(snap(B, 500.0, ("AVAX", -4.0, 23.0, 22.0), ("ETH", 1.0, 4000.0, 4100.0)))
    assert led.cash(B) == pytest.approx(500.0 - (4.0 + 100.0))
    assert led.equity(B) == pytest.approx(500.0)  # coins unseen since: snapshot marks
    assert led.mark("AVAX") == 22.0 and led.known(B)
    led.apply(fill(C, "AVAX", BUY, 21.0, 1.0, 0.0))  # the price path moves the mark
    assert led.equity(B) == pytest.approx(396.0 + 8.0 + 100.0)


def test_snapshot_replaces_the_account():
    led = Ledger()
    led.apply(fill(A, "ETH", BUY, 100.0, 2.0, 0.0, fee=1.0))
    led.apply(snap(A, 50.0, ("BTC", 1.0, 10.0, 12.0)))
    assert led.position(A, "ETH") == (0.0, 0.0)
    assert led.cash(A) == pytest.approx(48.0)
    assert [h for h in led.holders("ETH").users] == []


def test_fills_after_a_snapshot_move_the_snapshot_position_and_cash():
    led = Ledger()
    led.apply(fill(A, "ETH", BUY, 100.0, 2.0, 0.0))
    led.apply(snap(A, 50.0, ("ETH", -3.0, 110.0, 110.0), ("BTC", 1.0, 10.0, 10.0)))
    led.apply_fill_rows([fill_row(fill(A, "ETH", BUY, 105.0, 1.0, -3.0, pnl=5.0, fee=0.5, kind=CLOSE))])
    assert led.divergences == 0  # the snapshot's −3, not the replaced +2
    assert led.position(A, "ETH") == (-2.0, 110.0)
    assert led.cash(A) == pytest.approx(50.0 + 4.5)
    led.apply_fill_rows([fill_row(fill(A, "BTC", SELL, 12.0, 1.0, 1.0, pnl=2.0, kind=CLOSE))])
    assert led.positions(A) == {"ETH": (-2.0, 110.0)} and led.holders("BTC").users == ()
    assert led.holders("ETH").users == (A,)


def test_mark_events_take_precedence_once_seen():
    led = Ledger()
    led.apply(fill(A, "ETH", BUY, 100.0, 1.0, 0.0))
    assert led.mark("ETH") == 100.0
    led.apply(Mark(V, "ETH", 105.0, 104.0, 2))
    led.apply(fill(B, "ETH", BUY, 99.0, 1.0, 0.0))
    assert led.mark("ETH") == 105.0
    assert led.equity(A) == pytest.approx(5.0)
    led.apply(fill(B, "BTC", BUY, 7.0, 1.0, 0.0))
    assert led.mark("BTC") == 7.0


def test_holders_are_numpy_views_of_one_side():
    led = Ledger()
    led.apply(snap(A, 100.0, ("ETH", 2.0, 90.0, 100.0)))
    led.apply(snap(B, 200.0, ("ETH", -1.0, 110.0, 100.0), ("BTC", 1.0, 50.0, 60.0)))
    led.apply(snap(C, 300.0, ("ETH", 3.0, 100.0, 100.0)))
    longs = led.holders("ETH", sign=1)
    assert set(longs.users) == {A, C}
    i = longs.users.index(A)
    assert isinstance(longs.size, np.ndarray)
    assert (longs.size[i], longs.entry_px[i], longs.equity[i], longs.upnl[i]) == pytest.approx(
        (2.0, 90.0, 100.0, 20.0))
    shorts = led.holders("ETH", sign=-1)
    assert shorts.users == (B,)
    # B's account uPnL covers both coins: −1·(100−110) + 1·(60−50) = 20
    assert shorts.upnl[0] == pytest.approx(20.0) and shorts.equity[0] == pytest.approx(200.0)
    assert len(led.holders("ETH")) == 3 and led.holders("ETH").mark_px == 100.0


def test_rows_and_fills_give_the_same_state():
    fills = [fill(A, "ETH", BUY, 100.0, 2.0, 0.0, fee=0.1),
             fill(B, "ETH", SELL, 100.0, 2.0, 0.0, fee=-0.01),
             fill(A, "ETH", SELL, 120.0, 3.0, 2.0, pnl=40.0),
             fill(B, "ETH", BUY, 95.0, 1.0, -2.0, pnl=5.0, kind=ADL,
                  liq=Liquidation(C, 96.0, "backstop"))]
    one, two = Ledger(), Ledger()
    for f in fills:
        one.apply(f)
    two.apply_fill_rows([fill_row(f) for f in fills])
    for u in (A, B):
        assert one.positions(u) == two.positions(u)
        assert one.cash(u) == two.cash(u) and one.equity(u) == two.equity(u)


def test_new_accounts_after_a_full_snapshot_are_known_from_zero():
    led = Ledger(new_accounts_empty=True)
    led.apply(fill(C, "ETH", BUY, 100.0, 1.0, 0.0))
    assert led.known(C)
    assert not Ledger().known(C)
