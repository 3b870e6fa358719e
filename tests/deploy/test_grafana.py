"""grafana/: the dashboard-linter checks we rely on, reimplemented (Grafana itself
cannot run here; ecosystem.md §2.3): templated datasource used everywhere, units
set, valid PromQL, $__rate_interval in every rate/increase, counters only inside
rate/increase, every metric exported by adlmon/metrics.py; provisioning files
match the compose mounts."""

from __future__ import annotations

import json

import pytest
import yaml

from promql_names import (
    DASHBOARDS, PROMETHEUS_SYNTHETIC, RATE_INTERVAL_SECONDS, ROOT, base_name, counter_names,
    exported_names, grafana_to_promql, label_values_selector, selectors,
)

DS = {"type": "prometheus", "uid": "${datasource}"}
# Grafana unit ids used by these dashboards (grafana/packages/grafana-data valueFormats).
KNOWN_UNITS = {"currencyUSD", "s", "percentunit", "short", "cps", "dateTimeFromNow",
               "bool_yes_no", "bool_on_off", "none", "bytes"}


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def panels(dash):
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])  # collapsed rows keep their panels inside


def data_panels(dash):
    return [p for p in panels(dash) if p["type"] != "row"]


def exprs(dash):
    """(where, PromQL) for every query: panel targets, annotations, variable selectors."""
    for p in data_panels(dash):
        for t in p["targets"]:
            yield f"{dash['uid']} panel {p['title']!r} {t['refId']}", grafana_to_promql(t["expr"])
    for a in dash["annotations"]["list"]:
        if "expr" in a:
            yield f"{dash['uid']} annotation {a['name']!r}", grafana_to_promql(a["expr"])
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            sel = label_values_selector(v["query"]["query"])
            assert sel is not None, f"{dash['uid']} variable {v['name']}: not label_values()"
            yield f"{dash['uid']} variable {v['name']!r}", grafana_to_promql(sel)


@pytest.fixture(params=DASHBOARDS, ids=lambda p: p.stem)
def dash(request):
    return load(request.param)


def test_both_dashboards_exist_with_fixed_unique_uids():
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert sorted(uids) == ["adlmon-feeds", "adlmon-overview"]
    assert {p.stem for p in DASHBOARDS} == set(uids)


def test_datasource_is_a_template_variable(dash):
    ds = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
    assert len(ds) == 1 and ds[0]["name"] == "datasource" and ds[0]["query"] == "prometheus"


def test_job_and_instance_variables_exist(dash):
    names = {v["name"] for v in dash["templating"]["list"]}
    assert {"job", "instance", "venue"} <= names


def test_every_panel_target_and_variable_uses_the_datasource_variable(dash):
    for p in data_panels(dash):
        assert p["datasource"] == DS, p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DS, (p["title"], t["refId"])
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            assert v["datasource"] == DS, v["name"]
    for a in dash["annotations"]["list"]:
        if "expr" in a:
            assert a["datasource"] == DS


def test_every_panel_sets_a_known_unit(dash):
    for p in data_panels(dash):
        unit = p["fieldConfig"]["defaults"].get("unit")
        assert unit in KNOWN_UNITS, (p["title"], unit)
        assert p.get("description"), p["title"]


def test_usd_seconds_and_ratio_units_are_used():
    units = {p["fieldConfig"]["defaults"]["unit"] for d in map(load, DASHBOARDS)
             for p in data_panels(d)}
    assert {"currencyUSD", "s", "percentunit"} <= units


def test_usd_metrics_are_shown_in_usd_and_ratios_as_percent(dash):
    for p in data_panels(dash):
        unit = p["fieldConfig"]["defaults"]["unit"]
        names = {base_name(s["name"]) for t in p["targets"]
                 for s in selectors(grafana_to_promql(t["expr"]))}
        if names and all("_usd" in n for n in names):
            assert unit == "currencyUSD", p["title"]
        if names and all(n.endswith("_ratio") for n in names):
            assert unit == "percentunit", p["title"]


