"""Small cases worked by hand in the sources (paper.md §3.1, §2.2; P-v3 §2 numerical example)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adlmon.mechanisms import (
    allocate_contract_queue,
    capped_pro_rata,
    contract_pro_rata,
    pro_rata,
    queue,
)


def test_dan_robinsons_example_contract_queue_takes_750_not_the_whole_equity():
    """T1 / paper.md §3.1: a 2 ETH short goes bankrupt with a $1,500 deficit. The top of the queue
    is a 1 ETH long worth $3,000 with $1,500 equity (2x). Closing 2 ETH against the bankrupt
    short costs each closed contract the $1,500 / 2 ETH = $750 transfer-price gap."""
    deficit = 1_500.0
    bankrupt_size = 2.0
    gap = deficit / bankrupt_size
    equity = np.array([1_500.0, 4_000.0, 2_500.0])  # top winner first by score
    size_eth = np.array([1.0, 3.0, 1.0])
    score = np.array([3.0, 2.0, 1.0])

    a = allocate_contract_queue(size_eth, gap, bankrupt_size, score)
    np.testing.assert_array_equal(a.contracts, [1.0, 1.0, 0.0])  # fully closed, then 1 of 3 ETH
    np.testing.assert_allclose(a.x, [750.0, 750.0, 0.0])
    assert a.x.sum() == pytest.approx(deficit) and a.feasible
    assert a.x[0] / equity[0] == pytest.approx(0.5)  # half its equity, not all of it

    # The paper's wealth-space queue over equity (v1 numeraire w = (e)+) takes 100% from the top.
    x_wealth = queue(equity, deficit, score)
    np.testing.assert_allclose(x_wealth, [1_500.0, 0.0, 0.0])
    assert x_wealth[0] / equity[0] == 1.0
    # Contract pro-rata over the same positions: 2 contracts ∝ 1 : 3 : 1 -> 0.4, 1.2, 0.4; floors
    # 0, 1, 0 and the last contract to the largest remainder (0.4 tie: lower index).
    np.testing.assert_allclose(contract_pro_rata(size_eth, gap, deficit), [750.0, 750.0, 0.0])


def test_p_v3_numerical_example_queue_and_pro_rata():
    """P-v3 §2 "Numerical example": w = (8, 4, 0.5, 0, 0), B = theta D = 7.5; queue order
    sigma = (2, 1, 3, 5, 4) gives x = (3.5, 4, 0, 0, 0); pro-rata h = 7.5 / 12.5 = 0.6 gives
    x = (4.8, 2.4, 0.3, 0, 0)."""
    w = np.array([8.0, 4.0, 0.5, 0.0, 0.0])
    sigma = np.array([2, 1, 3, 5, 4]) - 1
    score = np.empty(5)
    score[sigma] = np.arange(5, 0, -1)
    np.testing.assert_allclose(queue(w, 7.5, score), [3.5, 4.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(pro_rata(w, 7.5), [4.8, 2.4, 0.3, 0.0, 0.0])
    # Post-ADL equities with cash c = (2, 1, 0.5, 0, 0): (6.5, 1, 1) and (5.2, 2.6, 0.7).
    c = np.array([2.0, 1.0, 0.5, 0.0, 0.0])
    np.testing.assert_allclose((c + w - queue(w, 7.5, score))[:3], [6.5, 1.0, 1.0])
    np.testing.assert_allclose((c + w - pro_rata(w, 7.5))[:3], [5.2, 2.6, 0.7])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.01, 1e6), min_size=2, max_size=30), st.one_of(st.just(0.0), st.floats(1e-9, 1.0)),
       st.floats(0.01, 1.0))
def test_queue_vs_pro_rata_top_winner_gap_is_h_times_one_minus_top_share(w, budget_share, theta):
    """paper.md §2.2 (P-v3 Prop. "Queue maximizes damage to top winner"): with H <= w_(1),
    upsilon_PR - upsilon_Queue = H (1 - w_(1)/U) for the top winner's surviving endowment."""
    w = np.array(w)
    top = int(np.argmax(w))
    U = w.sum()
    H = budget_share * w[top]
    x_queue = queue(w, H, w)[top]  # haircut largest winners first
    x_pr = pro_rata(w, H)[top]
    # upsilon_PR - upsilon_Queue = (w_(1) - x_PR) - (w_(1) - x_Queue) = x_Queue - x_PR.
    gap = x_queue - x_pr
    closed_form = H * (1.0 - w[top] / U)
    assert gap == pytest.approx(closed_form, rel=1e-9, abs=1e-12 * H)
    # Capped pro-rata with slack caps is the same rule.
    assert capped_pro_rata(w, H, np.ones(w.size))[top] == pytest.approx(x_pr, rel=1e-12)
    # PTSR difference. With D^pi = theta D = H in the denominator (paper.md §1.4) it is
    # (1 - w_(1)/U); the paper prints theta (1 - w_(1)/U), which is the gap per unit of the
    # *pre-policy* deficit D = H / theta.
    assume(H > 0)
    D = H / theta
    assert gap / H == pytest.approx(1.0 - w[top] / U, rel=1e-9, abs=1e-12)
    assert gap / D == pytest.approx(theta * (1.0 - w[top] / U), rel=1e-9, abs=1e-12)


def test_queue_vs_pro_rata_gap_on_a_hand_example():
    # w = (10, 6, 4), U = 20, H = 5 <= w_(1): queue leaves the top with 5, pro-rata with 7.5;
    # gap 2.5 = 5 (1 - 10/20).
    w = np.array([10.0, 6.0, 4.0])
    assert queue(w, 5.0, w)[0] == 5.0
    assert pro_rata(w, 5.0)[0] == 2.5
    assert (10 - 2.5) - (10 - 5.0) == 5.0 * (1 - 10 / 20)
