"""adlmon/metrics.py: the catalogue, wave accounting, feed methods, label bounds,
the replay exposition and the README metric table (ecosystem.md §5.5)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adlmon.metrics import (
    FAMILIES, MAX_PARSE_REASONS, PARSE_REASONS, RECONNECT_REASONS, Metrics, catalogue, reconnect_reason_for_close,
    reference_markdown, readme_section, write_replay_exposition,
)

ROOT = Path(__file__).resolve().parents[1]
HL = {"venue": "hyperliquid"}


def wave_report(**over):
    report = {
        "venue": "hyperliquid", "wave_id": 1, "t_start_ms": 1760131000000,
        "t_end_ms": 1760131004000, "adl_fills": 12, "accounts": 5, "losers": 2,
        "coins": ["BTC", "ETH"], "notional_usd": 1_000_000.0, "closed_pnl_usd": 5000.0,
        "needed_usd": 1000.0, "deficit_usd": 4000.0, "deficit_increment_usd": 2500.0,
        "deficit_source": "ledger",
        "production_haircut_usd": {"0": 1500.0, "500": 900.0, "1000": 1000.0, "2000": 1200.0,
                                   "5000": 3000.0},
        "theta_needed": 0.25, "theta_prod": 0.375, "closed_by": "gap",
    }
    report.update(over)
    return report


def counterfactual(optimal_total=1000.0, **over):
    cf = {
        "mechanisms": {
            "capped_pro_rata": {"ex_post": {"total_usd": optimal_total, "max_share": 0.1,
                                            "accounts_touched": 40},
                                "ex_ante": {"total_usd": 800.0, "max_share": 0.08}},
            "queue_pnl": {"ex_post": {"total_usd": 1000.0, "max_share": 1.0,
                                      "accounts_touched": 3},
                          "ex_ante": {"total_usd": 800.0}},
        },
        "optimal_mechanism": "capped_pro_rata",
        "controller": {"theta": 0.2, "budget_usd": 800.0},
    }
    cf.update(over)
    return cf


def value(m: Metrics, name: str, **labels):
    return m.registry.get_sample_value(name, labels)


def test_catalogue_names_follow_prometheus_conventions():
    names = catalogue()
    assert len(names) == len(set(names))
    for fam in FAMILIES:
        assert fam.name.startswith("adlmon_")
        assert fam.help.rstrip().endswith(".")
        assert (fam.kind == "counter") == fam.name.endswith("_total"), fam.name
        assert "Unit:" in fam.help or fam.name.endswith("_info"), fam.name
        # base units: no milliseconds/percent in names
        assert not any(bad in fam.name for bad in ("_milliseconds", "_ms", "_percent"))


def test_no_family_carries_an_account_or_address_label():
    # ``address`` only on the watch gauges, whose values come from [exposure] watch (<= 20).
    allowed = {"venue", "horizon", "mechanism", "channel", "source", "reason", "pool", "kind",
               "scope", "level",  # ADL scopes: markets or families, never accounts
               "version", "python", "task", "sink", "coin", "side"}
    for fam in FAMILIES:
        extra = {"address"} if fam.name.startswith("adlmon_adl_watch_") else set()
        assert set(fam.labels) <= allowed | extra, (fam.name, fam.labels)


def test_exposure_series_are_capped_aggregated_and_replaced():
    from adlmon.metrics import MAX_EXPOSURE_COINS, MAX_WATCH
    m = Metrics(process_collectors=False)
    n = MAX_EXPOSURE_COINS + 5
    sides = {(f"C{i:02d}", "long"): {"positions": 2.0, "capacity_usd": float(100 + i),
                                     "top10_share": 0.5} for i in range(n)}
    watch = {(f"0x{k:040x}", "C24", "long"): (k + 1, 0.5) for k in range(MAX_WATCH + 3)}
    m.set_exposure("hyperliquid", sides, watch)
    text = m.exposition().decode()
    caps = {s.labels["coin"]: s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == "adlmon_adl_queue_capacity_usd"}
    # the largest capacities keep their name, the 5 smallest are summed into "other"
    assert len(caps) == MAX_EXPOSURE_COINS + 1
    assert caps["other"] == sum(100.0 + i for i in range(5))
    assert "C04" not in caps and caps["C24"] == 124.0
    ranks = [s for f in text_string_to_metric_families(text) for s in f.samples
             if s.name == "adlmon_adl_watch_rank"]
    assert len(ranks) == MAX_WATCH
    # the next refresh replaces the series: a coin that left the queue disappears
    m.set_exposure("hyperliquid", {("C24", "long"): sides[("C24", "long")]}, {})
    assert value(m, "adlmon_adl_queue_capacity_usd", venue="hyperliquid", coin="C00",
                 side="long") is None
    assert value(m, "adlmon_adl_queue_capacity_usd", venue="hyperliquid", coin="other",
                 side="long") is None
    assert value(m, "adlmon_adl_watch_rank", venue="hyperliquid", address=f"0x{0:040x}",
                 coin="C24", side="long") is None
    # with no watched position ranked the family still has a series (NaN: the alert is quiet)
    assert math.isnan(value(m, "adlmon_adl_watch_rank", venue="hyperliquid", address="",
                            coin="", side=""))


def test_backstop_capacity_and_absorbable_shortfall():
    m = Metrics(process_collectors=False)
    m.set_insurance_fund("hyperliquid", "hlp_liquidator", 1000.0)
    m.set_insurance_fund("hyperliquid", "hlp_liquidator_2", -50.0)
    m.set_deficit("hyperliquid", 300.0)
    assert value(m, "adlmon_adl_backstop_capacity_usd", venue="hyperliquid") == 1000.0
    assert value(m, "adlmon_adl_shortfall_absorbable_usd", venue="hyperliquid") == 700.0
    m.set_deficit("hyperliquid", 5000.0)
    assert value(m, "adlmon_adl_shortfall_absorbable_usd", venue="hyperliquid") == 0.0


def test_fresh_metrics_expose_every_catalogued_family():
    m = Metrics()
    text = m.exposition().decode()
    exposed = {f.name for f in text_string_to_metric_families(text)}
    for fam in FAMILIES:
        base = fam.name[:-len("_total")] if fam.kind == "counter" else fam.name
        assert base in exposed, fam.name


def test_fresh_registries_are_independent():
    a, b = Metrics(), Metrics()
    a.observe_wave(wave_report())
    assert value(a, "adlmon_adl_waves_total", **HL) == 1
    assert value(b, "adlmon_adl_waves_total", **HL) == 0


def test_wave_counters_exist_at_zero_before_the_first_wave():
    # increase() cannot see a series born at its first increment.
    m = Metrics(horizons_ms=(0, 500), mechanisms=("pro_rata",))
    assert value(m, "adlmon_adl_waves_total", **HL) == 0
    assert value(m, "adlmon_adl_production_haircut_usd_total", venue="hyperliquid",
                 horizon="500") == 0
    assert value(m, "adlmon_adl_optimal_haircut_usd_total", venue="hyperliquid",
                 mechanism="pro_rata") == 0


def test_observe_wave_accumulates_counts_amounts_and_horizons():
    m = Metrics()
    m.observe_wave(wave_report())
    m.observe_wave(wave_report(wave_id=2, adl_fills=3, needed_usd=500.0, notional_usd=2000.0,
                               production_haircut_usd={"0": 100.0, "500": 700.0}))
    assert value(m, "adlmon_adl_waves_total", **HL) == 2
    assert value(m, "adlmon_adl_fills_total", **HL) == 15
    assert value(m, "adlmon_adl_needed_usd_total", **HL) == 1500.0
    assert value(m, "adlmon_adl_notional_usd_total", **HL) == 1_002_000.0
    assert value(m, "adlmon_adl_accounts_touched_total", **HL) == 10
    assert value(m, "adlmon_adl_production_haircut_usd_total", venue="hyperliquid",
                 horizon="0") == 1600.0
    assert value(m, "adlmon_adl_production_haircut_usd_total", venue="hyperliquid",
                 horizon="5000") == 3000.0
    # last-wave gauges describe the second wave
    assert value(m, "adlmon_adl_last_wave_needed_usd", **HL) == 500.0
    assert value(m, "adlmon_adl_last_wave_production_haircut_usd", venue="hyperliquid",
                 horizon="500") == 700.0
    assert value(m, "adlmon_adl_last_wave_end_timestamp_seconds", **HL) == 1760131004.0


def test_excess_counter_takes_the_positive_part_and_the_gauge_keeps_the_sign():
    m = Metrics()
    m.observe_wave(wave_report())  # B = 1000; H(0) = 1500, H(500) = 900
    assert value(m, "adlmon_adl_excess_haircut_usd_total", venue="hyperliquid",
                 horizon="0") == 500.0
    assert value(m, "adlmon_adl_excess_haircut_usd_total", venue="hyperliquid",
                 horizon="500") == 0.0
    assert value(m, "adlmon_adl_last_wave_excess_haircut_usd", venue="hyperliquid",
                 horizon="500") == -100.0
    assert value(m, "adlmon_adl_last_wave_haircut_to_needed_ratio", venue="hyperliquid",
                 horizon="0") == 1.5


def test_unknown_deficit_is_nan_and_counted_never_invented():
    m = Metrics()
    m.observe_wave(wave_report(deficit_usd=None, deficit_increment_usd=None,
                               deficit_source="unknown", theta_needed=None, theta_prod=None))
    assert math.isnan(value(m, "adlmon_adl_last_wave_deficit_usd", **HL))
    assert math.isnan(value(m, "adlmon_adl_last_wave_theta_needed_ratio", **HL))
    assert value(m, "adlmon_adl_deficit_unknown_waves_total", **HL) == 1
    assert value(m, "adlmon_adl_deficit_increment_usd_total", **HL) == 0
    m.observe_wave(wave_report())
    assert value(m, "adlmon_adl_last_wave_deficit_usd", **HL) == 4000.0
    assert value(m, "adlmon_adl_deficit_increment_usd_total", **HL) == 2500.0


def test_counterfactual_section_is_optional():
    m = Metrics()
    m.observe_wave(wave_report())
    assert value(m, "adlmon_adl_optimal_haircut_usd_total", venue="hyperliquid",
                 mechanism="capped_pro_rata") == 0
    # not measured: the series exists from the start (issue 8 §2) and stays NaN
    assert math.isnan(value(m, "adlmon_adl_last_wave_max_share_ratio", venue="hyperliquid",
                            mechanism="capped_pro_rata"))


def test_counterfactual_mechanisms_and_controller_are_exported():
    m = Metrics()
    m.observe_wave(wave_report(counterfactual=counterfactual()))
    m.observe_wave(wave_report(counterfactual=counterfactual(optimal_total=900.0)))
    lbl = {"venue": "hyperliquid", "mechanism": "capped_pro_rata"}
    assert value(m, "adlmon_adl_optimal_haircut_usd_total", **lbl) == 1900.0
    assert value(m, "adlmon_adl_ex_ante_haircut_usd_total", **lbl) == 1600.0
    assert value(m, "adlmon_adl_last_wave_mechanism_haircut_usd", **lbl) == 900.0
    assert value(m, "adlmon_adl_last_wave_max_share_ratio", **lbl) == 0.1
    assert value(m, "adlmon_adl_last_wave_mechanism_accounts", **lbl) == 40
    assert value(m, "adlmon_adl_last_wave_max_share_ratio", venue="hyperliquid",
                 mechanism="queue_pnl") == 1.0
    assert value(m, "adlmon_adl_controller_theta_ratio", **HL) == 0.2
    assert value(m, "adlmon_adl_controller_budget_usd", **HL) == 800.0


def test_counterfactual_budget_regret_and_production_as_the_counterfactual_writes_them():
    m = Metrics()
    cf = counterfactual()
    del cf["controller"]
    cf["budget"] = {"ex_post_usd": 1000.0, "ex_ante_usd": 640.0, "theta_ex_ante": 0.16,
                    "controller": "ogd"}
    cf["mechanisms"]["production"] = {"ex_post": {"total_usd": 1500.0, "max_share": 0.9,
                                                  "accounts_touched": 5}, "ex_ante": None}
    cf["regret"] = {"counted": True, "bound_usd": 989.8,
                    "cumulative_loss_usd": {"production": 834.0, "capped_pro_rata": 9.0,
                                            "not_configured": 1.0}}
    m.observe_wave(wave_report(counterfactual=cf))
    assert value(m, "adlmon_adl_controller_theta_ratio", **HL) == 0.16
    assert value(m, "adlmon_adl_controller_budget_usd", **HL) == 640.0
    assert value(m, "adlmon_adl_regret_bound_usd", **HL) == 989.8
    prod = {"venue": "hyperliquid", "mechanism": "production"}
    assert value(m, "adlmon_adl_policy_loss_usd", **prod) == 834.0
    assert value(m, "adlmon_adl_policy_loss_usd", venue="hyperliquid",
                 mechanism="not_configured") is None
    # production sits next to the mechanisms on the last-wave gauges ...
    assert value(m, "adlmon_adl_last_wave_max_share_ratio", **prod) == 0.9
    assert value(m, "adlmon_adl_last_wave_mechanism_haircut_usd", **prod) == 1500.0
    # ... but is never added to the mechanism counters (it is counted per horizon)
    assert value(m, "adlmon_adl_optimal_haircut_usd_total", **prod) is None


def test_regret_not_counted_leaves_the_gauges_alone():
    m = Metrics()
    m.observe_wave(wave_report(counterfactual=counterfactual(regret={"counted": False})))
    assert math.isnan(value(m, "adlmon_adl_regret_bound_usd", **HL))


def test_excess_vs_optimal_is_derived_from_the_optimal_mechanism_when_absent():
    m = Metrics()
    m.observe_wave(wave_report(counterfactual=counterfactual(optimal_total=1200.0)))
    # H(0) = 1500 - 1200 ; H(500) = 900 - 1200 (net gauge, zero increment)
    assert value(m, "adlmon_adl_last_wave_excess_vs_optimal_usd", venue="hyperliquid",
                 horizon="0") == 300.0
    assert value(m, "adlmon_adl_last_wave_excess_vs_optimal_usd", venue="hyperliquid",
                 horizon="500") == -300.0
    assert value(m, "adlmon_adl_excess_vs_optimal_usd_total", venue="hyperliquid",
                 horizon="0") == 300.0
    assert value(m, "adlmon_adl_excess_vs_optimal_usd_total", venue="hyperliquid",
                 horizon="500") == 0.0


def test_excess_vs_optimal_from_the_report_takes_precedence():
    m = Metrics()
    m.observe_wave(wave_report(counterfactual=counterfactual(
        excess_vs_optimal_usd={"0": 42.0, "500": 7.0})))
    assert value(m, "adlmon_adl_excess_vs_optimal_usd_total", venue="hyperliquid",
                 horizon="0") == 42.0


def test_unconfigured_horizons_and_mechanisms_are_skipped_not_folded():
    m = Metrics(horizons_ms=(0,), mechanisms=("capped_pro_rata",))
    m.observe_wave(wave_report(counterfactual=counterfactual()))
    text = m.exposition().decode()
    assert 'horizon="500"' not in text
    assert 'mechanism="queue_pnl"' not in text
    assert 'horizon="other"' not in text and 'mechanism="other"' not in text


def test_malformed_report_fields_are_tolerated():
    m = Metrics()
    m.observe_wave({"venue": "hyperliquid", "needed_usd": "n/a", "adl_fills": None,
                    "production_haircut_usd": {"0": None, "500": float("nan")},
                    "counterfactual": {"mechanisms": {"capped_pro_rata": "broken"},
                                       "controller": None}})
    assert value(m, "adlmon_adl_waves_total", **HL) == 1
    assert value(m, "adlmon_adl_needed_usd_total", **HL) == 0


def test_compute_time_is_a_histogram_per_venue():
    m = Metrics()
    m.observe_wave(wave_report(), compute_s=0.003)
    m.observe_compute_time("hyperliquid", 0.2)
    assert value(m, "adlmon_adl_compute_duration_seconds_count", **HL) == 2
    assert value(m, "adlmon_adl_compute_duration_seconds_bucket", venue="hyperliquid",
                 le="0.005") == 1


def test_feed_message_updates_count_timestamp_and_lag():
    m = Metrics()
    m.connected("hyperliquid", "trades", True)
    m.message("hyperliquid", "trades", n=20, exchange_time_ms=1_000_000_000, now=1_000_000.25)
    m.message("hyperliquid", "trades", now=1_000_001.0)
    lbl = {"venue": "hyperliquid", "channel": "trades", "source": "main"}
    assert value(m, "adlmon_feed_connected", **lbl) == 1
    assert value(m, "adlmon_feed_messages_total", **lbl) == 21
    assert value(m, "adlmon_feed_last_message_timestamp_seconds", **lbl) == 1_000_001.0
    assert value(m, "adlmon_feed_message_lag_seconds_count", **lbl) == 1
    assert value(m, "adlmon_feed_message_lag_seconds_sum", **lbl) == 0.25
    assert value(m, "adlmon_feed_gaps_total", **lbl) == 0  # exists from the first message
    m.connected("hyperliquid", "trades", False)
    m.gap("hyperliquid", "trades")
    assert value(m, "adlmon_feed_connected", **lbl) == 0
    assert value(m, "adlmon_feed_gaps_total", **lbl) == 1


def test_exchange_time_ahead_of_the_local_clock_counts_as_zero_lag():
    m = Metrics()
    m.message("hyperliquid", "trades", exchange_time_ms=2_000_000, now=1_000.0)
    assert value(m, "adlmon_feed_message_lag_seconds_sum", venue="hyperliquid",
                 channel="trades", source="main") == 0.0


def test_reconnect_reasons_are_a_fixed_enum():
    m = Metrics()
    m.reconnect("hyperliquid", "trades", "ping_timeout")
    m.reconnect("hyperliquid", "trades", "something the socket said")
    assert value(m, "adlmon_feed_reconnects_total", venue="hyperliquid", channel="trades",
                 source="main", reason="ping_timeout") == 1
    assert value(m, "adlmon_feed_reconnects_total", venue="hyperliquid", channel="trades",
                 source="main", reason="other") == 1
    assert reconnect_reason_for_close(1006) == "abnormal_1006"
    assert reconnect_reason_for_close(1000) == "close_1000"
    assert reconnect_reason_for_close(4000) == "close_other"
    assert all(r == r.lower() for r in RECONNECT_REASONS)


def test_parse_error_reasons_are_capped():
    m = Metrics()
    for i in range(MAX_PARSE_REASONS + 5):
        m.parse_error("hyperliquid", "trades", f"reason_{i}")
    m.parse_error("hyperliquid", "trades", "Not A Label Value!")
    reasons = {s.labels["reason"] for f in text_string_to_metric_families(m.exposition().decode())
               if f.name == "adlmon_feed_parse_errors" for s in f.samples}
    # the parsers' known reasons hold their slots; free-form ones get the rest
    free = MAX_PARSE_REASONS - len(PARSE_REASONS)
    assert len(reasons) == free + 1
    assert value(m, "adlmon_feed_parse_errors_total", venue="hyperliquid", channel="trades",
                 source="main", reason="other") == MAX_PARSE_REASONS + 5 - free + 1
    m.parse_error("hyperliquid", "trades", "bad_json")  # a known reason is never folded
    assert value(m, "adlmon_feed_parse_errors_total", venue="hyperliquid", channel="trades",
                 source="main", reason="bad_json") == 1


def test_funds_shortfall_and_armed():
    m = Metrics()
    m.set_insurance_fund("hyperliquid", "hlp", 1.5e8, time_ms=1_760_131_000_000)
    m.set_deficit("hyperliquid", 12_345.0)
    m.set_adl_armed("hyperliquid", True)
    assert value(m, "adlmon_insurance_fund_usd", venue="hyperliquid", pool="hlp") == 1.5e8
    assert value(m, "adlmon_insurance_fund_snapshot_timestamp_seconds", venue="hyperliquid",
                 pool="hlp") == 1_760_131_000.0
    assert value(m, "adlmon_deficit_usd", **HL) == 12_345.0
    assert value(m, "adlmon_adl_armed", **HL, scope="other") == 1


def test_engine_stats_advance_by_their_increments():
    m = Metrics()
    m.observe_engine_stats("hyperliquid", {"fills": 100, "divergences": 2, "adl_fills": 5})
    m.observe_engine_stats("hyperliquid", {"fills": 150, "divergences": 2, "unknown_ledger": 1})
    assert value(m, "adlmon_engine_fills_total", **HL) == 150
    assert value(m, "adlmon_engine_anomalies_total", venue="hyperliquid", kind="divergence") == 2
    assert value(m, "adlmon_engine_anomalies_total", venue="hyperliquid",
                 kind="unknown_ledger") == 1


def test_build_info_is_one_with_the_version():
    from adlmon import __version__
    m = Metrics()
    samples = [s for f in text_string_to_metric_families(m.exposition().decode())
               if f.name == "adlmon_build_info" for s in f.samples]
    assert len(samples) == 1
    assert samples[0].value == 1 and samples[0].labels["version"] == __version__


def test_replay_exposition_matches_the_reports(tmp_path):
    reports = [wave_report(counterfactual=counterfactual()),
               wave_report(wave_id=2, needed_usd=250.0, deficit_usd=None)]
    out = tmp_path / "replay.prom"
    write_replay_exposition(out, reports, {"stats": {"fills": 1234, "divergences": 0}})
    families = {f.name: f for f in text_string_to_metric_families(out.read_text())}
    got = {s.name: s.value for s in families["adlmon_adl_needed_usd"].samples}
    assert got["adlmon_adl_needed_usd_total"] == 1250.0
    waves = [s.value for s in families["adlmon_adl_waves"].samples
             if s.name.endswith("_total")]
    assert waves == [2.0]
    fills = [s.value for s in families["adlmon_engine_fills"].samples]
    assert fills == [1234.0]
    # label sets come from the reports when not given
    assert {s.labels["horizon"] for s in families["adlmon_adl_production_haircut_usd"].samples} \
        == {"0", "500", "1000", "2000", "5000"}
    assert not list(tmp_path.glob("*.tmp"))


def test_readme_metric_table_is_generated_from_the_catalogue():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_section(readme) == reference_markdown(), \
        "README metrics section is stale: run python -m adlmon.metrics --readme README.md"
    for name in catalogue():
        assert f"`{name}`" in readme


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_every_family_documents_its_labels_in_the_reference(fam):
    line = next(l for l in reference_markdown().splitlines() if l.startswith(f"| `{fam.name}` |"))
    for label in fam.labels:
        assert label in line


def test_declared_feeds_exist_before_any_connection_and_keep_live_values():
    m = Metrics()
    vault_a, vault_b = m.for_source("hlp_liquidator"), m.for_source("hlp_liquidator_2")
    for view in (vault_a, vault_b):
        view.declare_feed("hyperliquid", "userFills")
    a = {"venue": "hyperliquid", "channel": "userFills", "source": "hlp_liquidator"}
    b = {**a, "source": "hlp_liquidator_2"}
    assert value(m, "adlmon_feed_connected", **a) == 0 == value(m, "adlmon_feed_connected", **b)
    assert math.isnan(value(m, "adlmon_feed_last_message_timestamp_seconds", **a))
    for reason in RECONNECT_REASONS:
        assert value(m, "adlmon_feed_reconnects_total", **a, reason=reason) == 0
    for reason in PARSE_REASONS:
        assert value(m, "adlmon_feed_parse_errors_total", **a, reason=reason) == 0
    assert value(m, "adlmon_feed_gaps_total", **a) == 0
    # one vault up, the other down: each keeps its own series (no shared channel label)
    vault_a.connected("hyperliquid", "userFills", True)
    vault_a.message("hyperliquid", "userFills", now=123.0)
    vault_a.declare_feed("hyperliquid", "userFills")  # declaring again keeps live values
    assert value(m, "adlmon_feed_connected", **a) == 1
    assert value(m, "adlmon_feed_last_message_timestamp_seconds", **a) == 123.0
    assert value(m, "adlmon_feed_connected", **b) == 0


def test_a_fresh_catalogue_has_every_known_series():
    m = Metrics(mechanisms=("capped_pro_rata",), horizons_ms=(0, 500))
    for kind in ("divergence", "unknown_dir", "unknown_ledger"):
        assert value(m, "adlmon_engine_anomalies_total", venue="hyperliquid", kind=kind) == 0
    assert value(m, "adlmon_adl_armed", **HL, scope="other") == 0
    assert value(m, "adlmon_adl_warning", **HL, scope="other") == 0
    for level in ("normal", "warning", "armed"):
        assert value(m, "adlmon_adl_transitions_total", **HL, level=level) == 0
    assert value(m, "adlmon_liquidations_total", **HL) == 0
    assert math.isnan(value(m, "adlmon_adl_last_wave_needed_usd", **HL))
    assert math.isnan(value(m, "adlmon_deficit_usd", **HL))
    for mech in ("capped_pro_rata", "production"):
        assert math.isnan(value(m, "adlmon_adl_policy_loss_usd", venue="hyperliquid",
                                mechanism=mech))
    assert math.isnan(value(m, "adlmon_adl_last_wave_production_haircut_usd",
                            venue="hyperliquid", horizon="500"))
    assert value(m, "adlmon_adl_compute_duration_seconds_count", **HL) == 0
    m.declare_pool("hyperliquid", "hlp_liquidator")
    assert math.isnan(value(m, "adlmon_insurance_fund_usd", venue="hyperliquid",
                            pool="hlp_liquidator"))
    m.set_insurance_fund("hyperliquid", "hlp_liquidator", 5.0, time_ms=1000)
    m.declare_pool("hyperliquid", "hlp_liquidator")  # a known balance stays
    assert value(m, "adlmon_insurance_fund_usd", venue="hyperliquid", pool="hlp_liquidator") == 5


def test_adl_scopes_get_series_when_armed_or_warned_capped_then_aggregated():
    from adlmon.metrics import MAX_ADL_SCOPES
    m = Metrics(venues=("bybit",))
    by = {"venue": "bybit"}
    m.set_adl_level("bybit", "BTCUSDT", "normal")  # never armed: no series of its own
    assert value(m, "adlmon_adl_armed", **by, scope="BTCUSDT") is None
    m.set_adl_level("bybit", "BTCUSDT", "armed")
    assert value(m, "adlmon_adl_armed", **by, scope="BTCUSDT") == 1
    m.set_adl_level("bybit", "BTCUSDT", "normal")
    assert value(m, "adlmon_adl_armed", **by, scope="BTCUSDT") == 0  # kept, at 0
    for i in range(MAX_ADL_SCOPES - 1):
        m.set_adl_level("bybit", f"S{i}", "warning")
    m.set_adl_level("bybit", "LATE1", "armed")  # past the cap: aggregated
    m.set_adl_level("bybit", "LATE2", "warning")
    assert value(m, "adlmon_adl_armed", **by, scope="LATE1") is None
    assert value(m, "adlmon_adl_armed", **by, scope="other") == 1
    assert value(m, "adlmon_adl_warning", **by, scope="other") == 1
    m.set_adl_level("bybit", "LATE1", "normal")
    assert value(m, "adlmon_adl_armed", **by, scope="other") == 0
    assert value(m, "adlmon_adl_warning", **by, scope="other") == 1
    assert value(m, "adlmon_adl_transitions_total", **by, level="armed") == 2


def test_pool_estimate_and_liquidation_flow():
    m = Metrics(venues=("binance",))
    m.set_pool_estimate("binance", "USDT:BTCUSDT", 0.25, 50.0, 0.0)
    m.observe_liquidations("binance", 2, 1234.5)
    b = {"venue": "binance"}
    assert value(m, "adlmon_insurance_fund_drawdown_ratio", **b, pool="USDT:BTCUSDT") == 0.25
    assert value(m, "adlmon_insurance_fund_losses_usd", **b, pool="USDT:BTCUSDT") == 50.0
    assert value(m, "adlmon_liquidations_total", **b) == 2
    assert value(m, "adlmon_liquidation_notional_usd_total", **b) == 1234.5
