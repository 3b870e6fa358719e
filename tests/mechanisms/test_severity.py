"""Severity controllers (paper §3.6, §3.7): fixed θ, projected OGD (OL Prop. 1), backoff."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adlmon.config import CounterfactualConfig
from adlmon.mechanisms.severity import (
    ADAPTIVE_REGRET_FACTOR,
    BackoffSeverity,
    FixedSeverity,
    OgdSeverity,
    WaveEnd,
    WaveStart,
    controller_from_config,
    oracle_step,
    path_variation,
    regret_bound_usd,
    severity_regret_usd,
    theta_needed,
)


def play(ctl, waves, start=lambda d: WaveStart(deficit_usd=d)):
    """Run a controller over (D_t, B_needed_t) waves; returns the published θ_t and budgets."""
    thetas, budgets = [], []
    for d, needed in waves:
        theta, budget = ctl.budget(start(d))
        thetas.append(theta)
        budgets.append(budget)
        ctl.update(WaveEnd(deficit_usd=d, needed_usd=needed))
    return thetas, budgets


# --- helpers of OL Prop. 1 ---------------------------------------------------------------

def test_theta_needed_is_needed_over_deficit_capped_at_one_and_unknown_without_deficit():
    assert theta_needed(20.0, 100.0) == 0.2
    assert theta_needed(300.0, 100.0) == 1.0
    assert theta_needed(5.0, 0.0) is None
    assert theta_needed(5.0, None) is None


def test_path_variation_sums_absolute_steps_of_the_known_path():
    assert path_variation([0.2, 0.5, 0.1]) == pytest.approx(0.3 + 0.4)
    assert path_variation([0.2, None, 0.5, float("nan"), 0.1]) == pytest.approx(0.7)
    assert path_variation([0.4]) == 0.0
    assert path_variation([]) == 0.0


def test_regret_bound_is_sqrt_of_one_plus_twice_p_times_sum_of_squared_deficits():
    assert regret_bound_usd([3.0, 4.0, 0.0], [0.2, 0.5, 0.1]) == pytest.approx(math.sqrt(2.4 * 25))
    # a wave with unknown D leaves both its D² and its θ out
    assert regret_bound_usd([3.0, None, 4.0], [0.2, 0.9, 0.5]) == pytest.approx(math.sqrt(1.6 * 25))


def test_oracle_step_is_sqrt_of_one_plus_twice_p_over_sum_of_squared_deficits():
    assert oracle_step([3.0, 4.0], [0.2, 0.5]) == pytest.approx(math.sqrt(1.6 / 25))
    assert oracle_step([0.0], [0.3]) == math.inf


def test_severity_regret_is_deficit_weighted_distance_to_theta_needed():
    assert severity_regret_usd([0.1, 0.5], [10.0, 4.0], [0.3, 0.25]) == pytest.approx(2.0 + 1.0)
    assert severity_regret_usd([0.1, 0.5], [None, 4.0], [0.3, None]) == 0.0


# --- fixed θ -----------------------------------------------------------------------------

def test_fixed_theta_budget_is_theta_times_the_wave_deficit():
    thetas, budgets = play(FixedSeverity(0.25), [(100.0, 10.0), (40.0, 40.0)])
    assert thetas == [0.25, 0.25]
    assert budgets == [25.0, 10.0]


def test_lagged_forecast_multiplies_the_previous_wave_deficit():
    ctl = FixedSeverity(0.5, forecast="lagged")
    thetas, budgets = play(ctl, [(100.0, 10.0), (40.0, 40.0), (None, 5.0), (8.0, 1.0)])
    # first wave: nothing known yet; an unknown D keeps the last known one
    assert budgets == [None, 50.0, 20.0, 20.0]


def test_budget_is_capped_at_the_winners_total_capacity():
    ctl = FixedSeverity(1.0)
    assert ctl.budget(WaveStart(deficit_usd=100.0, total_capacity_usd=30.0)) == (1.0, 30.0)


def test_unknown_deficit_gives_no_budget_rather_than_an_invented_one():
    assert FixedSeverity(0.3).budget(WaveStart()) == (0.3, None)


def test_invalid_parameters_are_refused():
    with pytest.raises(ValueError):
        FixedSeverity(1.5)
    with pytest.raises(ValueError):
        FixedSeverity(0.5, forecast="tomorrow")
    with pytest.raises(ValueError):
        OgdSeverity(eta=0.0)
    with pytest.raises(ValueError):
        BackoffSeverity(alpha=0.0)


# --- projected OGD (OL Prop. 1) ----------------------------------------------------------

def test_ogd_steps_against_the_subgradient_of_the_deficit_weighted_loss():
    ctl = OgdSeverity(0.1, eta=0.01)
    ctl.update(WaveEnd(deficit_usd=10.0, needed_usd=5.0))  # θ_needed 0.5 > θ: g = −10
    assert ctl.theta == pytest.approx(0.1 + 0.01 * 10.0)
    ctl.update(WaveEnd(deficit_usd=20.0, needed_usd=0.0))  # θ_needed 0 < θ: g = +20
    assert ctl.theta == pytest.approx(0.0)  # 0.2 − 0.2


def test_ogd_projects_theta_onto_the_unit_interval():
    ctl = OgdSeverity(0.9, eta=1.0)
    ctl.update(WaveEnd(deficit_usd=5.0, needed_usd=5.0))
    assert ctl.theta == 1.0
    ctl.update(WaveEnd(deficit_usd=5.0, needed_usd=0.0))
    assert ctl.theta == 0.0


def test_ogd_budget_uses_only_waves_already_closed():
    ctl = OgdSeverity(0.2, eta=0.01)
    theta, budget = ctl.budget(WaveStart(deficit_usd=50.0))
    assert (theta, budget) == (0.2, 10.0)
    assert ctl.budget(WaveStart(deficit_usd=50.0)) == (0.2, 10.0)  # asking twice changes nothing


def test_ogd_skips_waves_whose_deficit_is_unknown_or_zero():
    ctl = OgdSeverity(0.3)
    ctl.update(WaveEnd(deficit_usd=None, needed_usd=5.0))
    ctl.update(WaveEnd(deficit_usd=0.0, needed_usd=5.0))
    assert ctl.theta == 0.3 and ctl.rounds == 0


def test_ogd_regret_grows_like_sqrt_t_while_a_wrong_fixed_theta_pays_linearly():
    def regrets(t):
        waves = [(1e6, 0.3e6)] * t
        d, th = [1e6] * t, [0.3] * t
        ogd, _ = play(OgdSeverity(0.0), waves)
        fixed, _ = play(FixedSeverity(0.1), waves)
        r_ogd = severity_regret_usd(ogd, d, th)
        assert r_ogd <= ADAPTIVE_REGRET_FACTOR * regret_bound_usd(d, th)  # bound = 1e6·√T
        return r_ogd, severity_regret_usd(fixed, d, th)

    ogd_short, fixed_short = regrets(400)
    ogd_long, fixed_long = regrets(6400)
    assert fixed_short == pytest.approx(400 * 0.2e6)
    assert fixed_long / fixed_short == pytest.approx(16.0)  # linear in T
    assert ogd_long / ogd_short < 4.5  # ≈ √16 = 4
    assert ogd_long < 0.1 * fixed_long


deficits = st.one_of(st.just(0.0), st.floats(1e-3, 1e9, allow_nan=False, allow_infinity=False))
paths = st.lists(st.tuples(deficits, st.floats(0.0, 1.0)), min_size=1, max_size=60)


def realized(waves):
    """(D_t, θ^needed_t) as the controller will see them (θ from D and B = θ·D)."""
    ends = [WaveEnd(deficit_usd=d, needed_usd=t * d) for d, t in waves]
    return [d for d, _ in waves], [e.theta_needed for e in ends]


@settings(max_examples=300, deadline=None)
@given(paths, st.floats(0.0, 1.0))
def test_ogd_with_the_oracle_step_stays_below_the_prop1_bound(waves, theta_init):
    d, th = realized(waves)
    ctl = OgdSeverity(theta_init, eta=oracle_step(d, th)) if any(d) else OgdSeverity(theta_init)
    thetas, _ = play(ctl, [(dv, t * dv) for dv, t in waves])
    bound = regret_bound_usd(d, th)
    assert severity_regret_usd(thetas, d, th) <= bound * (1 + 1e-9) + 1e-6


@settings(max_examples=300, deadline=None)
@given(paths, st.floats(0.0, 1.0))
def test_deployable_ogd_stays_within_its_constant_times_the_prop1_bound(waves, theta_init):
    d, th = realized(waves)
    thetas, _ = play(OgdSeverity(theta_init), [(dv, t * dv) for dv, t in waves])
    bound = regret_bound_usd(d, th)
    assert severity_regret_usd(thetas, d, th) <= ADAPTIVE_REGRET_FACTOR * bound * (1 + 1e-9) + 1e-6


def test_deployable_ogd_on_an_alternating_path_stays_within_its_bound():
    # regime switching every wave: P = T − 1, the hardest path for a learner
    waves = [(1e6, (t % 2) * 1e6) for t in range(200)]
    d, th = realized([(1e6, t % 2) for t in range(200)])
    thetas, _ = play(OgdSeverity(0.5), waves)
    assert severity_regret_usd(thetas, d, th) <= ADAPTIVE_REGRET_FACTOR * regret_bound_usd(d, th)


# --- exponential backoff -----------------------------------------------------------------

def test_backoff_as_printed_holds_theta0_when_alpha_is_below_one():
    thetas, budgets = play(BackoffSeverity(alpha=0.5, theta0=0.05), [(100.0, 1.0)] * 4)
    assert thetas == [0.05] * 4
    assert budgets == pytest.approx([5.0] * 4)


def test_backoff_from_a_higher_start_decays_geometrically_to_its_floor():
    thetas, _ = play(BackoffSeverity(alpha=0.5, theta0=0.1, theta_init=0.8), [(100.0, 1.0)] * 5)
    assert thetas == pytest.approx([0.8, 0.4, 0.2, 0.1, 0.1])


def test_backoff_with_alpha_above_one_ramps_up_to_one():
    thetas, _ = play(BackoffSeverity(alpha=2.0, theta0=0.2), [(100.0, 1.0)] * 5)
    assert thetas == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])


def test_backoff_is_capped_by_the_price_of_anarchy_cap_when_top_capacity_is_known():
    ctl = BackoffSeverity(alpha=2.0, theta0=0.5, poa_ratio=3.0)
    start = WaveStart(deficit_usd=100.0, max_capacity_usd=40.0)
    cap = 3.0 / 4.0 * 40.0 / 100.0  # R/(1+R)·M/D = 0.3
    assert ctl.cap(start, 100.0) == pytest.approx(cap)
    theta, budget = ctl.budget(start)
    assert theta == pytest.approx(cap) and budget == pytest.approx(30.0)
    ctl.update(WaveEnd(deficit_usd=100.0, needed_usd=1.0))
    # the next candidate starts from the published (capped) θ: max(2·0.3, 0.5) = 0.6
    assert ctl.budget(WaveStart(deficit_usd=100.0))[0] == pytest.approx(0.6)


def test_backoff_without_top_capacity_is_not_capped():
    assert BackoffSeverity(alpha=1.0, theta0=0.7).budget(WaveStart(deficit_usd=10.0)) == \
        pytest.approx((0.7, 7.0))


# --- wiring ------------------------------------------------------------------------------

def test_controller_from_config_builds_the_configured_controller():
    cfg = CounterfactualConfig()
    ctl = controller_from_config(cfg)
    assert isinstance(ctl, OgdSeverity) and ctl.theta == cfg.fixed_theta and ctl.eta is None
    fixed = controller_from_config(CounterfactualConfig(severity="fixed", fixed_theta=0.2))
    assert isinstance(fixed, FixedSeverity) and fixed.theta == 0.2
    back = controller_from_config(CounterfactualConfig(severity="backoff", backoff_alpha=0.8,
                                                       backoff_theta0=0.03))
    assert isinstance(back, BackoffSeverity) and (back.alpha, back.theta0) == (0.8, 0.03)
    with pytest.raises(ValueError):
        controller_from_config(CounterfactualConfig(severity="queue"))


def test_wave_end_reads_a_wave_report():
    end = WaveEnd.from_report({"deficit_usd": 50.0, "needed_usd": 10.0, "wave_id": 3})
    assert end.theta_needed == 0.2