def test_every_expression_parses_and_uses_exported_metrics(dash):
    exported = exported_names() | PROMETHEUS_SYNTHETIC
    for where, expr in exprs(dash):
        try:
            found = selectors(expr)
        except ValueError as exc:
            pytest.fail(f"{where}: invalid PromQL {expr!r}: {exc}")
        assert found, where
        for sel in found:
            assert base_name(sel["name"]) in exported, f"{where}: {sel['name']} is not exported"


def test_rates_use_rate_interval_and_counters_are_always_rated(dash):
    counters = counter_names()
    for where, expr in exprs(dash):
        for sel in selectors(expr):
            if sel["in_rate"]:
                assert sel["range_s"] == RATE_INTERVAL_SECONDS, \
                    f"{where}: rate/increase must use $__rate_interval"
            elif sel["name"] in counters and "variable" not in where:
                pytest.fail(f"{where}: counter {sel['name']} outside rate()/increase()")


def test_panels_fit_the_grid_without_overlapping(dash):
    cells = set()
    for p in panels(dash):
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps another panel"
                cells.add((x, y))
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids))


def used_metrics(path) -> set[str]:
    return {base_name(s["name"]) for _, e in exprs(load(path)) for s in selectors(e)}


def test_overview_shows_waves_haircuts_theta_shortfall_and_funds():
    used = used_metrics(ROOT / "grafana" / "dashboards" / "adlmon-overview.json")
    for name in ("adlmon_adl_waves_total", "adlmon_adl_excess_haircut_usd_total",
                 "adlmon_adl_needed_usd_total", "adlmon_adl_production_haircut_usd_total",
                 "adlmon_adl_optimal_haircut_usd_total", "adlmon_adl_last_wave_theta_needed_ratio",
                 "adlmon_adl_last_wave_theta_production_ratio", "adlmon_adl_controller_theta_ratio",
                 "adlmon_deficit_usd", "adlmon_insurance_fund_usd", "adlmon_adl_armed"):
        assert name in used, name


def test_feed_board_shows_every_feed_family():
    used = used_metrics(ROOT / "grafana" / "dashboards" / "adlmon-feeds.json")
    from adlmon.metrics import FAMILIES
    feed = {f.name for f in FAMILIES if f.group == "feeds"}
    assert feed <= used, feed - used


def test_datasource_provisioning():
    doc = yaml.safe_load((ROOT / "grafana/provisioning/datasources/adlmon.yml").read_text())
    assert doc["apiVersion"] == 1
    [ds] = doc["datasources"]
    assert ds["type"] == "prometheus" and ds["access"] == "proxy" and ds["uid"]
    assert ds["url"] == "http://prometheus:9090"  # the compose service name


def test_dashboard_provider_path_matches_the_compose_mount():
    doc = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/adlmon.yml").read_text())
    assert doc["apiVersion"] == 1
    [prov] = doc["providers"]
    assert prov["type"] == "file" and prov["allowUiUpdates"] is False
    compose = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"../grafana/dashboards:{prov['options']['path']}:ro" in mounts
    assert "../grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_overview_has_a_row_per_cex_venue_with_fund_drawdown_armed_and_liquidation_flow():
    dash = load(ROOT / "grafana" / "dashboards" / "adlmon-overview.json")
    titles = [p["title"] for p in panels(dash)]
    for venue in ("Binance", "Bybit", "OKX"):
        assert f"{venue}: funds, ADL state, liquidations" in titles
        mine = [p for p in panels(dash) if p["title"].startswith(venue + " ")]
        used = " ".join(t["expr"] for p in mine for t in p.get("targets", []))
        for name in ("adlmon_insurance_fund_usd", "adlmon_insurance_fund_drawdown_ratio",
                     "adlmon_adl_armed", "adlmon_liquidations_total"):
            assert name in used, (venue, name)
    flow = {p["title"]: p["description"] for p in panels(dash) if p["title"].endswith("liquidation flow")}
    assert "LOWER BOUNDS" in flow["Binance liquidation flow"] and "LOWER BOUNDS" in flow["OKX liquidation flow"]
